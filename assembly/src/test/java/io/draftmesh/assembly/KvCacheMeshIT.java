package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The kvcache in the mesh, on real ports: two target workers linked to one kvcache-service and a
 * router over them. Prompt KV computed on one replica is reused on the other through the service
 * with the greedy output of a cold run; a killed, stalled or garbage-returning service changes no
 * output, hangs nothing and leaks no block; the router places a request on the replica holding its
 * prefix and falls back to round-robin when the index is down.
 */
class KvCacheMeshIT {
  static final int TOKENS = 12;

  /** The pools of the two target replicas (the router's pool "target" spans both). */
  static final String A = Mesh.targetReplica(0);

  static final String B = Mesh.targetReplica(1);

  /**
   * kvcache (optional) and a {@link Mesh} of two target replicas, a and b (each with its own {@code
   * /metrics}), linked to it, with a router placing over them.
   */
  static final class Topology implements AutoCloseable {
    KvCacheServer kvcache;
    final Telemetry metricsA = metrics();
    final Telemetry metricsB = metrics();
    final Mesh mesh;
    final WorkerServer a;
    final WorkerServer b;
    final ManagedChannel channel;

    Topology(String kvTarget, boolean startKvcache) throws Exception {
      this(kvTarget, startKvcache, 2000);
    }

    /**
     * @param deadlineMs the workers' --kvcache-deadline-ms
     */
    Topology(String kvTarget, boolean startKvcache, int deadlineMs) throws Exception {
      this(kvTarget, startKvcache, deadlineMs, List.of());
    }

    /**
     * @param workerFlags more flags for both target workers
     */
    Topology(String kvTarget, boolean startKvcache, int deadlineMs, List<String> workerFlags)
        throws Exception {
      if (startKvcache) {
        kvcache = KvCacheServer.onPort(KvCacheConfig.inMemory(64L << 20), OpenTelemetry.noop());
        kvcache.start();
        kvTarget = "localhost:" + kvcache.port();
      }
      Mesh.Spec spec =
          Mesh.Spec.builder(MeshFixture.modelA(), null)
              .targetReplicas(2)
              .kvBudgets(16, 16)
              .limits(1024, 64)
              .drainSeconds(0)
              .kvCache(kvTarget)
              .targetFlags(
                  kvTarget == null
                      ? List.of()
                      : List.of("--kvcache-deadline-ms", Integer.toString(deadlineMs)))
              .routerFlags(List.of("--kvcache-deadline-ms", "200"))
              .workerFlags(workerFlags)
              .build();
      mesh =
          Mesh.start(
              spec,
              name ->
                  name.equals(A)
                      ? metricsA.openTelemetry()
                      : name.equals(B) ? metricsB.openTelemetry() : OpenTelemetry.noop());
      a = mesh.targetWorkers().get(0);
      b = mesh.targetWorkers().get(1);
      channel =
          Grpc.newChannelBuilder(mesh.routerAddress(), InsecureChannelCredentials.create()).build();
    }

    /** As the launcher runs a worker by default: SDK off, only {@code /metrics} (a free port). */
    static Telemetry metrics() {
      return Telemetry.withMetrics(
          Map.of("OTEL_SDK_DISABLED", "true"), "draftmesh-worker", "127.0.0.1", 0);
    }

    /**
     * The value of {@code metric} in a scrape of worker {@code w}'s {@code /metrics} (its one
     * series: the worker's role and model).
     */
    double metric(WorkerServer w, String metric) throws IOException, InterruptedException {
      Telemetry t = w == a ? metricsA : metricsB;
      HttpResponse<String> r =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(
                          URI.create("http://127.0.0.1:" + t.metricsPort() + "/metrics"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      assertThat(r.statusCode()).isEqualTo(200);
      Matcher m =
          Pattern.compile("(?m)^" + metric + "\\{[^}]*role=\"target\"[^}]*\\} (\\S+)$")
              .matcher(r.body());
      assertThat(m.find()).as("%s in:%n%s", metric, r.body()).isTrue();
      return Double.parseDouble(m.group(1));
    }

    /** The greedy tokens of {@code prompt} generated on pool {@code pool}. */
    List<Integer> generate(String pool, int[] prompt, int tokens) {
      return run(pool, prompt, tokens).tokens();
    }

    /** One greedy generation: its tokens and the stats of its final chunk. */
    record Run(List<Integer> tokens, GenerationStats stats) {}

    Run run(String pool, int[] prompt, int tokens) {
      return run(pool, prompt, tokens, null);
    }

    /** As {@link #run(String, int[], int)}, with KV compression when {@code kv} is not null. */
    Run run(String pool, int[] prompt, int tokens, KvCompressionOptions kv) {
      GenerateRequest r =
          kv == null
              ? request(prompt, pool, tokens)
              : request(prompt, pool, tokens).toBuilder().setKvCompression(kv).build();
      List<Integer> out = new ArrayList<>();
      GenerationStats stats = null;
      Iterator<GenerateChunk> it =
          RouterGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS).generate(r);
      while (it.hasNext()) {
        GenerateChunk c = it.next();
        out.addAll(c.getTokenIdsList());
        stats = c.getStats();
      }
      return new Run(out, stats);
    }

    ModelInfo info(WorkerServer w) {
      return MeshFixture.info("localhost:" + w.port());
    }

    void assertFreed() {
      MeshFixture.assertFreed("a", "localhost:" + a.port(), Duration.ofSeconds(5));
      MeshFixture.assertFreed("b", "localhost:" + b.port(), Duration.ofSeconds(5));
    }

    @Override
    public void close() {
      channel.shutdownNow();
      mesh.close();
      if (kvcache != null) {
        kvcache.close();
      }
      metricsA.close();
      metricsB.close();
    }
  }

  /** {@code tokens} greedy tokens of {@code prompt} on {@code pool} ("" = the default), no EOS. */
  static GenerateRequest request(int[] prompt, String pool, int tokens) {
    TokenIds.Builder ids = TokenIds.newBuilder();
    for (int t : prompt) {
      ids.addIds(t);
    }
    return GenerateRequest.newBuilder()
        .setTokenIds(ids)
        .setTarget(pool)
        .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(tokens))
        .build();
  }

  static int[] prompt(int n, int seed) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = 2 + (i * 37 + seed * 101 + i * i * seed) % 500;
    }
    return p;
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime()).as("waiting for %s", what).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  /** Tokens a worker's sessions took from its prefix cache, fetched ones included. */
  static long cached(Topology t, WorkerServer w) {
    return t.info(w).getPromptTokensCached();
  }

  @Test
  void aCompactedDocumentIsRestoredOnTheOtherReplicaAndTheResponseSaysSo() throws Exception {
    try (Topology t = new Topology(null, true)) {
      int[] doc = prompt(200, 7);
      int[] q1 = prompt(12, 8);
      int[] p = java.util.Arrays.copyOf(doc, doc.length + q1.length);
      System.arraycopy(q1, 0, p, doc.length, q1.length);
      KvCompressionOptions snap =
          KvCompressionOptions.newBuilder()
              .setMethod("snapkv")
              .setBudget(48)
              .setWindow(16)
              .setPrefixTokens(doc.length)
              .build();
      Topology.Run first = t.run(A, p, TOKENS, snap);
      KvCompressionStats f = first.stats().getKvCompression();
      assertThat(f.getRestored()).isFalse();
      assertThat(f.getPromptTokens()).isEqualTo(200);
      assertThat(f.getKeptSlots()).isEqualTo(48);
      await("a stored the compacted document", () -> t.a.kvcache().stats().storedCompacted() >= 1);

      Topology.Run second = t.run(B, p, TOKENS, snap);
      assertThat(second.tokens()).isEqualTo(first.tokens());
      KvCompressionStats s = second.stats().getKvCompression();
      assertThat(s.getRestored()).isTrue();
      assertThat(s.getKvBytesRestored()).isEqualTo(f.getKvBytesKept()).isPositive();
      assertThat(s.getKeptSlots()).isEqualTo(48);
      assertThat(s.getDroppedSlots()).isEqualTo(200 - 48);
      // The document came from the service; only the question was prefilled.
      assertThat(second.stats().getFetchedPromptTokens()).isEqualTo(200);
      assertThat(second.stats().getPrefilledPromptTokens()).isEqualTo(q1.length);
      // The links' compacted-cache counters, as Prometheus scrapes them: a looked the document up
      // once, found nothing and stored it; b restored it.
      String link = "draftmesh_kvcache_link_";
      assertThat(t.metric(t.a, link + "compacted_misses_total")).isEqualTo(1);
      assertThat(t.metric(t.a, link + "stored_compacted_total")).isEqualTo(1);
      assertThat(t.metric(t.a, link + "restored_compacted_total")).isZero();
      assertThat(t.metric(t.b, link + "restored_compacted_total")).isEqualTo(1);
      assertThat(t.metric(t.b, link + "compacted_misses_total")).isZero();
      for (WorkerServer w : List.of(t.a, t.b)) {
        assertThat(t.metric(w, link + "garbage_compacted_total")).isZero();
      }
      t.assertFreed();
    }
  }

  @Test
  void aPrefixPrefilledOnOneReplicaIsReusedOnTheOtherWithTheColdOutput() throws Exception {
    try (Topology t = new Topology(null, true)) {
      int[] p = prompt(120, 1); // 7 reusable blocks of 16 (the last token is always fed)
      Topology.Run coldRun = t.run(A, p, TOKENS);
      List<Integer> cold = coldRun.tokens();
      assertThat(cold).hasSize(TOKENS);
      // The response says what the target reused: nothing, cold.
      assertThat(coldRun.stats().getCachedPromptTokens()).isZero();
      assertThat(coldRun.stats().getFetchedPromptTokens()).isZero();
      assertThat(coldRun.stats().getPrefilledPromptTokens()).isEqualTo(120);
      await("a's prompt blocks published", () -> t.a.kvcache().stats().publishedBlocks() >= 7);

      long computedBefore = t.info(t.b).getPromptTokensComputed(); // the warm-up's
      Topology.Run warmRun = t.run(B, p, TOKENS);
      List<Integer> warm = warmRun.tokens();
      assertThat(warm).isEqualTo(cold);
      // Warm on the other replica: 7 blocks fetched from the service, the last 8 tokens prefilled.
      assertThat(warmRun.stats().getFetchedPromptTokens()).isEqualTo(112);
      assertThat(warmRun.stats().getCachedPromptTokens()).isEqualTo(112);
      assertThat(warmRun.stats().getPrefilledPromptTokens()).isEqualTo(8);
      assertThat(t.b.kvcache().stats().fetchedBlocks()).isEqualTo(7);
      assertThat(cached(t, t.b)).isEqualTo(112);
      assertThat(t.info(t.b).getPromptTokensComputed() - computedBefore).isEqualTo(8);
      // The same worker again: its own prefix cache, nothing fetched.
      Topology.Run again = t.run(B, p, TOKENS);
      assertThat(again.tokens()).isEqualTo(cold);
      assertThat(again.stats().getCachedPromptTokens()).isEqualTo(112);
      assertThat(again.stats().getFetchedPromptTokens()).isZero();
      assertThat(t.b.kvcache().stats().fetchedBlocks()).isEqualTo(7);
      assertThat(cached(t, t.b)).isEqualTo(224);

      // The links' counters, as Prometheus scrapes them: a looked up once and found nothing,
      // then published its blocks; b fetched them; neither missed a call.
      String link = "draftmesh_kvcache_link_";
      assertThat(t.metric(t.a, link + "fetch_misses_total")).isEqualTo(1);
      assertThat(t.metric(t.a, link + "published_blocks_total")).isGreaterThanOrEqualTo(7);
      assertThat(t.metric(t.a, link + "fetched_blocks_total")).isZero();
      assertThat(t.metric(t.b, link + "fetched_blocks_total")).isEqualTo(7);
      assertThat(t.metric(t.b, link + "fetch_misses_total")).isZero();
      assertThat(t.metric(t.b, link + "garbage_blocks_total")).isZero();
      for (WorkerServer w : List.of(t.a, t.b)) {
        assertThat(t.metric(w, link + "client_failures_total")).isZero();
        assertThat(t.metric(w, link + "publish_dropped_total")).isZero();
        assertThat(t.metric(w, link + "failed_put_blocks_total")).isZero();
      }
      t.assertFreed();
    }
  }

  @Test
  void float16PoolsExchangeTheirBlocksAsTheyAreWithTheColdOutput() throws Exception {
    try (Topology t = new Topology(null, true, 2000, List.of("--kv-dtype", "float16"))) {
      assertThat(t.info(t.a).getKvDtype()).isEqualTo("float16");
      int[] p = prompt(120, 3);
      List<Integer> cold = t.generate(A, p, TOKENS);
      await("a's prompt blocks published", () -> t.a.kvcache().stats().publishedBlocks() >= 7);
      Topology.Run warm = t.run(B, p, TOKENS);
      assertThat(warm.tokens()).isEqualTo(cold);
      assertThat(warm.stats().getFetchedPromptTokens()).isEqualTo(112);
      assertThat(t.b.kvcache().stats().fetchedBlocks()).isEqualTo(7);
      // A float16 block is half a float32 one: what the service holds is the pool's own bytes.
      long bytesPerBlock = t.a.engine().pool().blockBytes();
      assertThat(bytesPerBlock * 2)
          .isEqualTo(
              io.draftmesh.engine.kv.KvBlockPool.bytesPerBlock(
                  t.a.engine().pool().layers(),
                  t.a.engine().pool().kvHeads(),
                  t.a.engine().pool().headDim(),
                  t.a.engine().pool().blockSize(),
                  io.draftmesh.engine.kv.KvDtype.FLOAT32));
      t.assertFreed();
    }
  }

  @Test
  void aKilledKvcacheChangesNoOutputAndLeaksNothing() throws Exception {
    try (Topology t = new Topology(null, true)) {
      int[] p = prompt(150, 2);
      List<Integer> cold = t.generate(A, p, TOKENS);
      // Killed while a long generation publishes its blocks.
      CompletableFuture<List<Integer>> running =
          CompletableFuture.supplyAsync(() -> t.generate(B, prompt(100, 3), 300));
      Thread.sleep(50);
      t.kvcache.close();
      assertThat(running.get(60, TimeUnit.SECONDS)).hasSize(300);
      // b cannot fetch a's blocks any more: it prefills, with the same output.
      assertThat(t.generate(B, p, TOKENS)).isEqualTo(cold);
      assertThat(t.generate("target", p, TOKENS)).isEqualTo(cold); // placement falls back
      t.assertFreed();
      assertThat(t.b.kvcache().stats().clientFailures()).isPositive();
    }
  }

  @Test
  void aStalledKvcacheChangesNoOutputAndHangsNothing() throws Exception {
    // A port that accepts connections and never answers: every call runs into its deadline.
    try (ServerSocket silent = new ServerSocket(0);
        Topology cold = new Topology(null, false)) {
      List<Socket> held = new ArrayList<>();
      Thread acceptor =
          new Thread(
              () -> {
                try {
                  while (true) {
                    held.add(silent.accept());
                  }
                } catch (IOException closed) {
                  // the test is over
                }
              });
      acceptor.setDaemon(true);
      acceptor.start();
      int[] p = prompt(90, 4);
      List<Integer> expected = cold.generate(A, p, TOKENS);
      try (Topology stalled = new Topology("localhost:" + silent.getLocalPort(), false, 200)) {
        assertThat(stalled.generate(A, p, TOKENS)).isEqualTo(expected);
        assertThat(stalled.generate(B, p, TOKENS)).isEqualTo(expected);
        assertThat(stalled.generate("target", p, TOKENS)).isEqualTo(expected);
        stalled.assertFreed();
        assertThat(stalled.a.kvcache().stats().fetchedBlocks()).isZero();
      }
      for (Socket s : held) {
        s.close();
      }
    }
  }

  @Test
  void garbageFromTheKvcacheIsNeverUsed() throws Exception {
    try (GarbageKvCache garbage = GarbageKvCache.start();
        Topology cold = new Topology(null, false);
        Topology t = new Topology("localhost:" + garbage.port(), false)) {
      int[] p = prompt(100, 5);
      List<Integer> expected = cold.generate(A, p, TOKENS);
      for (GarbageKvCache.Kind kind : GarbageKvCache.Kind.values()) {
        garbage.kind(kind);
        assertThat(t.generate(A, p, TOKENS)).as("%s", kind).isEqualTo(expected);
        t.a.engine().prefixCache().clear(); // the next kind meets a cold worker again
      }
      assertThat(t.a.kvcache().stats().fetchedBlocks()).isZero();
      assertThat(garbage.gets()).isEqualTo(GarbageKvCache.Kind.values().length);
      t.assertFreed();
    }
  }

  @Test
  void theRouterPlacesARequestOnTheReplicaHoldingItsPrefix() throws Exception {
    try (Topology t = new Topology(null, true)) {
      int[] p = prompt(200, 6); // 12 reusable blocks
      List<Integer> expected = t.generate(B, p, TOKENS);
      String replicaB = t.info(t.b).getKvReplica();
      try (KvCacheClient index =
          KvCacheClient.connect(
              "localhost:" + t.kvcache.port(),
              Duration.ofSeconds(2),
              1 << 20,
              OpenTelemetry.noop())) {
        byte[] fp = t.info(t.b).getKvFingerprint().toByteArray();
        await(
            "the index to list b's blocks",
            () ->
                index
                        .lookup(fp, 16, java.util.Arrays.copyOf(p, 192), 0)
                        .map(x -> x.replicas().getOrDefault(replicaB, 0))
                        .orElse(0)
                    >= 12);
      }
      long aSessions = t.info(t.a).getPromptTokensComputed() + cached(t, t.a);
      for (int i = 0; i < 4; i++) {
        assertThat(t.generate("target", p, TOKENS)).isEqualTo(expected);
      }
      // Every request went to b, whose prefix cache served it.
      assertThat(t.info(t.a).getPromptTokensComputed() + cached(t, t.a)).isEqualTo(aSessions);
      assertThat(t.b.kvcache().stats().fetchedBlocks()).isZero();
      assertThat(cached(t, t.b)).isEqualTo(4 * 192);

      // The index down: round-robin spreads requests over both replicas.
      t.kvcache.close();
      long aBefore = t.info(t.a).getPromptTokensComputed();
      long bBefore = t.info(t.b).getPromptTokensComputed();
      for (int i = 0; i < 4; i++) {
        t.generate("target", prompt(40, 10 + i), TOKENS);
      }
      assertThat(t.info(t.a).getPromptTokensComputed() - aBefore).isEqualTo(80);
      assertThat(t.info(t.b).getPromptTokensComputed() - bBefore).isEqualTo(80);
      t.assertFreed();
    }
  }
}
