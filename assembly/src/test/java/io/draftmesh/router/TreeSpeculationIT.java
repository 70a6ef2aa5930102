package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.TestMesh.Result;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
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
 * Greedy tree speculation is lossless over real ports: for every tree drafter (DySpec and RSD on a
 * draft worker, Token Recycling and lookahead in the router) and node budgets 4 and 16, the
 * router's output is token for token the target's autoregressive output, on the random-model suite
 * (with the target's own checkpoint as draft, where trees are accepted deep, and an unrelated one,
 * where they are mostly rejected) and on the zoo's trained target/draft pair. Bad trees sent to a
 * worker are INVALID_ARGUMENT naming the field.
 */
class TreeSpeculationIT {
  static final int TOKENS = 24;
  static final List<Drafter> DRAFTERS =
      List.of(
          Drafter.DRAFTER_DYSPEC,
          Drafter.DRAFTER_RSD,
          Drafter.DRAFTER_TOKEN_RECYCLING,
          Drafter.DRAFTER_LOOKAHEAD);
  static TestMesh mesh;
  static List<GenerateRequest> prompts;

  // The zoo pair behind a router of its own.
  static final Map<String, WorkerServer> zooWorkers = new LinkedHashMap<>();
  static RouterServer zooRouter;
  static ManagedChannel zooChannel;

  @BeforeAll
  static void start() throws Exception {
    mesh = TestMesh.get();
    prompts = new ArrayList<>();
    String[] sentences = RandomCheckpoint.sampleText().split("(?<=[.!?])\\s+");
    for (int i = 1; prompts.size() < 6 && i < sentences.length; i += 4) {
      if (sentences[i].length() > 10) {
        prompts.add(GenerateRequest.newBuilder().setText(sentences[i]).build());
      }
    }
    for (int p = 0; p < 4; p++) {
      TokenIds.Builder ids = TokenIds.newBuilder();
      for (int i = 0; i < 1 + p * 9; i++) {
        ids.addIds(2 + (i * 37 + p * 101) % 500);
      }
      prompts.add(GenerateRequest.newBuilder().setTokenIds(ids).build());
    }

    Path models = MeshModels.zooModel("target").getParent();
    zooWorkers.put(
        "target", TestMesh.newWorker(models.resolve("target"), WorkerConfig.Role.TARGET));
    zooWorkers.put("draft", TestMesh.newWorker(models.resolve("draft"), WorkerConfig.Role.DRAFT));
    for (WorkerServer w : zooWorkers.values()) {
      w.awaitReady(Duration.ofMinutes(3));
    }
    Map<String, String> pools = new LinkedHashMap<>();
    zooWorkers.forEach((name, w) -> pools.put(name, "localhost:" + w.port()));
    RouterConfig config =
        new RouterConfig(
            0,
            pools,
            "target",
            "draft",
            List.of(models),
            64,
            4096,
            8,
            Duration.ofSeconds(60),
            Duration.ofSeconds(10),
            8,
            Duration.ofSeconds(1),
            Keepalive.DEFAULT);
    zooRouter = RouterServer.onPort(config, OpenTelemetry.noop()).start();
    zooChannel =
        Grpc.newChannelBuilder("localhost:" + zooRouter.port(), InsecureChannelCredentials.create())
            .build();
  }

  @AfterAll
  static void stop() {
    if (zooChannel != null) {
      zooChannel.shutdownNow();
    }
    if (zooRouter != null) {
      zooRouter.close();
    }
    zooWorkers.values().forEach(WorkerServer::close);
  }

  static GenerateRequest tree(GenerateRequest prompt, Drafter drafter, int nodes, String draft) {
    GenerateRequest.Builder b =
        prompt.toBuilder()
            .setStrategy(Strategy.STRATEGY_SPECULATIVE)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(TOKENS))
            .setSpeculative(
                SpeculativeOptions.newBuilder().setDrafter(drafter).setTreeNodes(nodes));
    if (draft != null) {
      b.setDraft(draft);
    }
    return b.build();
  }

  static GenerateRequest autoregressive(GenerateRequest prompt) {
    return prompt.toBuilder()
        .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(TOKENS))
        .build();
  }

  /** Checks a tree run's stream and stats; returns its accepted node count. */
  static int checkTreeRun(Result r, List<Integer> expected, Drafter drafter, String what) {
    GenerationStats st = r.last().getStats();
    assertThat(r.ids()).as(what).isEqualTo(expected);
    assertThat(st.getFallback()).as(what + ": %s", st.getFallbackReason()).isFalse();
    assertThat(st.getDrafter()).isEqualTo(drafter);
    assertThat(st.getTokensPerTargetPass())
        .as(what)
        .isEqualTo((float) TOKENS / st.getTargetCalls());
    long fromTree =
        r.provenance().stream().filter(p -> p == Provenance.PROVENANCE_TREE_ACCEPTED_VALUE).count();
    assertThat(fromTree).as(what).isLessThanOrEqualTo(st.getAccepted());
    assertThat(r.provenance())
        .isSubsetOf(Provenance.PROVENANCE_TREE_ACCEPTED_VALUE, Provenance.PROVENANCE_TARGET_VALUE);
    boolean modelFree =
        drafter == Drafter.DRAFTER_TOKEN_RECYCLING || drafter == Drafter.DRAFTER_LOOKAHEAD;
    if (modelFree) {
      assertThat(st.getDraftModel()).isEmpty();
    }
    return st.getAccepted();
  }

  @Test
  void greedyTreeSpeculationEqualsAutoregressiveForEveryDrafter() {
    Map<String, Long> accepted = new LinkedHashMap<>();
    Map<String, Long> rounds = new LinkedHashMap<>();
    for (GenerateRequest prompt : prompts) {
      List<Integer> expected = mesh.generate(autoregressive(prompt)).ids();
      assertThat(expected).hasSize(TOKENS);
      for (Drafter drafter : DRAFTERS) {
        boolean modelFree =
            drafter == Drafter.DRAFTER_TOKEN_RECYCLING || drafter == Drafter.DRAFTER_LOOKAHEAD;
        for (String draft : modelFree ? List.of("-") : List.of("same", "draft")) {
          for (int nodes : new int[] {4, 16}) {
            String what = drafter + " draft " + draft + " nodes " + nodes + ", " + prompt;
            Result r = mesh.generate(tree(prompt, drafter, nodes, modelFree ? null : draft));
            String key = drafter + "/" + draft;
            accepted.merge(key, (long) checkTreeRun(r, expected, drafter, what), Long::sum);
            rounds.merge(key, (long) r.last().getStats().getRounds(), Long::sum);
          }
        }
      }
    }
    System.out.println("greedy trees, accepted nodes / rounds: " + accepted + " / " + rounds);
    // The target's own checkpoint drafts what the target decodes: deep paths accepted.
    assertThat(accepted.get("DRAFTER_DYSPEC/same"))
        .isGreaterThan(rounds.get("DRAFTER_DYSPEC/same"));
    assertThat(accepted.get("DRAFTER_RSD/same")).isGreaterThan(rounds.get("DRAFTER_RSD/same"));
    // Random models repeat themselves, so the model-free drafters find accepted branches too.
    assertThat(accepted.get("DRAFTER_LOOKAHEAD/-")).isPositive();
    assertThat(accepted.get("DRAFTER_TOKEN_RECYCLING/-")).isPositive();
    mesh.assertAllSessionsClosed();
  }

  @Test
  void greedyTreeSpeculationEqualsAutoregressiveOnTheZooPair() {
    long accepted = 0;
    for (String text :
        List.of(
            "The river ran past the old mill and",
            "Once upon a time, there was a little",
            "In winter the days are short and")) {
      GenerateRequest prompt = GenerateRequest.newBuilder().setText(text).build();
      List<Integer> expected = Result.of(zoo(autoregressive(prompt))).ids();
      assertThat(expected).hasSize(TOKENS);
      for (Drafter drafter : DRAFTERS) {
        Result r = Result.of(zoo(tree(prompt, drafter, 16, null)));
        accepted += checkTreeRun(r, expected, drafter, drafter + ", zoo, " + text);
      }
    }
    assertThat(accepted).isPositive();
  }

  @Test
  void samplingTreeSpeculationRunsEndToEnd() {
    // Losslessness of the sampling rule is proven by the engine's chi-square tests (TreeVerifier,
    // with negative controls); here the mesh runs it end to end: the draft's conditional
    // distributions are accepted by the target worker, and tree nodes are accepted. (Sampled
    // output is not compared across runs: in this mesh it is not bit-reproducible for the chain
    // drafter either, as batch composition changes float rounding.)
    GenerateRequest prompt = prompts.get(0);
    for (Drafter drafter : DRAFTERS) {
      GenerateRequest r =
          tree(prompt, drafter, 8, "same").toBuilder()
              .setSampling(
                  Sampling.newBuilder().setMaxTokens(TOKENS).setTemperature(0.9f).setSeed(42))
              .build();
      Result a = mesh.generate(r);
      GenerationStats st = a.last().getStats();
      assertThat(a.ids()).as("%s", drafter).hasSize(TOKENS);
      assertThat(st.getFallback()).as("%s: %s", drafter, st.getFallbackReason()).isFalse();
      if (drafter == Drafter.DRAFTER_DYSPEC || drafter == Drafter.DRAFTER_RSD) {
        // The target's own checkpoint as draft: its samples are accepted most of the time. (The
        // model-free drafters may find nothing to propose in 24 sampled tokens of a random model.)
        assertThat(st.getRounds()).as("%s", drafter).isPositive();
        assertThat(st.getAccepted()).as("%s", drafter).isGreaterThanOrEqualTo(st.getRounds());
      }
    }
    mesh.assertAllSessionsClosed();
  }

  @Test
  void badTreesAreInvalidArgumentNamingTheField() {
    ManagedChannel ch =
        Grpc.newChannelBuilder(
                "localhost:" + mesh.workers.get("target").port(),
                InsecureChannelCredentials.create())
            .build();
    try {
      for (Object[] c :
          new Object[][] {
            {new int[] {-1, 2, 0}, "verify.tree_parents[1]: 2"}, // parent after its child
            {new int[] {-1, 1, 0}, "verify.tree_parents[1]: 1"}, // its own parent: a cycle
            {new int[] {-1, 0}, "verify.tree_parents: 2 given"},
          }) {
        WorkerSession s = WorkerSession.start(ch, "target", "raw");
        s.call(
            SessionRequest.newBuilder().setOpen(Open.newBuilder().addPromptIds(5)),
            Duration.ofSeconds(10),
            "open");
        Verify.Builder v = Verify.newBuilder().addDraftTokenIds(3).addDraftTokenIds(4);
        v.addDraftTokenIds(5);
        for (int p : (int[]) c[0]) {
          v.addTreeParents(p);
        }
        assertThatThrownBy(
                () ->
                    s.call(
                        SessionRequest.newBuilder().setVerify(v), Duration.ofSeconds(10), "verify"))
            .isInstanceOfSatisfying(
                WorkerSession.WorkerFailure.class,
                e -> assertThat(e.status().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT))
            .hasMessageContaining((String) c[1]);
      }
      // More nodes than max_tokens_per_op, and a tree Score's own field names.
      WorkerSession s = WorkerSession.start(ch, "target", "raw");
      s.call(
          SessionRequest.newBuilder().setOpen(Open.newBuilder().addPromptIds(5)),
          Duration.ofSeconds(10),
          "open");
      Verify.Builder big = Verify.newBuilder();
      for (int i = 0; i <= TestMesh.MAX_TOKENS_PER_OP; i++) {
        big.addDraftTokenIds(3).addTreeParents(i - 1);
      }
      assertThatThrownBy(
              () ->
                  s.call(
                      SessionRequest.newBuilder().setVerify(big), Duration.ofSeconds(10), "verify"))
          .hasMessageContaining("INVALID_ARGUMENT")
          .hasMessageContaining("verify.draft_token_ids: " + (TestMesh.MAX_TOKENS_PER_OP + 1));
      WorkerSession t = WorkerSession.start(ch, "target", "raw");
      t.call(
          SessionRequest.newBuilder().setOpen(Open.newBuilder().addPromptIds(5)),
          Duration.ofSeconds(10),
          "open");
      Score.Builder score = Score.newBuilder().addTokenIds(3).addTreeParents(0);
      assertThatThrownBy(
              () ->
                  t.call(
                      SessionRequest.newBuilder().setScore(score), Duration.ofSeconds(10), "score"))
          .hasMessageContaining("INVALID_ARGUMENT")
          .hasMessageContaining("score.tree_parents[0]: 0");
    } finally {
      ch.shutdownNow();
    }
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
  }

  @Test
  void badTreeOptionsAreInvalidArgument() {
    GenerateRequest r =
        tree(prompts.get(0), Drafter.DRAFTER_LOOKAHEAD, TestMesh.MAX_TOKENS_PER_OP + 1, null);
    assertThatThrownBy(() -> mesh.generate(r))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT))
        .hasMessageContaining("speculative.tree_nodes: " + (TestMesh.MAX_TOKENS_PER_OP + 1));
    GenerateRequest neg =
        r.toBuilder()
            .setSpeculative(SpeculativeOptions.newBuilder().setTreeNodes(-1).setDrafterValue(99))
            .build();
    assertThatThrownBy(() -> mesh.generate(neg)).hasMessageContaining("speculative.");
  }

  static List<GenerateChunk> zoo(GenerateRequest r) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(zooChannel)
        .withDeadlineAfter(120, TimeUnit.SECONDS)
        .generate(r)
        .forEachRemaining(out::add);
    return out;
  }
}
