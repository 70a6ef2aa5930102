package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshFixture;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The router tests' view of {@link MeshFixture#routerSuite()} (real workers on real ports, started
 * once per JVM): the workers by pool name ({@code target}, {@code same}, {@code draft}, {@code
 * mixed}; see the fixture), a channel to the suite's router, and the router's own tokenizer (this
 * package's {@link BpeTokenizer}).
 */
final class TestMesh {
  static final int MAX_CONTEXT = MeshFixture.ROUTER_SUITE_MAX_CONTEXT;
  static final int MAX_TOKENS_PER_OP = MeshFixture.ROUTER_SUITE_MAX_TOKENS_PER_OP;

  private static TestMesh instance;

  final Path modelA;
  final Path modelB;
  final Path modelMixed;
  final Map<String, WorkerServer> workers = new LinkedHashMap<>();
  final ManagedChannel routerChannel;
  final ModelInfo targetInfo;
  final BpeTokenizer tokenizer;

  /** The shared mesh, started on first use. */
  static synchronized TestMesh get() {
    if (instance == null) {
      instance = new TestMesh(MeshFixture.routerSuite());
      Runtime.getRuntime().addShutdownHook(new Thread(instance.routerChannel::shutdownNow));
    }
    return instance;
  }

  private TestMesh(Mesh mesh) {
    modelA = MeshFixture.modelA();
    modelB = MeshFixture.modelB();
    modelMixed = MeshFixture.modelMixed();
    workers.put("target", mesh.targetWorker());
    workers.put("same", mesh.worker("same"));
    workers.put("draft", mesh.draftWorker());
    workers.put("mixed", mesh.worker("mixed"));
    routerChannel =
        Grpc.newChannelBuilder(mesh.routerAddress(), InsecureChannelCredentials.create()).build();
    targetInfo = info("target");
    try {
      tokenizer = BpeTokenizer.load(modelA.resolve(Checkpoint.TOKENIZER_JSON));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A router config over {@code pools} ("target" and, if present, "draft" are the defaults). */
  RouterConfig config(Map<String, String> pools, Duration draftTimeout) {
    List<String> flags = new ArrayList<>(MeshFixture.routerFlags(draftTimeout));
    flags.addAll(List.of("--port", "0", "--drain-seconds", "1"));
    flags.addAll(List.of("--tokenizers", modelA.resolve(Checkpoint.TOKENIZER_JSON).toString()));
    pools.forEach(
        (name, addrs) -> {
          if (name.equals("target") || name.equals("draft")) {
            flags.addAll(List.of("--" + name, addrs));
          } else {
            flags.addAll(List.of("--pool", name + "=" + addrs));
          }
        });
    return RouterConfig.parse(flags.toArray(String[]::new), Map.of());
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
    return MeshFixture.deadPort();
  }

  /** A worker on a free port, not registered in the mesh (the caller closes it). */
  static WorkerServer newWorker(Path model, WorkerConfig.Role role) throws IOException {
    return MeshFixture.worker(model, role);
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
    return MeshFixture.info("localhost:" + port);
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
    MeshFixture.assertFreed(name, "localhost:" + port, Duration.ofSeconds(5));
  }

  /**
   * Starts {@code request} on {@code channel}, waits up to {@code firstWithin} for its first chunk,
   * runs {@code whileRunning} (the request still streaming), cancels the call and waits until it
   * has ended.
   */
  static void cancelAfterFirstChunk(
      ManagedChannel channel, GenerateRequest request, Duration firstWithin, Runnable whileRunning)
      throws InterruptedException {
    CountDownLatch firstChunk = new CountDownLatch(1);
    CountDownLatch ended = new CountDownLatch(1);
    Context.CancellableContext ctx = Context.current().withCancellation();
    ctx.run(
        () ->
            RouterGrpc.newStub(channel)
                .generate(
                    request,
                    new StreamObserver<>() {
                      @Override
                      public void onNext(GenerateChunk c) {
                        firstChunk.countDown();
                      }

                      @Override
                      public void onError(Throwable t) {
                        ended.countDown();
                      }

                      @Override
                      public void onCompleted() {
                        ended.countDown();
                      }
                    }));
    assertThat(firstChunk.await(firstWithin.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
    whileRunning.run();
    ctx.cancel(null);
    assertThat(ended.await(10, TimeUnit.SECONDS)).isTrue();
  }

  /**
   * Runs {@code request} under a deadline until one lands mid-stream (chunks arrived, then
   * DEADLINE_EXCEEDED) and returns how many chunks came first. The first deadline is a quarter of
   * {@code whole}, what the same deterministic request took uninterrupted; one that passes before
   * the first chunk (a slow start on a loaded machine) is doubled, one the whole request beats is
   * halved. {@code freed} runs after every try: none may leave a session behind, whatever its
   * outcome.
   */
  static int deadlineMidStream(
      ManagedChannel channel, GenerateRequest request, Duration whole, Runnable freed) {
    long deadlineMs = Math.max(20, whole.toMillis() / 4);
    List<String> tries = new ArrayList<>();
    for (int attempt = 0; attempt < 6; attempt++) {
      int[] chunks = {0};
      Status.Code code = Status.Code.OK;
      try {
        RouterGrpc.newBlockingStub(channel)
            .withDeadlineAfter(deadlineMs, TimeUnit.MILLISECONDS)
            .generate(request)
            .forEachRemaining(c -> chunks[0]++);
      } catch (StatusRuntimeException e) {
        code = e.getStatus().getCode();
      }
      freed.run();
      tries.add(deadlineMs + " ms: " + code + " after " + chunks[0] + " chunks");
      if (code == Status.Code.OK) {
        deadlineMs = Math.max(1, deadlineMs / 2);
        continue;
      }
      assertThat(code).as("a deadline's status").isEqualTo(Status.Code.DEADLINE_EXCEEDED);
      if (chunks[0] > 0) {
        return chunks[0];
      }
      deadlineMs *= 2;
    }
    throw new AssertionError("no deadline landed mid-stream: " + tries);
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
}
