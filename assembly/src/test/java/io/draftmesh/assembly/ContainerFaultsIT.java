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
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * Faults on the real containers ({@code ./draftmesh images}, host networking, as in {@link
 * ContainerMeshIT}): {@code docker pause} of the draft (a stall), {@code docker restart} of the
 * draft under load, {@code docker kill} of the draft and then of the target in the middle of a
 * generation. Every outcome is asserted: a draft fault leaves the stream complete with exactly the
 * target's greedy output; a killed target is a clean {@code UNAVAILABLE}; every surviving worker is
 * back at 0 sessions with all KV blocks free. Ordered, because the kills are final.
 *
 * <p>Runs in the {@code containers} profile only ({@code .ci/run-containers}). Not covered: killing
 * the kvcache-service (the workers do not read through it in this wiring yet).
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ContainerFaultsIT {
  static final String VERSION = ContainerMeshIT.VERSION;
  static final String KEY = "faults-key-0123456789";
  static final int TOKENS = 300;

  static final List<GenericContainer<?>> containers = new ArrayList<>();
  static GenericContainer<?> target;
  static GenericContainer<?> draft;
  static int targetPort;
  static int draftPort;
  static int grpcPort;
  static ManagedChannel channel;
  static List<Integer> greedy; // the target's own greedy output, autoregressive

  static GenericContainer<?> service(String image, Path models, String... args) {
    GenericContainer<?> c =
        new GenericContainer<>(DockerImageName.parse("draftmesh/" + image + ":" + VERSION))
            .withNetworkMode("host")
            .withFileSystemBind(models.toString(), "/models", BindMode.READ_ONLY)
            .withEnv("DRAFTMESH_API_KEYS", KEY)
            .withCommand(args)
            .withStartupTimeout(Duration.ofMinutes(2));
    containers.add(c);
    return c;
  }

  static String[] worker(String role, int port) {
    return new String[] {
      "worker",
      "--role",
      role,
      "--model",
      "/models/" + role,
      "--port",
      Integer.toString(port),
      "--kv-budget-mb",
      "16",
      "--drain-seconds",
      "1"
    };
  }

  @BeforeAll
  static void start() throws Exception {
    Path models = ContainerMeshIT.readableModels();
    targetPort = ContainerMeshIT.freePort();
    draftPort = ContainerMeshIT.freePort();
    int routerPort = ContainerMeshIT.freePort();
    grpcPort = ContainerMeshIT.freePort();
    int httpPort = ContainerMeshIT.freePort();
    target = service("target-service", models, worker("target", targetPort));
    target.start();
    draft = service("draft-service", models, worker("draft", draftPort));
    draft.start();
    ContainerMeshIT.awaitServing(targetPort, "draftmesh.v1.ModelWorker");
    ContainerMeshIT.awaitServing(draftPort, "draftmesh.v1.ModelWorker");
    service(
            "router-service",
            models,
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
            "1")
        .start();
    ContainerMeshIT.awaitServing(routerPort, "draftmesh.v1.Router");
    service(
            "gateway",
            models,
            "gateway",
            "--router",
            "localhost:" + routerPort,
            "--host",
            "127.0.0.1",
            "--grpc-port",
            Integer.toString(grpcPort),
            "--http-port",
            Integer.toString(httpPort),
            "--model",
            "id=tiny,target=target,draft=draft,dir=/models/target")
        .start();
    ContainerMeshIT.awaitServing(grpcPort, "draftmesh.v1.Generation");
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
    for (int i = containers.size() - 1; i >= 0; i--) {
      containers.get(i).stop();
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
    try {
      chunks =
          speculativeWith(
              () -> draft.getDockerClient().pauseContainerCmd(draft.getContainerId()).exec());
    } finally {
      draft.getDockerClient().unpauseContainerCmd(draft.getContainerId()).exec();
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
    ContainerMeshIT.awaitServing(draftPort, "draftmesh.v1.ModelWorker");
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
    List<GenerateChunk> chunks =
        speculativeWith(
            () -> draft.getDockerClient().killContainerCmd(draft.getContainerId()).exec());
    assertThat(ids(chunks)).isEqualTo(greedy);
    assertThat(chunks.get(chunks.size() - 1).getStats().getFallback()).isTrue();
    assertFreed("target", targetPort);
  }

  @Test
  @Order(4)
  void killingTheTargetMidGenerationIsACleanUnavailable() {
    assertThatThrownBy(
            () ->
                speculativeWith(
                    () ->
                        target.getDockerClient().killContainerCmd(target.getContainerId()).exec()))
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
