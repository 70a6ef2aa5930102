package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.worker.WorkerConfig;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The in-process mesh of {@code draftmesh up} and the speculative bench, on random checkpoints. */
class MeshIT {
  @TempDir static Path dir;
  static Path target;
  static Path draft;

  @BeforeAll
  static void checkpoints() throws Exception {
    target = dir.resolve("target");
    draft = dir.resolve("draft");
    RandomCheckpoint.write(target, RandomCheckpoint.tinyLlama(), 1, DType.F32, 0);
    RandomCheckpoint.write(draft, RandomCheckpoint.tinyLlama(), 2, DType.F32, 0);
  }

  static Mesh.Spec.Builder spec() {
    return Mesh.Spec.builder(target, draft).kvBudgets(8, 8).limits(512, 16).drainSeconds(10);
  }

  static GenerateRequest request(int maxTokens) {
    return GenerateRequest.newBuilder()
        .setText("Once upon a time")
        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(3))
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
        .setIgnoreEos(true)
        .build();
  }

  @Test
  void startsStreamsAGenerationAndStopsLeavingNoSessions() throws Exception {
    Mesh mesh = Mesh.start(spec().build(), OpenTelemetry.noop());
    String targetAddress;
    String routerAddress;
    try {
      assertThat(mesh.addresses()).containsOnlyKeys(Mesh.TARGET, Mesh.DRAFT, Mesh.ROUTER);
      assertThat(List.copyOf(mesh.addresses().keySet()))
          .containsExactly(Mesh.TARGET, Mesh.DRAFT, Mesh.ROUTER);
      assertThat(new HashSet<>(mesh.addresses().values())).hasSize(3);
      targetAddress = mesh.address(Mesh.TARGET);
      routerAddress = mesh.routerAddress();
      assertThat(routerAddress).isEqualTo("localhost:" + mesh.router().port());

      List<GenerateChunk> chunks = new ArrayList<>();
      ManagedChannel ch = channel(routerAddress);
      try {
        RouterGrpc.newBlockingStub(ch)
            .withDeadlineAfter(60, TimeUnit.SECONDS)
            .generate(request(24))
            .forEachRemaining(chunks::add);
      } finally {
        ch.shutdownNow();
      }
      GenerateChunk last = chunks.get(chunks.size() - 1);
      assertThat(chunks.stream().filter(c -> c.getTokenIdsCount() > 0).count())
          .as("chunks with tokens")
          .isGreaterThan(1);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
      assertThat(last.getUsage().getCompletionTokens()).isEqualTo(24);
      assertThat(chunks.stream().mapToInt(GenerateChunk::getTokenIdsCount).sum()).isEqualTo(24);
      assertThat(last.getStats().getStrategy()).isEqualTo(Strategy.STRATEGY_SPECULATIVE);
      assertThat(last.getStats().getFallback()).isFalse();
      assertThat(last.getStats().getDraftCalls()).isPositive();
      assertThat(
              chunks.stream()
                  .flatMap(c -> c.getProvenanceList().stream())
                  .allMatch(
                      p ->
                          p == Provenance.PROVENANCE_TARGET
                              || p == Provenance.PROVENANCE_DRAFT_ACCEPTED))
          .isTrue();

      assertFreed(targetAddress);
      assertFreed(mesh.address(Mesh.DRAFT));
    } finally {
      mesh.close();
    }
    mesh.close(); // idempotent
    ManagedChannel ch = channel(targetAddress);
    try {
      assertThatThrownBy(
              () ->
                  ModelWorkerGrpc.newBlockingStub(ch)
                      .withDeadlineAfter(5, TimeUnit.SECONDS)
                      .getModelInfo(GetModelInfoRequest.getDefaultInstance()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
    } finally {
      ch.shutdownNow();
    }
  }

  /**
   * A router started beside the mesh's serves over the same workers with state of its own: Token
   * Recycling's table, which the mesh's router keeps learning from every request. On a table that
   * knows nothing the first step after the first token has nothing to draft; on one that learned
   * the prompt's answer it verifies a tree at once. Only the steps up to the first verify are
   * compared: after it the router chooses between verifying and a plain step by the wall times it
   * measured ({@code TreeVerifyGate}), which no test may depend on.
   */
  @Test
  void anotherRouterLearnsNothingFromTheFirst() throws Exception {
    try (Mesh mesh = Mesh.start(spec().build(), OpenTelemetry.noop())) {
      List<String> first = steps(recycled(mesh.routerAddress()));
      List<String> second = steps(recycled(mesh.routerAddress()));
      String router2 = mesh.startRouter("router-2", OpenTelemetry.noop());
      assertThat(mesh.addresses()).containsKey("router-2");
      List<String> fresh = steps(recycled(router2));

      assertThat(first.get(0)).as("the first run, on an empty table").isEqualTo("plain");
      assertThat(second.get(0))
          .as("the second run, on the table the first one filled")
          .startsWith("verify");
      assertThat(fresh.get(0)).as("a fresh router's first run").isEqualTo("plain");
      assertThat(untilFirstVerify(fresh)).isEqualTo(untilFirstVerify(first));
    }
  }

  /**
   * Per step after the target's first token, in order: "plain", or "verify, n accepted" (each step
   * streams one chunk with the running stats).
   */
  private static List<String> steps(List<GenerateChunk> chunks) {
    List<String> steps = new ArrayList<>();
    int rounds = 0;
    int accepted = 0;
    boolean opened = false;
    for (GenerateChunk c : chunks) {
      if (c.getTokenIdsCount() == 0) {
        continue;
      }
      GenerationStats s = c.getStats();
      if (opened) {
        steps.add(
            s.getRounds() == rounds
                ? "plain"
                : "verify, " + (s.getAccepted() - accepted) + " accepted");
      }
      opened = true;
      rounds = s.getRounds();
      accepted = s.getAccepted();
    }
    return steps;
  }

  private static List<String> untilFirstVerify(List<String> steps) {
    int end = 0;
    while (end < steps.size() && !steps.get(end++).startsWith("verify")) {}
    return steps.subList(0, end);
  }

  /** A greedy Token Recycling generation of 48 tokens; its chunks. */
  private static List<GenerateChunk> recycled(String router) {
    GenerateRequest r =
        GenerateRequest.newBuilder()
            .setText("Once upon a time")
            .setStrategy(Strategy.STRATEGY_SPECULATIVE)
            .setSpeculative(
                SpeculativeOptions.newBuilder()
                    .setDrafter(Drafter.DRAFTER_TOKEN_RECYCLING)
                    .setTreeNodes(8))
            .setSampling(Sampling.newBuilder().setTemperature(0f).setMaxTokens(48))
            .setIgnoreEos(true)
            .build();
    ManagedChannel ch = channel(router);
    try {
      List<GenerateChunk> chunks = new ArrayList<>();
      RouterGrpc.newBlockingStub(ch)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(r)
          .forEachRemaining(chunks::add);
      GenerateChunk last = chunks.get(chunks.size() - 1);
      assertThat(last.getUsage().getCompletionTokens()).isEqualTo(48);
      return chunks;
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void closeDrainsARunningGenerationThenStops() throws Exception {
    Mesh mesh = Mesh.start(spec().build(), OpenTelemetry.noop());
    ManagedChannel ch = channel(mesh.routerAddress());
    try {
      Iterator<GenerateChunk> it =
          RouterGrpc.newBlockingStub(ch)
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .generate(request(200));
      GenerateChunk first = it.next();
      assertThat(first.getTokenIdsCount()).isPositive();
      CountDownLatch closing = new CountDownLatch(1);
      CompletableFuture<Void> closed =
          CompletableFuture.runAsync(
              () -> {
                closing.countDown();
                mesh.close();
              });
      closing.await();
      int tokens = first.getTokenIdsCount();
      GenerateChunk last = first;
      while (it.hasNext()) {
        last = it.next();
        tokens += last.getTokenIdsCount();
      }
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
      assertThat(tokens).isEqualTo(200);
      closed.get(60, TimeUnit.SECONDS);
    } finally {
      ch.shutdownNow();
      mesh.close();
    }
  }

  @Test
  void portBaseGivesEachComponentItsOffset() {
    Mesh.Spec s = spec().portBase(41000).build();
    assertThat(s.port(Mesh.TARGET_PORT_OFFSET)).isEqualTo(41000);
    assertThat(s.port(Mesh.DRAFT_PORT_OFFSET)).isEqualTo(41001);
    assertThat(s.port(Mesh.ROUTER_PORT_OFFSET)).isEqualTo(41002);
    assertThat(spec().build().port(Mesh.ROUTER_PORT_OFFSET)).isZero();
    assertThatThrownBy(() -> spec().portBase(65535).build())
        .hasMessageContaining("--port-base: 65535");
  }

  @Test
  void targetReplicasAreOneToEightAndTheirPortsFollowTheMoreWorkers() {
    Mesh.Spec s =
        spec()
            .portBase(41000)
            .targetReplicas(3)
            .worker("more", draft, WorkerConfig.Role.DRAFT)
            .build();
    assertThat(s.targetPortOffset(0)).isEqualTo(Mesh.TARGET_PORT_OFFSET);
    assertThat(s.targetPortOffset(1)).isEqualTo(Mesh.MORE_WORKERS_PORT_OFFSET + 1);
    assertThat(s.targetPortOffset(2)).isEqualTo(Mesh.MORE_WORKERS_PORT_OFFSET + 2);
    assertThat(Mesh.targetReplica(1)).isEqualTo("target-1");
    assertThatThrownBy(() -> spec().targetReplicas(0).build())
        .hasMessage("targetReplicas: 0 (expected: 1..8)");
    assertThatThrownBy(() -> spec().targetReplicas(9).build())
        .hasMessage("targetReplicas: 9 (expected: 1..8)");
    assertThatThrownBy(() -> spec().worker("target-1", draft, WorkerConfig.Role.DRAFT).build())
        .hasMessageContaining("name taken");
  }

  private static ManagedChannel channel(String address) {
    return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
  }

  /** Waits (up to 5 s) for the worker to report no session open and every KV block free. */
  static void assertFreed(String address) throws InterruptedException {
    ManagedChannel ch = channel(address);
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      ModelInfo i;
      do {
        i =
            ModelWorkerGrpc.newBlockingStub(ch)
                .withDeadlineAfter(5, TimeUnit.SECONDS)
                .getModelInfo(GetModelInfoRequest.getDefaultInstance());
        if (i.getActiveSessions() == 0 && i.getKvBlocksFree() == i.getKvBlocksTotal()) {
          return;
        }
        Thread.sleep(20);
      } while (System.nanoTime() < deadline);
      assertThat(i.getActiveSessions()).as("active sessions on " + address).isZero();
      assertThat(i.getKvBlocksFree())
          .as("free KV blocks on " + address)
          .isEqualTo(i.getKvBlocksTotal());
    } finally {
      ch.shutdownNow();
    }
  }
}
