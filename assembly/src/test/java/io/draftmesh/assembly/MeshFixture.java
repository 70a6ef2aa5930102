package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.CheckpointWriter;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.checkpoint.TensorData;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The one test fixture of the mesh-level tests (router over real workers, gateway over the real
 * mesh, the command line and the benches): random checkpoints generated once per JVM, the shared
 * {@link Mesh}es started on first use (real ports, production wiring: {@code WorkerConfig} and
 * {@code RouterConfig} parsed from flags as a deployment would), and the checks every suite makes
 * (a worker's {@code ModelInfo}, "every session closed and every KV block free").
 *
 * <p>Checkpoints (all tiny random Llamas sharing one tokenizer, which depends only on the vocab):
 *
 * <ul>
 *   <li>{@link #modelA()}: seed 7;
 *   <li>{@link #modelB()}: seed 8, unrelated weights, so a draft of B against A is mostly rejected;
 *   <li>{@link #modelMixed()}: A with one MLP replaced by B's, correlated with A but not equal (0
 *       &lt; α &lt; 1), for the sampling tests;
 *   <li>{@link #longContext()}: A's shape with 8192 positions, so a generation asked for thousands
 *       of tokens runs long enough that a test can tell a cancelled one from a finished one.
 * </ul>
 */
public final class MeshFixture {
  /** Per-worker limits of {@link #routerSuite()}. */
  public static final int ROUTER_SUITE_MAX_CONTEXT = 1024;

  public static final int ROUTER_SUITE_MAX_TOKENS_PER_OP = 16;

  /** Longest context of {@link #longContext()} and of {@link #gatewaySuite()}'s workers. */
  public static final int LONG_CONTEXT = 8192;

  private static Path dir;
  private static Mesh routerSuite;
  private static Mesh gatewaySuite;

  private MeshFixture() {}

  private static synchronized Path dir() {
    if (dir == null) {
      try {
        Path d = Files.createTempDirectory("mesh-fixture");
        ModelConfig cfg = RandomCheckpoint.tinyLlama();
        RandomCheckpoint.write(d.resolve("tiny-a"), cfg, 7, DType.F32, 0);
        RandomCheckpoint.write(d.resolve("tiny-b"), cfg, 8, DType.F32, 0);
        writeMixed(d.resolve("tiny-mixed"), cfg);
        RandomCheckpoint.write(
            d.resolve("long/tiny-llama"), withContext(cfg, LONG_CONTEXT), 7, DType.F32, 0);
        dir = d;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return dir;
  }

  public static Path modelA() {
    return dir().resolve("tiny-a");
  }

  public static Path modelB() {
    return dir().resolve("tiny-b");
  }

  public static Path modelMixed() {
    return dir().resolve("tiny-mixed");
  }

  public static Path longContext() {
    return dir().resolve("long/tiny-llama");
  }

  private static void writeMixed(Path out, ModelConfig cfg) throws IOException {
    Map<String, TensorData> mixed = new LinkedHashMap<>(RandomCheckpoint.randomTensors(cfg, 7));
    Map<String, TensorData> other = RandomCheckpoint.randomTensors(cfg, 8);
    for (String name : List.of("model.layers.1.mlp.down_proj.weight")) {
      mixed.put(name, other.get(name));
    }
    Files.createDirectories(out);
    RandomCheckpoint.writeTokenizer(out.resolve(Checkpoint.TOKENIZER_JSON), cfg.vocabSize());
    new CheckpointWriter(cfg).write(out, mixed);
  }

  private static ModelConfig withContext(ModelConfig c, int positions) {
    return new ModelConfig(
        c.architecture(),
        c.vocabSize(),
        c.hiddenSize(),
        c.intermediateSize(),
        c.numLayers(),
        c.numHeads(),
        c.numKvHeads(),
        c.headDim(),
        c.ropeTheta(),
        c.ropeScaling(),
        c.rmsNormEps(),
        positions,
        c.tieWordEmbeddings(),
        c.attentionBias(),
        c.bosTokenId(),
        c.eosTokenId());
  }

  /**
   * The router tests' mesh: {@code target} serves A; {@code draft} B (low α); {@code same} a draft
   * worker on A itself (α ≈ 1); {@code mixed} the mixed checkpoint (0 &lt; α &lt; 1). The router
   * knows them as pools of those names. Started once per JVM, stopped at exit.
   */
  public static synchronized Mesh routerSuite() {
    if (routerSuite == null) {
      routerSuite =
          start(
              Mesh.Spec.builder(modelA(), modelB())
                  .kvBudgets(16, 16)
                  .limits(ROUTER_SUITE_MAX_CONTEXT, ROUTER_SUITE_MAX_TOKENS_PER_OP)
                  .drainSeconds(1)
                  .worker("same", modelA(), WorkerConfig.Role.DRAFT)
                  .worker("mixed", modelMixed(), WorkerConfig.Role.DRAFT)
                  // The suite's tests assert that nothing fell back to the target alone, so a draft
                  // op must not miss its deadline on a loaded machine (one did, at 5 s, under load
                  // average 5); the tests of a stalled or dead draft start routers of their own.
                  .routerFlags(routerFlags(Duration.ofSeconds(30)))
                  .build());
    }
    return routerSuite;
  }

  /**
   * The gateway tests' mesh: target and draft workers serving the same long-context checkpoint (so
   * drafts are mostly accepted), and a router over both. Started once per JVM, stopped at exit.
   */
  public static synchronized Mesh gatewaySuite() {
    if (gatewaySuite == null) {
      gatewaySuite =
          start(
              Mesh.Spec.builder(longContext(), longContext())
                  .kvBudgets(64, 64)
                  .limits(LONG_CONTEXT, 16)
                  .drainSeconds(1)
                  .routerFlags(
                      List.of(
                          "--max-tokens", "64",
                          "--max-tokens-limit", "8192",
                          "--max-concurrent", "32",
                          "--target-timeout-ms", "30000",
                          "--draft-timeout-ms", "5000",
                          "--ar-chunk", "8"))
                  .build());
    }
    return gatewaySuite;
  }

  /** The router flags the router suite runs with (and tests' own routers copy). */
  public static List<String> routerFlags(Duration draftTimeout) {
    return List.of(
        "--max-tokens", "64",
        "--max-tokens-limit", "4096",
        "--max-concurrent", "32",
        "--target-timeout-ms", "30000",
        "--draft-timeout-ms", Long.toString(draftTimeout.toMillis()),
        "--ar-chunk", "8");
  }

  private static Mesh start(Mesh.Spec spec) {
    try {
      Mesh m = Mesh.start(spec, OpenTelemetry.noop());
      Runtime.getRuntime().addShutdownHook(new Thread(m::close, "mesh-fixture-stop"));
      return m;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /**
   * A worker on a free port with the router suite's limits, not part of any mesh (the caller closes
   * it); started, not awaited.
   */
  public static WorkerServer worker(Path model, WorkerConfig.Role role) throws IOException {
    WorkerConfig config =
        WorkerConfig.parse(
            new String[] {
              "--model",
              model.toString(),
              "--port",
              "0",
              "--kv-budget-mb",
              "16",
              "--max-context",
              Integer.toString(ROUTER_SUITE_MAX_CONTEXT),
              "--max-tokens-per-op",
              Integer.toString(ROUTER_SUITE_MAX_TOKENS_PER_OP),
              "--drain-seconds",
              "0"
            },
            Map.of(),
            role);
    return WorkerServer.onPort(config, OpenTelemetry.noop()).start();
  }

  /** A port nothing listens on. */
  public static int deadPort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** The model info of the worker at {@code address} ({@code host:port}), asked directly. */
  public static ModelInfo info(String address) {
    ManagedChannel ch =
        Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    try {
      return ModelWorkerGrpc.newBlockingStub(ch)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    } finally {
      ch.shutdownNow();
    }
  }

  /**
   * Waits up to {@code within} until the worker at {@code address} has no session open and every KV
   * block free, then asserts it: every generation closed its session there.
   */
  public static void assertFreed(String name, String address, Duration within) {
    long deadline = System.nanoTime() + within.toNanos();
    ModelInfo i = info(address);
    while ((i.getActiveSessions() != 0 || i.getKvBlocksFree() != i.getKvBlocksTotal())
        && System.nanoTime() < deadline) {
      sleep(20);
      i = info(address);
    }
    assertThat(i.getActiveSessions()).as("active sessions on worker %s", name).isZero();
    assertThat(i.getKvBlocksFree())
        .as("free KV blocks on worker %s", name)
        .isEqualTo(i.getKvBlocksTotal());
  }

  /** {@link #assertFreed} for every worker of {@code mesh}. */
  public static void assertAllFreed(Mesh mesh, Duration within) {
    for (Map.Entry<String, String> e : mesh.addresses().entrySet()) {
      if (!e.getKey().equals(Mesh.ROUTER) && !e.getKey().equals("gateway")) {
        assertFreed(e.getKey(), e.getValue(), within);
      }
    }
  }

  public static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
