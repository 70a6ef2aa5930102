package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.testcontainers.containers.GenericContainer;

/**
 * Faults on the real containers ({@link ContainerFixture}): {@code docker pause} of the draft (a
 * stall), {@code docker restart} of the draft under load, {@code docker kill} of the draft and then
 * of the target in the middle of a generation. Every outcome is asserted: a draft fault leaves the
 * stream complete with exactly the target's greedy output; a killed target is a clean {@code
 * UNAVAILABLE}; every surviving worker is back at 0 sessions with all KV blocks free. Ordered,
 * because the kills are final.
 *
 * <p>Runs in the {@code containers} profile only ({@code .ci/run-containers}). Killing the
 * kvcache-service is {@link ContainerKvCacheFaultsIT}.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ContainerFaultsIT {
  static final String KEY = "faults-key-0123456789";
  static final int TOKENS = 300;

  static ContainerFixture mesh;
  static GenericContainer<?> target;
  static GenericContainer<?> draft;
  static int targetPort;
  static int draftPort;
  static int grpcPort;
  static ManagedChannel channel;
  static List<Integer> greedy; // the target's own greedy output, autoregressive

  @BeforeAll
  static void start() throws Exception {
    mesh = new ContainerFixture(KEY);
    targetPort = ContainerFixture.freePort();
    draftPort = ContainerFixture.freePort();
    int routerPort = ContainerFixture.freePort();
    grpcPort = ContainerFixture.freePort();
    int httpPort = ContainerFixture.freePort();
    target =
        mesh.start(
            "target-service", ContainerFixture.worker("target", targetPort).toArray(String[]::new));
    draft =
        mesh.start(
            "draft-service", ContainerFixture.worker("draft", draftPort).toArray(String[]::new));
    mesh.awaitServing(targetPort, "draftmesh.v1.ModelWorker");
    mesh.awaitServing(draftPort, "draftmesh.v1.ModelWorker");
    mesh.start(
        "router-service",
        "router",
        "--port",
        Integer.toString(routerPort),
        "--target",
        "localhost:" + targetPort,
        "--draft",
        "localhost:" + draftPort,
        "--tokenizers",
        "/models",
        "--draft-timeout-ms",
        "1000",
        "--max-tokens-limit",
        "4096",
        "--drain-seconds",
        "1");
    mesh.awaitServing(routerPort, "draftmesh.v1.Router");
    mesh.startGateway(routerPort, grpcPort, httpPort);
    channel =
        Grpc.newChannelBuilder("127.0.0.1:" + grpcPort, InsecureChannelCredentials.create())
            .build();
    greedy = ids(collect(request(Strategy.STRATEGY_AUTOREGRESSIVE)));
    assertThat(greedy).hasSize(TOKENS);
  }

  @AfterAll
  static void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (mesh != null) {
      mesh.close();
    }
  }

  static GenerateRequest request(Strategy strategy) {
    return GenerateRequest.newBuilder()
        .setText("In the beginning")
        .setTarget("tiny")
        .setIgnoreEos(true)
        .setStrategy(strategy)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(4))
        .setSampling(Sampling.newBuilder().setTemperature(0).setMaxTokens(TOKENS))
        .build();
  }

  static GenerationGrpc.GenerationBlockingStub stub() {
    Metadata auth = new Metadata();
    auth.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + KEY);
    return GenerationGrpc.newBlockingStub(channel)
        .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(auth))
        .withDeadlineAfter(120, TimeUnit.SECONDS);
  }

  static List<GenerateChunk> collect(GenerateRequest r) {
    List<GenerateChunk> out = new ArrayList<>();
    stub().generate(r).forEachRemaining(out::add);
    return out;
  }

  static List<Integer> ids(List<GenerateChunk> chunks) {
    List<Integer> ids = new ArrayList<>();
    chunks.forEach(c -> ids.addAll(c.getTokenIdsList()));
    return ids;
  }

  /** A speculative stream; {@code fault} runs after its third chunk. */
  static List<GenerateChunk> speculativeWith(Runnable fault) {
    List<GenerateChunk> out = new ArrayList<>();
    Iterator<GenerateChunk> it = stub().generate(request(Strategy.STRATEGY_SPECULATIVE));
    while (it.hasNext()) {
      out.add(it.next());
      if (out.size() == 3) {
        fault.run();
      }
    }
    return out;
  }

  static void assertFreed(String name, int port) {
    MeshFixture.assertFreed(name, "localhost:" + port, Duration.ofSeconds(15));
  }

  @Test
  @Order(1)
  void aPausedDraftIsDroppedAfterItsRoundDeadlineAndTheOutputIsTheTargets() throws Exception {
    List<GenerateChunk> chunks;
    AtomicBoolean paused = new AtomicBoolean();
    try {
      chunks =
          speculativeWith(
              () -> {
                draft.getDockerClient().pauseContainerCmd(draft.getContainerId()).exec();
                paused.set(true);
              });
    } finally {
      // Only what was paused: an unpause of a running container fails and would hide why the
      // stream failed before its third chunk.
      if (paused.get()) {
        draft.getDockerClient().unpauseContainerCmd(draft.getContainerId()).exec();
      }
    }
    assertThat(ids(chunks)).isEqualTo(greedy);
    assertThat(chunks.get(chunks.size() - 1).getStats().getFallback()).isTrue();
    assertFreed("target", targetPort);
    // Unpaused, the draft sees the router's cancel of the stalled session and frees it.
    assertFreed("draft", draftPort);
  }

  @Test
  @Order(2)
  void restartingTheDraftUnderLoadLosesNoStream() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<List<GenerateChunk>>> runs = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        runs.add(pool.submit(() -> collect(request(Strategy.STRATEGY_SPECULATIVE))));
      }
      Thread.sleep(500);
      draft.getDockerClient().restartContainerCmd(draft.getContainerId()).withTimeout(1).exec();
      for (Future<List<GenerateChunk>> f : runs) {
        assertThat(ids(f.get(3, TimeUnit.MINUTES))).isEqualTo(greedy);
      }
    } finally {
      pool.shutdownNow();
    }
    mesh.awaitServing(draftPort, "draftmesh.v1.ModelWorker");
    assertFreed("target", targetPort);
    assertFreed("draft", draftPort);
    // Back in service: a new request drafts again.
    List<GenerateChunk> again = collect(request(Strategy.STRATEGY_SPECULATIVE));
    assertThat(ids(again)).isEqualTo(greedy);
    assertThat(again.get(again.size() - 1).getStats().getFallback()).isFalse();
  }

  @Test
  @Order(3)
  void killingTheDraftMidGenerationFallsBackToTheTargetsOutput() {
    List<GenerateChunk> chunks = speculativeWith(() -> ContainerFixture.kill(draft));
    assertThat(ids(chunks)).isEqualTo(greedy);
    assertThat(chunks.get(chunks.size() - 1).getStats().getFallback()).isTrue();
    assertFreed("target", targetPort);
  }

  @Test
  @Order(4)
  void killingTheTargetMidGenerationIsACleanUnavailable() {
    assertThatThrownBy(() -> speculativeWith(() -> ContainerFixture.kill(target)))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
              // Public errors name nothing internal (no host:port).
              assertThat(String.valueOf(e.getStatus().getDescription()))
                  .doesNotContain("localhost:" + targetPort);
            });
  }
}
