package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterServer;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The real mesh behind the gateway tests, started once per JVM on real (port 0) ports: a target
 * worker and a draft worker serving the same tiny random Llama (so drafts are mostly accepted), and
 * a router over both. Gateways are started per test class with their own limits.
 *
 * <p>The checkpoint is tiny-llama with a context of 8192 positions, so a generation asked for
 * thousands of tokens runs for many seconds: a test that disconnects early can tell a cancelled
 * generation from one that finished.
 */
final class Mesh {
  static final String KEY = "test-key-0123456789";
  static final String OTHER_KEY = "other-key-9876543210";
  static final int MAX_CONTEXT = 8192;

  private static Mesh instance;

  final Path dir;
  final Path model;
  final WorkerServer target;
  final WorkerServer draft;
  final RouterServer router;

  static synchronized Mesh get() {
    if (instance == null) {
      try {
        instance = new Mesh();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      Runtime.getRuntime().addShutdownHook(new Thread(instance::close));
    }
    return instance;
  }

  private Mesh() throws IOException, InterruptedException {
    dir = Files.createTempDirectory("gateway-mesh");
    model = dir.resolve("tiny-llama");
    ModelConfig tiny = RandomCheckpoint.tinyLlama();
    ModelConfig longContext =
        new ModelConfig(
            tiny.architecture(),
            tiny.vocabSize(),
            tiny.hiddenSize(),
            tiny.intermediateSize(),
            tiny.numLayers(),
            tiny.numHeads(),
            tiny.numKvHeads(),
            tiny.headDim(),
            tiny.ropeTheta(),
            tiny.ropeScaling(),
            tiny.rmsNormEps(),
            MAX_CONTEXT,
            tiny.tieWordEmbeddings(),
            tiny.attentionBias(),
            tiny.bosTokenId(),
            tiny.eosTokenId());
    RandomCheckpoint.write(model, longContext, 7, DType.F32, 0);
    target = worker(WorkerConfig.Role.TARGET);
    draft = worker(WorkerConfig.Role.DRAFT);
    target.awaitReady(Duration.ofMinutes(2));
    draft.awaitReady(Duration.ofMinutes(2));
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", "localhost:" + target.port());
    pools.put("draft", "localhost:" + draft.port());
    RouterConfig config =
        new RouterConfig(
            0,
            pools,
            "target",
            "draft",
            List.of(model.resolve(Checkpoint.TOKENIZER_JSON)),
            64,
            8192,
            32,
            Duration.ofSeconds(30),
            Duration.ofSeconds(5),
            8,
            Duration.ofSeconds(1));
    router = RouterServer.onPort(config, OpenTelemetry.noop()).start();
  }

  private WorkerServer worker(WorkerConfig.Role role) throws IOException {
    EngineConfig engine = new EngineConfig(model, 64L << 20, 16, 16, 16, 16 + 256, MAX_CONTEXT);
    return new WorkerServer(
            Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
            role,
            () -> InferenceEngine.load(engine),
            Duration.ZERO,
            OpenTelemetry.noop())
        .start();
  }

  /** A gateway config for this mesh: model {@code tiny}, both keys, loopback, free ports. */
  GatewayConfig config() {
    return GatewayConfig.of("localhost:" + router.port(), List.of(KEY, OTHER_KEY))
        .withModels(List.of(new GatewayConfig.ModelSpec("tiny", "target", "draft", model, null)));
  }

  /** Starts a gateway for {@code config} (gRPC and HTTP on free loopback ports). */
  static GatewayServer gateway(GatewayConfig config) {
    try {
      GatewayServer g =
          new GatewayServer(
              NettyServerBuilder.forAddress(
                  new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create()),
              new InetSocketAddress("127.0.0.1", 0),
              GatewayServer.routerChannel(config.router(), OpenTelemetry.noop()),
              config,
              OpenTelemetry.noop());
      g.start();
      return g;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static ModelInfo info(WorkerServer w) {
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + w.port(), InsecureChannelCredentials.create())
            .build();
    try {
      return ModelWorkerGrpc.newBlockingStub(ch)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    } finally {
      ch.shutdownNow();
    }
  }

  /** Sessions open on the target worker now. */
  int activeTargetSessions() {
    return info(target).getActiveSessions();
  }

  /**
   * Waits up to {@code within} until both workers have no session open and every KV block free,
   * then asserts it.
   */
  void assertFreed(Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    for (WorkerServer w : List.of(target, draft)) {
      ModelInfo i = info(w);
      while ((i.getActiveSessions() != 0 || i.getKvBlocksFree() != i.getKvBlocksTotal())
          && System.nanoTime() < deadline) {
        sleep(20);
        i = info(w);
      }
      assertThat(i.getActiveSessions())
          .as("active sessions on the %s worker", i.getRole())
          .isZero();
      assertThat(i.getKvBlocksFree())
          .as("free KV blocks on the %s worker", i.getRole())
          .isEqualTo(i.getKvBlocksTotal());
    }
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  void close() {
    router.close();
    target.close();
    draft.close();
  }
}
