package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The approximate strategies end to end on the zoo models, every component on a real port: the base
 * {@code models/target} nudged by {@code models/aligned} (one tokenizer) and by a random tiny-llama
 * with its own 512-token tokenizer (cross-tokenizer); {@code models/draft} and {@code
 * models/target} switching by entropy and by sentence lead-in. Cancel and deadline free every
 * session.
 */
class CollaborationIT {
  static final List<String> INSTRUCTIONS =
      List.of(
          "Repeat: In the beginning God created the heaven",
          "What is the first word of: And the earth was without form",
          "What is the last word of: Let there be light and there",
          "Continue the text: A fool and his money are soon");

  static final Map<String, WorkerServer> workers = new LinkedHashMap<>();
  static RouterServer router;
  static ManagedChannel channel;
  static BpeTokenizer zoo;

  @BeforeAll
  static void start() throws Exception {
    Path models = MeshModels.zooModel("target").getParent();
    Path dir = Files.createTempDirectory("collab-it");
    Path alignedX = dir.resolve("aligned-x");
    RandomCheckpoint.write(alignedX, RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
    workers.put("target", TestMesh.newWorker(models.resolve("target"), WorkerConfig.Role.TARGET));
    workers.put("aligned", TestMesh.newWorker(models.resolve("aligned"), WorkerConfig.Role.DRAFT));
    workers.put("draft", TestMesh.newWorker(models.resolve("draft"), WorkerConfig.Role.DRAFT));
    workers.put("aligned-x", TestMesh.newWorker(alignedX, WorkerConfig.Role.DRAFT));
    for (WorkerServer w : workers.values()) {
      w.awaitReady(Duration.ofMinutes(3));
    }
    Map<String, String> pools = new LinkedHashMap<>();
    workers.forEach((name, w) -> pools.put(name, "localhost:" + w.port()));
    RouterConfig config =
        new RouterConfig(
            0,
            pools,
            "target",
            "draft",
            List.of(models, alignedX.resolve(Checkpoint.TOKENIZER_JSON)),
            64,
            4096,
            8,
            Duration.ofSeconds(60),
            Duration.ofSeconds(10),
            8,
            Duration.ofSeconds(1),
            Keepalive.DEFAULT);
    router = RouterServer.onPort(config, OpenTelemetry.noop()).start();
    channel =
        Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
            .build();
    zoo = BpeTokenizer.load(models.resolve("target").resolve("tokenizer.json"));
  }

  @AfterAll
  static void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (router != null) {
      router.close();
    }
    workers.values().forEach(WorkerServer::close);
  }

  static List<GenerateChunk> generate(GenerateRequest r) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(120, TimeUnit.SECONDS)
        .generate(r)
        .forEachRemaining(out::add);
    return out;
  }

  static GenerateRequest nudging(String instruction, String aligned, float gamma, int max) {
    return GenerateRequest.newBuilder()
        .setText("Question: " + instruction + "\n")
        .setDraft(aligned)
        .setStrategy(Strategy.STRATEGY_NUDGING)
        .setNudging(
            NudgingOptions.newBuilder()
                .setAlignedPrompt("<|endoftext|><|user|>" + instruction + "<|assistant|>")
                .setGamma(gamma))
        .setSampling(Sampling.newBuilder().setMaxTokens(max))
        .build();
  }

  /** Text, ids and provenance agree; the counts add up; returns the last chunk's stats. */
  static GenerationStats checkStream(List<GenerateChunk> chunks, Provenance... allowed) {
    StringBuilder text = new StringBuilder();
    List<Integer> ids = new ArrayList<>();
    int small = 0;
    for (GenerateChunk c : chunks) {
      text.append(c.getText());
      ids.addAll(c.getTokenIdsList());
      assertThat(c.getProvenanceList()).hasSize(c.getTokenIdsCount()).isSubsetOf(allowed);
      small +=
          (int)
              c.getProvenanceList().stream()
                  .filter(
                      p ->
                          p == Provenance.PROVENANCE_ALIGNED_NUDGE
                              || p == Provenance.PROVENANCE_SMALL_SPAN)
                  .count();
    }
    GenerateChunk last = chunks.get(chunks.size() - 1);
    assertThat(last.getFinishReason()).isNotEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
    if (last.getFinishReason() != FinishReason.FINISH_REASON_STOP) {
      // The output ids are the base/target tokenizer's and decode to the text exactly.
      assertThat(zoo.decode(ids.stream().mapToInt(x -> x).toArray(), true))
          .isEqualTo(text.toString());
    }
    GenerationStats st = last.getStats();
    assertThat(st.getSmallTokens()).isEqualTo(small);
    assertThat(st.getLargeTokens() + st.getSmallTokens())
        .isEqualTo(last.getUsage().getCompletionTokens());
    assertThat(st.getFallback()).as(st.getFallbackReason()).isFalse();
    return st;
  }

  static void assertAllFreed() {
    workers.forEach((name, w) -> TestMesh.assertFreed(name, w.port()));
  }

  @Test
  void zooBaseNudgedByTheZooAlignedModel() {
    int rounds = 0;
    int alignedTokens = 0;
    for (String instruction : INSTRUCTIONS) {
      List<GenerateChunk> chunks = generate(nudging(instruction, "aligned", 0.4f, 48));
      GenerationStats st =
          checkStream(chunks, Provenance.PROVENANCE_ALIGNED_NUDGE, Provenance.PROVENANCE_BASE);
      assertThat(chunks.get(0).getProvenance(0)).isEqualTo(Provenance.PROVENANCE_ALIGNED_NUDGE);
      assertThat(st.getStrategy()).isEqualTo(Strategy.STRATEGY_NUDGING);
      assertThat(st.getDraftModel()).isEqualTo("aligned");
      assertThat(st.getLargeParameters()).isGreaterThan(st.getSmallParameters()).isPositive();
      rounds += st.getNudgingRounds();
      alignedTokens += st.getSmallTokens();
      // The aligned model starts its replies with "Answer: ", as the template it learned.
      StringBuilder text = new StringBuilder();
      chunks.forEach(c -> text.append(c.getText()));
      assertThat(text.toString()).startsWith("Answer:");
    }
    assertThat(rounds).isGreaterThanOrEqualTo(INSTRUCTIONS.size());
    assertThat(alignedTokens).isPositive();
    assertAllFreed();
  }

  @Test
  void crossTokenizerNudgingOnARealWorker() {
    List<GenerateChunk> chunks = generate(nudging(INSTRUCTIONS.get(0), "aligned-x", 0.3f, 40));
    GenerationStats st =
        checkStream(chunks, Provenance.PROVENANCE_ALIGNED_NUDGE, Provenance.PROVENANCE_BASE);
    assertThat(st.getDraftModel()).isEqualTo("aligned-x");
    assertThat(st.getNudgingRounds()).isPositive();
    assertThat(st.getSmallTokens()).isPositive();
    // checkStream saw the output ids (the base tokenizer's) decode to the streamed text exactly,
    // though the random model's bytes are not always valid UTF-8 (they decode to U+FFFD on both
    // sides, as any decoder does).
    assertAllFreed();
  }

  static GenerateRequest switching(Strategy s, float tau, int leadIn, int max) {
    return GenerateRequest.newBuilder()
        .setText("And God said, Let there be")
        .setStrategy(s)
        .setEntropySwitch(EntropySwitchOptions.newBuilder().setTau(tau).setWindow(5))
        .setLeadIn(LeadInOptions.newBuilder().setN(leadIn))
        .setSampling(Sampling.newBuilder().setMaxTokens(max))
        .setIgnoreEos(true)
        .build();
  }

  static List<Integer> ids(List<GenerateChunk> chunks) {
    List<Integer> ids = new ArrayList<>();
    chunks.forEach(c -> ids.addAll(c.getTokenIdsList()));
    return ids;
  }

  @Test
  void entropySwitchBetweenTheZooDraftAndTarget() {
    List<Integer> smallOnly =
        ids(
            generate(
                switching(Strategy.STRATEGY_AUTOREGRESSIVE, 0, 0, 40).toBuilder()
                    .setTarget("draft")
                    .build()));
    // τ above any entropy: the small model writes everything, exactly its own greedy decoding.
    List<GenerateChunk> high = generate(switching(Strategy.STRATEGY_ENTROPY_SWITCH, 1e6f, 0, 40));
    GenerationStats hs =
        checkStream(high, Provenance.PROVENANCE_SMALL_SPAN, Provenance.PROVENANCE_LARGE_SPAN);
    assertThat(ids(high)).isEqualTo(smallOnly);
    assertThat(hs.getLargeTokens()).isZero();
    assertThat(hs.getParameterWeightedCost())
        .isCloseTo(
            (float) hs.getSmallParameters() / hs.getLargeParameters(),
            org.assertj.core.data.Offset.offset(1e-6f));
    // τ = 0: after the small model's first run the large one takes over for good.
    List<GenerateChunk> low = generate(switching(Strategy.STRATEGY_ENTROPY_SWITCH, 0f, 0, 40));
    GenerationStats ls =
        checkStream(low, Provenance.PROVENANCE_SMALL_SPAN, Provenance.PROVENANCE_LARGE_SPAN);
    assertThat(ls.getSmallTokens()).isEqualTo(5); // the minimum run = the window
    assertThat(ls.getSwitches()).isEqualTo(1);
    assertThat(ls.getLargeShare()).isEqualTo(35f / 40f);
    // A τ in between mixes both, and every token carries the writer's entropy.
    List<GenerateChunk> mid = generate(switching(Strategy.STRATEGY_ENTROPY_SWITCH, 3f, 0, 60));
    checkStream(mid, Provenance.PROVENANCE_SMALL_SPAN, Provenance.PROVENANCE_LARGE_SPAN);
    mid.forEach(c -> assertThat(c.getEntropyBitsList()).allSatisfy(h -> assertThat(h).isFinite()));
    assertAllFreed();
  }

  @Test
  void leadInBetweenTheZooDraftAndTarget() {
    List<GenerateChunk> chunks = generate(switching(Strategy.STRATEGY_LEAD_IN, 0, 3, 60));
    GenerationStats st =
        checkStream(chunks, Provenance.PROVENANCE_SMALL_SPAN, Provenance.PROVENANCE_LARGE_SPAN);
    assertThat(chunks.get(0).getProvenance(0)).isEqualTo(Provenance.PROVENANCE_LARGE_SPAN);
    assertThat(st.getLargeTokens()).isGreaterThanOrEqualTo(3);
    assertThat(st.getStrategy()).isEqualTo(Strategy.STRATEGY_LEAD_IN);
    assertAllFreed();
  }

  @Test
  void cancellingMidStreamFreesEverySession() throws InterruptedException {
    for (GenerateRequest r :
        List.of(
            // The random aligned-x model rarely ends its reply: a long request.
            // 600 tokens: the whole request (run once to time it) must fit the target's KV pool.
            nudging(INSTRUCTIONS.get(3), "aligned-x", 0.4f, 600).toBuilder()
                .setIgnoreEos(true)
                .build(),
            switching(Strategy.STRATEGY_ENTROPY_SWITCH, 2f, 0, 600))) {
      TestMesh.cancelAfterFirstChunk(channel, r, Duration.ofSeconds(60), () -> {});
      assertAllFreed();
    }
  }

  @Test
  void aDeadlineMidStreamFreesEverySession() {
    for (GenerateRequest r :
        List.of(
            // The random aligned-x model rarely ends its reply: a long request.
            // 600 tokens: the whole request (run once to time it) must fit the target's KV pool.
            nudging(INSTRUCTIONS.get(3), "aligned-x", 0.4f, 600).toBuilder()
                .setIgnoreEos(true)
                .build(),
            switching(Strategy.STRATEGY_ENTROPY_SWITCH, 2f, 0, 600))) {
      long whole = System.nanoTime();
      RouterGrpc.newBlockingStub(channel).generate(r).forEachRemaining(c -> {});
      assertAllFreed();
      TestMesh.deadlineMidStream(
          channel, r, Duration.ofNanos(System.nanoTime() - whole), CollaborationIT::assertAllFreed);
    }
  }

  @Test
  void badParametersOverARealPort() {
    assertThatThrownBy(() -> generate(nudging(INSTRUCTIONS.get(0), "aligned", 1.5f, 8)))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).startsWith("nudging.gamma: 1.5");
            });
    assertThatThrownBy(
            () ->
                generate(
                    switching(Strategy.STRATEGY_ENTROPY_SWITCH, 1f, 0, 8).toBuilder()
                        .setEntropySwitch(EntropySwitchOptions.newBuilder().setWindow(0))
                        .build()))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getDescription()).startsWith("entropy_switch.window: 0"));
  }
}
