package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.PromptCompressionStats;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SelectPromptTokensRequest;
import io.draftmesh.proto.v1.SelectPromptTokensResponse;
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
 * STRATEGY_SPECPC end to end on real ports: router (Netty) → draft worker's SelectPromptTokens →
 * target session over the kept tokens. The mesh's draft (random checkpoint B) and target (A) are
 * 2-layer models, so the default starting layer 8 falls back to all layers.
 */
class SpecPcIT {
  static final int PROMPT = 400;
  static final int TOKENS = 16;
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
    prompt = new Random(3).ints(PROMPT, 2, 512).toArray();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    router.close();
  }

  static GenerateRequest request(int[] ids, Strategy strategy, SpecPcOptions pc, int maxTokens) {
    TokenIds.Builder t = TokenIds.newBuilder();
    for (int id : ids) {
      t.addIds(id);
    }
    return GenerateRequest.newBuilder()
        .setTokenIds(t)
        .setStrategy(strategy)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
        .setSpecPc(pc)
        .build();
  }

  static TestMesh.Result generate(GenerateRequest r) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(r)
        .forEachRemaining(out::add);
    return TestMesh.Result.of(out);
  }

  static SpecPcOptions small() {
    return SpecPcOptions.newBuilder()
        .setBudgetTokens(96)
        .setWindow(32)
        .setKernel(8)
        .setNeighborTokens(4)
        .setLookaheadTokens(3)
        .build();
  }

  @Test
  void aBudgetCoveringThePromptGivesTheTargetsOwnOutput() {
    TestMesh.Result ar =
        generate(
            request(
                prompt,
                Strategy.STRATEGY_AUTOREGRESSIVE,
                SpecPcOptions.getDefaultInstance(),
                TOKENS));
    TestMesh.Result pc =
        generate(
            request(
                prompt,
                Strategy.STRATEGY_SPECPC,
                SpecPcOptions.newBuilder().setBudgetTokens(PROMPT).setWindow(32).build(),
                TOKENS));
    assertThat(pc.ids()).hasSize(TOKENS).isEqualTo(ar.ids());
    PromptCompressionStats s = pc.last().getStats().getPromptCompression();
    assertThat(s.getMethod()).isEqualTo("specpc");
    assertThat(s.getPromptTokens()).isEqualTo(PROMPT);
    assertThat(s.getKeptTokens()).isEqualTo(PROMPT);
    assertThat(s.getDroppedTokens()).isZero();
    assertThat(s.getUncompressed()).isFalse();
    assertThat(pc.last().getStats().getStrategy()).isEqualTo(Strategy.STRATEGY_SPECPC);
    assertThat(pc.last().getUsage().getPromptTokens()).isEqualTo(PROMPT);
    mesh.assertAllSessionsClosed();
  }

  @Test
  void aSmallBudgetDropsTokensAndTheTargetReadsExactlyTheKeptOnes() {
    TestMesh.Result pc = generate(request(prompt, Strategy.STRATEGY_SPECPC, small(), TOKENS));
    PromptCompressionStats s = pc.last().getStats().getPromptCompression();
    assertThat(s.getKeptTokens()).isEqualTo(96);
    assertThat(s.getDroppedTokens()).isEqualTo(PROMPT - 96);
    assertThat(s.getBudgetTokens()).isEqualTo(96);
    assertThat(s.getDraftTokens()).isEqualTo(3);
    assertThat(s.getStartingLayer()).as("a 2-layer draft has no layer 8: all count").isZero();
    assertThat(pc.last().getStats().getFallback()).isFalse();
    assertThat(pc.last().getUsage().getCompletionTokens()).isEqualTo(TOKENS);

    // Independently: ask the draft worker for the kept indices and run the target on exactly
    // those tokens; the SpecPC output must be that, token for token.
    ManagedChannel draft =
        Grpc.newChannelBuilder(
                "localhost:" + mesh.workers.get("draft").port(),
                InsecureChannelCredentials.create())
            .build();
    try {
      SelectPromptTokensRequest.Builder req =
          SelectPromptTokensRequest.newBuilder()
              .setBudgetTokens(96)
              .setWindow(32)
              .setKernel(8)
              .setNeighborTokens(4)
              .setLookaheadTokens(3)
              .setStartingLayer(8);
      for (int id : prompt) {
        req.addPromptIds(id);
      }
      SelectPromptTokensResponse sel =
          ModelWorkerGrpc.newBlockingStub(draft)
              .withDeadlineAfter(30, TimeUnit.SECONDS)
              .selectPromptTokens(req.build());
      assertThat(sel.getKeptIndicesList()).hasSize(96).isSorted();
      // The last window is always kept.
      for (int p = PROMPT - 32; p < PROMPT; p++) {
        assertThat(sel.getKeptIndicesList()).contains(p);
      }
      int[] kept = sel.getKeptIndicesList().stream().mapToInt(i -> prompt[i]).toArray();
      TestMesh.Result onKept =
          generate(
              request(
                  kept,
                  Strategy.STRATEGY_AUTOREGRESSIVE,
                  SpecPcOptions.getDefaultInstance(),
                  TOKENS));
      assertThat(pc.ids()).isEqualTo(onKept.ids());
      // Negative control: the dropped tokens mattered to the target (random weights, 304 tokens).
      TestMesh.Result full =
          generate(
              request(
                  prompt,
                  Strategy.STRATEGY_AUTOREGRESSIVE,
                  SpecPcOptions.getDefaultInstance(),
                  TOKENS));
      assertThat(pc.ids()).isNotEqualTo(full.ids());
    } finally {
      draft.shutdownNow();
    }
    mesh.assertAllSessionsClosed();
  }

  @Test
  void cancellingMidStreamFreesTheTargetSessionAndTheDraftHoldsNone() throws Exception {
    TestMesh.cancelAfterFirstChunk(
        channel,
        request(prompt, Strategy.STRATEGY_SPECPC, small(), 500),
        Duration.ofSeconds(30),
        () -> assertThat(mesh.info("target").getActiveSessions()).isEqualTo(1));
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
    TestMesh.assertFreed("draft", mesh.workers.get("draft").port());
  }

  @Test
  void anUnreachableDraftReadsTheWholePromptAndSaysSo() throws Exception {
    RouterServer deadDraft =
        mesh.routerOnPort(
            Map.of("draft", "localhost:" + TestMesh.deadPort()), Duration.ofSeconds(2));
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + deadDraft.port(), InsecureChannelCredentials.create())
            .build();
    try {
      List<GenerateChunk> out = new ArrayList<>();
      RouterGrpc.newBlockingStub(ch)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(request(prompt, Strategy.STRATEGY_SPECPC, small(), TOKENS))
          .forEachRemaining(out::add);
      TestMesh.Result r = TestMesh.Result.of(out);
      TestMesh.Result ar =
          generate(
              request(
                  prompt,
                  Strategy.STRATEGY_AUTOREGRESSIVE,
                  SpecPcOptions.getDefaultInstance(),
                  TOKENS));
      assertThat(r.ids()).isEqualTo(ar.ids());
      assertThat(r.last().getStats().getFallback()).isTrue();
      assertThat(r.last().getStats().getPromptCompression().getUncompressed()).isTrue();
      assertThat(r.last().getStats().getPromptCompression().getDroppedTokens()).isZero();
    } finally {
      ch.shutdownNow();
      deadDraft.close();
    }
  }

  @Test
  void badOptionsAreInvalidArgumentNamingTheField() throws Exception {
    assertInvalid(small().toBuilder().setBudgetTokens(16).build(), "spec_pc.budget_tokens: 16");
    assertInvalid(small().toBuilder().setBudgetRatio(0.5f).build(), "spec_pc.budget_ratio: 0.5");
    assertInvalid(
        SpecPcOptions.newBuilder().setBudgetRatio(1.5f).build(), "spec_pc.budget_ratio: 1.5");
    assertInvalid(
        SpecPcOptions.newBuilder().setBudgetRatio(0.01f).build(), "keeps 4 of 400 tokens");
    assertInvalid(small().toBuilder().setKernel(-1).build(), "spec_pc.kernel: -1");
    assertInvalid(small().toBuilder().setWindow(-2).build(), "spec_pc.window: -2");
    assertInvalid(small().toBuilder().setNeighborTokens(-1).build(), "spec_pc.neighbor_tokens");
    assertInvalid(small().toBuilder().setStartingLayer(-1).build(), "spec_pc.starting_layer: -1");
    assertInvalid(
        small().toBuilder().setLookaheadTokens(99).build(), "spec_pc.lookahead_tokens: 99");
    // No draft pool at all.
    RouterServer noDraft = mesh.routerOnPort(Map.of(), Duration.ofSeconds(2));
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + noDraft.port(), InsecureChannelCredentials.create())
            .build();
    try {
      assertThatThrownBy(
              () ->
                  RouterGrpc.newBlockingStub(ch)
                      .withDeadlineAfter(30, TimeUnit.SECONDS)
                      .generate(request(prompt, Strategy.STRATEGY_SPECPC, small(), TOKENS))
                      .forEachRemaining(c -> {}))
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

  private static void assertInvalid(SpecPcOptions pc, String message) {
    assertThatThrownBy(() -> generate(request(prompt, Strategy.STRATEGY_SPECPC, pc, TOKENS)))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).contains(message);
            });
  }
}
