package io.draftmesh.router;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.CheckpointWriter;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.checkpoint.TensorData;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Real model workers for the router tests, on real (port 0) Netty ports, started once per JVM:
 *
 * <ul>
 *   <li>{@code target}: tiny random Llama A (seed 7);
 *   <li>{@code same}: a draft worker serving the very same checkpoint A, so α ≈ 1;
 *   <li>{@code draft}: checkpoint B (seed 8), unrelated weights, so α is low;
 *   <li>{@code mixed}: A with one MLP replaced by B's, correlated with A but not equal (0 &lt; α
 *       &lt; 1), for the sampling test.
 * </ul>
 *
 * All share one tokenizer (it depends only on the vocab size). The router runs in-process and knows
 * the tokenizer through {@code --tokenizers}.
 */
final class TestMesh {
  static final int MAX_CONTEXT = 1024;
  static final int MAX_TOKENS_PER_OP = 16;

  private static TestMesh instance;

  final Path dir;
  final Path modelA;
  final Path modelB;
  final Path modelMixed;
  final Map<String, WorkerServer> workers = new LinkedHashMap<>();
  final RouterServer router;
  final ManagedChannel routerChannel;
  final ModelInfo targetInfo;
  final BpeTokenizer tokenizer;

  /** The shared mesh, started on first use. */
  static synchronized TestMesh get() {
    if (instance == null) {
      try {
        instance = new TestMesh();
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

  private TestMesh() throws IOException, InterruptedException {
    dir = Files.createTempDirectory("router-mesh");
    ModelConfig cfg = RandomCheckpoint.tinyLlama();
    modelA = dir.resolve("tiny-a");
    modelB = dir.resolve("tiny-b");
    modelMixed = dir.resolve("tiny-mixed");
    RandomCheckpoint.write(modelA, cfg, 7, DType.F32, 0);
    RandomCheckpoint.write(modelB, cfg, 8, DType.F32, 0);
    Map<String, TensorData> mixed = new LinkedHashMap<>(RandomCheckpoint.randomTensors(cfg, 7));
    Map<String, TensorData> other = RandomCheckpoint.randomTensors(cfg, 8);
    for (String name : List.of("model.layers.1.mlp.down_proj.weight")) {
      mixed.put(name, other.get(name));
    }
    Files.createDirectories(modelMixed);
    RandomCheckpoint.writeTokenizer(modelMixed.resolve(Checkpoint.TOKENIZER_JSON), cfg.vocabSize());
    new CheckpointWriter(cfg).write(modelMixed, mixed);

    List<WorkerServer> starting = new ArrayList<>();
    starting.add(startWorker("target", modelA, WorkerConfig.Role.TARGET));
    starting.add(startWorker("same", modelA, WorkerConfig.Role.DRAFT));
    starting.add(startWorker("draft", modelB, WorkerConfig.Role.DRAFT));
    starting.add(startWorker("mixed", modelMixed, WorkerConfig.Role.DRAFT));
    for (WorkerServer w : starting) {
      w.awaitReady(Duration.ofMinutes(2));
    }
    Map<String, String> pools = new LinkedHashMap<>();
    workers.forEach((name, w) -> pools.put(name, "localhost:" + w.port()));
    RouterConfig config = config(pools, Duration.ofSeconds(5));
    String name = InProcessServerBuilder.generateName();
    router =
        new RouterServer(InProcessServerBuilder.forName(name), config, OpenTelemetry.noop())
            .start();
    routerChannel = InProcessChannelBuilder.forName(name).build();
    targetInfo = info("target");
    tokenizer = BpeTokenizer.load(modelA.resolve(Checkpoint.TOKENIZER_JSON));
  }

  /** A router config over {@code pools} ("target" and, if present, "draft" are the defaults). */
  RouterConfig config(Map<String, String> pools, Duration draftTimeout) {
    return new RouterConfig(
        0,
        pools,
        "target",
        pools.containsKey("draft") ? "draft" : null,
        List.of(modelA.resolve(Checkpoint.TOKENIZER_JSON)),
        64,
        4096,
        32,
        Duration.ofSeconds(30),
        draftTimeout,
        8,
        Duration.ofSeconds(1));
  }

  /**
   * Another router on a real port over the mesh's target plus {@code pools} (name to {@code
   * host:port}); the caller closes it.
   */
  RouterServer routerOnPort(Map<String, String> pools, Duration draftTimeout) throws IOException {
    Map<String, String> all = new LinkedHashMap<>();
    all.put("target", "localhost:" + workers.get("target").port());
    all.putAll(pools);
    return RouterServer.onPort(config(all, draftTimeout), OpenTelemetry.noop()).start();
  }

  /** A port nothing listens on. */
  static int deadPort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** Starts (without waiting for the model) a worker on a free port and registers it. */
  WorkerServer startWorker(String name, Path model, WorkerConfig.Role role) throws IOException {
    WorkerServer w = newWorker(model, role);
    workers.put(name, w);
    return w;
  }

  /** A worker on a free port, not registered in the mesh (the caller closes it). */
  static WorkerServer newWorker(Path model, WorkerConfig.Role role) throws IOException {
    EngineConfig engine =
        new EngineConfig(
            model, 16L << 20, 16, 32, MAX_TOKENS_PER_OP, MAX_TOKENS_PER_OP + 256, MAX_CONTEXT);
    return new WorkerServer(
            Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
            role,
            () -> InferenceEngine.load(engine),
            Duration.ZERO,
            OpenTelemetry.noop())
        .start();
  }

  RouterGrpc.RouterBlockingStub router() {
    return RouterGrpc.newBlockingStub(routerChannel);
  }

  RouterGrpc.RouterStub routerAsync() {
    return RouterGrpc.newStub(routerChannel);
  }

  /** The model info of the named worker, asked directly. */
  ModelInfo info(String worker) {
    return infoAt(workers.get(worker).port());
  }

  static ModelInfo infoAt(int port) {
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + port, InsecureChannelCredentials.create()).build();
    try {
      return ModelWorkerGrpc.newBlockingStub(ch)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    } finally {
      ch.shutdownNow();
    }
  }

  /**
   * Waits (up to 5 s) until every worker of the mesh has no session open and all KV blocks free:
   * every generation closed both its sessions.
   */
  void assertAllSessionsClosed() {
    for (String name : workers.keySet()) {
      assertFreed(name, workers.get(name).port());
    }
  }

  static void assertFreed(String name, int port) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    ModelInfo i = infoAt(port);
    while ((i.getActiveSessions() != 0 || i.getKvBlocksFree() != i.getKvBlocksTotal())
        && System.nanoTime() < deadline) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
      i = infoAt(port);
    }
    org.assertj.core.api.Assertions.assertThat(i.getActiveSessions())
        .as("active sessions on worker %s", name)
        .isZero();
    org.assertj.core.api.Assertions.assertThat(i.getKvBlocksFree())
        .as("free KV blocks on worker %s", name)
        .isEqualTo(i.getKvBlocksTotal());
  }

  /** The chunks of one Generate call. */
  List<GenerateChunk> chunks(GenerateRequest request) {
    List<GenerateChunk> out = new ArrayList<>();
    Iterator<GenerateChunk> it = router().withDeadlineAfter(60, TimeUnit.SECONDS).generate(request);
    it.forEachRemaining(out::add);
    return out;
  }

  /** The result of one Generate call, put together from its chunks. */
  Result generate(GenerateRequest request) {
    return Result.of(chunks(request));
  }

  /** A whole generation: ids, provenance, text, and the last chunk. */
  record Result(List<Integer> ids, List<Integer> provenance, String text, GenerateChunk last) {
    static Result of(List<GenerateChunk> chunks) {
      List<Integer> ids = new ArrayList<>();
      List<Integer> prov = new ArrayList<>();
      StringBuilder text = new StringBuilder();
      for (GenerateChunk c : chunks) {
        // Every streamed token carries its own text and the target's entropy where it was chosen.
        org.assertj.core.api.Assertions.assertThat(c.getTokenTextCount())
            .isEqualTo(c.getTokenIdsCount());
        org.assertj.core.api.Assertions.assertThat(c.getEntropyBitsList())
            .hasSize(c.getTokenIdsCount())
            .allSatisfy(
                h -> org.assertj.core.api.Assertions.assertThat(h).isFinite().isNotNegative());
        ids.addAll(c.getTokenIdsList());
        prov.addAll(c.getProvenanceValueList());
        text.append(c.getText());
      }
      return new Result(ids, prov, text.toString(), chunks.get(chunks.size() - 1));
    }
  }

  void close() {
    routerChannel.shutdownNow();
    router.close();
    for (WorkerServer w : workers.values()) {
      w.close();
    }
  }
}
