package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * KV compaction through the mesh on real ports: STRATEGY_SPECKV (the draft worker writes the
 * answer, the target worker compacts its cache inside Open), SpecKV-PC, and SnapKV / StreamingLLM /
 * H2O as an option of the lossless strategies. The engine's compaction is checked against a masked
 * reference in the engine's tests; here, the wiring, the stats, fallback, cancel and bad input.
 */
class SpecKvIT {
  static final int PROMPT = 400;
  static final int TOKENS = 12;
  static TestMesh mesh;
  static RouterServer router;
  static ManagedChannel channel;
  static int[] prompt;

  @BeforeAll
  static void start() throws Exception {
    mesh = TestMesh.get();
    router =
        mesh.routerOnPort(
            Map.of("draft", "localhost:" + mesh.workers.get("draft").port()),
            Duration.ofSeconds(5));
    channel =
        Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
            .build();
    prompt = new Random(5).ints(PROMPT, 2, 512).toArray();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    router.close();
  }

  static GenerateRequest.Builder request(Strategy strategy, int maxTokens) {
    TokenIds.Builder t = TokenIds.newBuilder();
    for (int id : prompt) {
      t.addIds(id);
    }
    return GenerateRequest.newBuilder()
        .setTokenIds(t)
        .setStrategy(strategy)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens));
  }

  static KvCompressionOptions speckv() {
    return KvCompressionOptions.newBuilder()
        .setBudget(64)
        .setWindow(16)
        .setKernel(5)
        .setAnswerTokens(8)
        .build();
  }

  static TestMesh.Result generate(ManagedChannel ch, GenerateRequest r) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(ch)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(r)
        .forEachRemaining(out::add);
    return TestMesh.Result.of(out);
  }

  static TestMesh.Result generate(GenerateRequest.Builder r) {
    return generate(channel, r.build());
  }

  /**
   * Bytes of one cache slot of the mesh's target: layers x kv heads x head dim x K and V x fp32.
   */
  static long bytesPerSlot(KvCompressionStats s) {
    return s.getKvBytesKept() / s.getKeptSlots();
  }

  @Test
  void aBudgetCoveringThePromptGivesTheTargetsOwnOutputAndCallsNoDraft() {
    TestMesh.Result ar = generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS));
    TestMesh.Result kv =
        generate(
            request(Strategy.STRATEGY_SPECKV, TOKENS)
                .setKvCompression(KvCompressionOptions.newBuilder().setBudget(PROMPT)));
    assertThat(kv.ids()).hasSize(TOKENS).isEqualTo(ar.ids());
    KvCompressionStats s = kv.last().getStats().getKvCompression();
    assertThat(s.getMethod()).isEqualTo("speckv");
    assertThat(s.getKeptSlots()).isEqualTo(PROMPT);
    assertThat(s.getDroppedSlots()).isZero();
    assertThat(s.getKvBytesDropped()).isZero();
    assertThat(s.getDraftAnswerTokens()).isZero();
    assertThat(kv.last().getStats().getDraftCalls()).isZero();
    assertThat(kv.last().getStats().getStrategy()).isEqualTo(Strategy.STRATEGY_SPECKV);
    mesh.assertAllSessionsClosed();
  }

  @Test
  void specKvReadsTheDraftsAnswerKeepsTheBudgetAndReportsWhatItDropped() {
    TestMesh.Result kv =
        generate(request(Strategy.STRATEGY_SPECKV, TOKENS).setKvCompression(speckv()));
    KvCompressionStats s = kv.last().getStats().getKvCompression();
    assertThat(s.getMethod()).isEqualTo("speckv");
    assertThat(s.getBudget()).isEqualTo(64);
    assertThat(s.getPromptTokens()).isEqualTo(PROMPT);
    assertThat(s.getKeptSlots()).as("the budget plus the re-fed last prompt token").isEqualTo(65);
    assertThat(s.getDroppedSlots()).isEqualTo(PROMPT - 65);
    assertThat(s.getDraftAnswerTokens()).isEqualTo(8);
    assertThat(s.getUncompressed()).isFalse();
    assertThat(s.getKvBytesDropped()).isEqualTo(bytesPerSlot(s) * (PROMPT - 65));
    assertThat(kv.last().getStats().getFallback()).isFalse();
    assertThat(kv.last().getStats().getDraftCalls()).isPositive();
    assertThat(kv.last().getUsage().getPromptTokens()).isEqualTo(PROMPT);
    assertThat(kv.last().getUsage().getCompletionTokens()).isEqualTo(TOKENS);
    assertThat(kv.provenance())
        .containsOnly(io.draftmesh.proto.v1.Provenance.PROVENANCE_TARGET_VALUE);
    // Negative control: on random weights, 335 dropped slots change the output.
    TestMesh.Result full = generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS));
    assertThat(kv.ids()).isNotEqualTo(full.ids());
    // Another draft answer gives other scores: the answer is really read.
    TestMesh.Result shortAnswer =
        generate(
            request(Strategy.STRATEGY_SPECKV, TOKENS)
                .setKvCompression(speckv().toBuilder().setAnswerTokens(1)));
    assertThat(shortAnswer.last().getStats().getKvCompression().getDraftAnswerTokens())
        .isEqualTo(1);
    mesh.assertAllSessionsClosed();
  }

  @Test
  void snapKvWithSpeculativeDecodingIsLosslessAgainstTheCompactedTarget() {
    KvCompressionOptions snap =
        KvCompressionOptions.newBuilder().setMethod("snapkv").setBudget(64).setWindow(16).build();
    TestMesh.Result ar =
        generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS).setKvCompression(snap));
    TestMesh.Result sd =
        generate(request(Strategy.STRATEGY_SPECULATIVE, TOKENS).setKvCompression(snap));
    assertThat(sd.ids()).isEqualTo(ar.ids());
    for (TestMesh.Result r : List.of(ar, sd)) {
      KvCompressionStats s = r.last().getStats().getKvCompression();
      assertThat(s.getMethod()).isEqualTo("snapkv");
      assertThat(s.getKeptSlots()).isEqualTo(64);
      assertThat(s.getDroppedSlots()).isEqualTo(PROMPT - 64);
    }
    TestMesh.Result streaming =
        generate(
            request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS)
                .setKvCompression(
                    KvCompressionOptions.newBuilder().setMethod("streaming_llm").setBudget(64)));
    assertThat(streaming.last().getStats().getKvCompression().getKeptSlots()).isEqualTo(64);
    // H2O reads every prompt query's attention; its default window is half the budget.
    TestMesh.Result h2o =
        generate(
            request(Strategy.STRATEGY_SPECULATIVE, TOKENS)
                .setKvCompression(
                    KvCompressionOptions.newBuilder().setMethod("h2o").setBudget(64)));
    KvCompressionStats hs = h2o.last().getStats().getKvCompression();
    assertThat(hs.getMethod()).isEqualTo("h2o");
    assertThat(hs.getBudget()).isEqualTo(64);
    assertThat(hs.getKeptSlots()).isEqualTo(64);
    assertThat(hs.getDroppedSlots()).isEqualTo(PROMPT - 64);
    assertThat(hs.getKvBytesDropped()).isEqualTo((PROMPT - 64) * bytesPerSlot(hs));
    TestMesh.Result full = generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS));
    assertThat(ar.ids()).isNotEqualTo(full.ids());
    mesh.assertAllSessionsClosed();
  }

  @Test
  void aCompactedPrefixLeavesTheRestOfThePromptWhole() {
    KvCompressionOptions prefix =
        KvCompressionOptions.newBuilder()
            .setMethod("snapkv")
            .setBudget(64)
            .setWindow(16)
            .setPrefixTokens(PROMPT - 20)
            .build();
    TestMesh.Result r =
        generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS).setKvCompression(prefix));
    KvCompressionStats s = r.last().getStats().getKvCompression();
    assertThat(s.getPromptTokens()).isEqualTo(PROMPT - 20);
    assertThat(s.getKeptSlots()).isEqualTo(64);
    assertThat(s.getDroppedSlots()).isEqualTo(PROMPT - 20 - 64);
    assertThat(s.getRestored()).as("no kvcache-service in this mesh").isFalse();
    assertThat(s.getKvBytesRestored()).isZero();
    TestMesh.Result whole =
        generate(
            request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS)
                .setKvCompression(prefix.toBuilder().setPrefixTokens(0)));
    assertThat(whole.last().getStats().getKvCompression().getPromptTokens()).isEqualTo(PROMPT);
    assertThat(r.ids()).as("the last 20 tokens were read whole").isNotEqualTo(whole.ids());
    mesh.assertAllSessionsClosed();
  }

  @Test
  void specKvPcCompressesThePromptThenTheCache() {
    TestMesh.Result r =
        generate(
            request(Strategy.STRATEGY_SPECKV, TOKENS)
                .setSpecPc(
                    SpecPcOptions.newBuilder()
                        .setBudgetTokens(200)
                        .setWindow(32)
                        .setKernel(8)
                        .setNeighborTokens(4))
                .setKvCompression(speckv()));
    assertThat(r.last().getStats().getPromptCompression().getKeptTokens()).isEqualTo(200);
    KvCompressionStats s = r.last().getStats().getKvCompression();
    assertThat(s.getPromptTokens()).isEqualTo(200);
    assertThat(s.getKeptSlots()).isEqualTo(65);
    assertThat(s.getDroppedSlots()).isEqualTo(200 - 65);
    mesh.assertAllSessionsClosed();
  }

  @Test
  void cancellingMidStreamFreesBothWorkersSessions() throws Exception {
    TestMesh.cancelAfterFirstChunk(
        channel,
        request(Strategy.STRATEGY_SPECKV, 500).setKvCompression(speckv()).build(),
        Duration.ofSeconds(30),
        () -> assertThat(mesh.info("target").getActiveSessions()).isEqualTo(1));
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
    TestMesh.assertFreed("draft", mesh.workers.get("draft").port());
  }

  @Test
  void anUnreachableDraftRunsUncompressedAndSaysSo() throws Exception {
    RouterServer deadDraft =
        mesh.routerOnPort(
            Map.of("draft", "localhost:" + TestMesh.deadPort()), Duration.ofSeconds(2));
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + deadDraft.port(), InsecureChannelCredentials.create())
            .build();
    try {
      TestMesh.Result r =
          generate(
              ch, request(Strategy.STRATEGY_SPECKV, TOKENS).setKvCompression(speckv()).build());
      TestMesh.Result ar = generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, TOKENS));
      assertThat(r.ids()).isEqualTo(ar.ids());
      assertThat(r.last().getStats().getFallback()).isTrue();
      KvCompressionStats s = r.last().getStats().getKvCompression();
      assertThat(s.getUncompressed()).isTrue();
      assertThat(s.getDroppedSlots()).isZero();
      assertThat(s.getKeptSlots()).isEqualTo(PROMPT);
    } finally {
      ch.shutdownNow();
      deadDraft.close();
    }
    mesh.assertAllSessionsClosed();
  }

  @Test
  void badOptionsAreInvalidArgumentNamingTheField() throws Exception {
    assertInvalid(
        Strategy.STRATEGY_SPECKV,
        speckv().toBuilder().setBudget(8).build(),
        "kv_compression.budget: 8 (expected: >= kv_compression.window 16");
    assertInvalid(
        Strategy.STRATEGY_SPECKV,
        speckv().toBuilder().setKernel(4).build(),
        "kv_compression.kernel: 4");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        KvCompressionOptions.newBuilder().setMethod("pyramidkv").build(),
        "kv_compression.method: \"pyramidkv\"");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        KvCompressionOptions.newBuilder().setMethod("h2o").setKernel(7).build(),
        "kv_compression.kernel: 7 (expected: 0; h2o does not pool its scores)");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        KvCompressionOptions.newBuilder().setMethod("h2o").setBudget(16).setWindow(17).build(),
        "kv_compression.budget: 16 (expected: >= kv_compression.window 17");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        KvCompressionOptions.newBuilder().setMethod("speckv").build(),
        "kv_compression.method: \"speckv\" with STRATEGY_AUTOREGRESSIVE");
    assertInvalid(
        Strategy.STRATEGY_ENTROPY_SWITCH,
        KvCompressionOptions.newBuilder().setMethod("snapkv").build(),
        "kv_compression: with STRATEGY_ENTROPY_SWITCH");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        KvCompressionOptions.newBuilder().setMethod("snapkv").setSinks(2).build(),
        "kv_compression.sinks: 2");
    KvCompressionOptions snap = KvCompressionOptions.newBuilder().setMethod("snapkv").build();
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        snap.toBuilder().setPrefixTokens(-1).build(),
        "kv_compression.prefix_tokens: -1 (expected: 0 for the whole prompt, or >= 1)");
    assertInvalid(
        Strategy.STRATEGY_AUTOREGRESSIVE,
        snap.toBuilder().setPrefixTokens(PROMPT).build(),
        "kv_compression.prefix_tokens: " + PROMPT + " (expected: 0 for the whole prompt, or 1..");
    assertInvalid(
        Strategy.STRATEGY_SPECKV,
        speckv().toBuilder().setPrefixTokens(100).build(),
        "kv_compression.prefix_tokens: 100 with STRATEGY_SPECKV (expected: 0;");
    RouterServer noDraft = mesh.routerOnPort(Map.of(), Duration.ofSeconds(2));
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + noDraft.port(), InsecureChannelCredentials.create())
            .build();
    try {
      assertThatThrownBy(
              () ->
                  generate(
                      ch,
                      request(Strategy.STRATEGY_SPECKV, TOKENS).setKvCompression(speckv()).build()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(e.getStatus().getDescription()).startsWith("draft: none given");
              });
    } finally {
      ch.shutdownNow();
      noDraft.close();
    }
    mesh.assertAllSessionsClosed();
  }

  private static void assertInvalid(Strategy strategy, KvCompressionOptions o, String message) {
    assertThatThrownBy(() -> generate(request(strategy, TOKENS).setKvCompression(o)))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).contains(message);
            });
  }
}
