package io.draftmesh.bench;

import com.google.gson.GsonBuilder;
import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh bench kvcache reuse}: what prefix reuse buys on real ports. Two target workers
 * (vector backend; a {@link Mesh} with two target replicas, a and b), a kvcache-service with a disk
 * tier, a router with a pool per replica and {@code target} over both.
 *
 * <ul>
 *   <li>TTFT of a request (one token) whose prompt is a shared prefix of L tokens and 16 new ones:
 *       cold; warm on the same worker (its prefix cache); warm on the other replica (fetched from
 *       the service's memory tier); and again after a restart of the service (its disk tier).
 *   <li>A multi-turn chat workload: N conversations x M turns (system prompt, then each turn's
 *       history + a new user message; 16 tokens generated per turn) over the two replicas: caches
 *       cleared before every request (no reuse), the workers' own prefix caches with round-robin,
 *       the kvcache with round-robin, and the kvcache with KV-aware placement. Prefill tokens
 *       saved, mean and p90 TTFT.
 * </ul>
 *
 * Models: a generated Llama (~110M parameters, 2,048 positions; ~25M with --quick), and the zoo
 * target when it exists. Prints tables, or JSON with {@code --json}.
 */
public final class KvReuseBench {
  public static final String USAGE =
      """
      usage: draftmesh bench kvcache reuse [--json] [--quick] [--no-zoo] [--prefixes L,L,...]
                                           [--conversations N] [--turns M] [--compressed]
        TTFT cold vs warm (same worker, other replica via the kvcache's memory tier, after a
        kvcache restart from its disk tier) for shared prefixes (default 256,1024,2000), and a
        multi-turn chat workload (default 4 conversations x 4 turns) over two target replicas
        without reuse, with the workers' prefix caches, with the kvcache (round-robin) and with
        KV-aware placement. On a generated ~110M Llama (2k context; --quick: ~25M, prefixes
        256,1024, 3 x 3) and the zoo target if present. --compressed: only the compressed-cache
        table (a SnapKV-compacted document, C_max 256: compacted afresh vs restored from the
        kvcache on the other replica and on the same one; TTFT and KV bytes).""";

  private static final int SUFFIX = 16;
  private static final int REPLY = 16;
  private static final int USER = 48;
  private static final int SYSTEM = 256;

  record Ttft(
      int prefix,
      double coldMs,
      double localMs,
      double remoteMs,
      double diskMs,
      long localReused,
      long remoteReused,
      long diskReused) {}

  record Chat(
      String mode,
      long promptTokens,
      long prefillSaved,
      double meanTtftMs,
      double p90TtftMs,
      int onA,
      int onB) {}

  /**
   * A document of {@code prefix} tokens compacted by SnapKV (prefix_tokens = the document), then a
   * 16-token question: TTFT compacted afresh on a, restored from the kvcache on b (other replica)
   * and on a (same replica, another question); the document's KV bytes in full, kept, fetched.
   */
  record Compressed(
      int prefix,
      int budget,
      double freshMs,
      double restoredOtherMs,
      double restoredSameMs,
      boolean restored,
      long fullKvBytes,
      long keptKvBytes,
      long restoredKvBytes) {}

  record ModelReport(
      String model,
      long parameters,
      int maxContext,
      List<Ttft> ttft,
      List<Chat> chat,
      List<Compressed> compressed) {}

  private KvReuseBench() {}

  public static int run(String[] args) {
    boolean json = false;
    boolean quick = false;
    boolean zoo = true;
    int[] prefixes = null;
    int conversations = -1;
    int turns = -1;
    boolean compressedOnly = false;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--json" -> json = true;
        case "--compressed" -> compressedOnly = true;
        case "--quick" -> quick = true;
        case "--no-zoo" -> zoo = false;
        case "--prefixes" ->
            prefixes =
                Arrays.stream(value(args, ++i, "--prefixes").split(","))
                    .mapToInt(s -> positive("--prefixes", s.trim()))
                    .toArray();
        case "--conversations" ->
            conversations = positive("--conversations", value(args, ++i, "--conversations"));
        case "--turns" -> turns = positive("--turns", value(args, ++i, "--turns"));
        default -> {
          System.err.println("bench kvcache reuse: unknown argument " + args[i]);
          System.err.println(USAGE);
          return 2;
        }
      }
    }
    if (prefixes == null) {
      prefixes = quick ? new int[] {256, 1024} : new int[] {256, 1024, 2000};
    }
    if (conversations < 0) {
      conversations = quick ? 3 : 4;
    }
    if (turns < 0) {
      turns = quick ? 3 : 4;
    }
    try {
      List<ModelReport> reports = new ArrayList<>();
      reports.add(measure(generated(quick), prefixes, conversations, turns, compressedOnly));
      Path zooTarget = zoo ? MeshModels.zooModel("target") : null;
      if (zooTarget != null) {
        reports.add(measure(zooTarget, prefixes, conversations, turns, compressedOnly));
      }
      if (json) {
        System.out.println(new GsonBuilder().setPrettyPrinting().create().toJson(reports));
      } else {
        reports.forEach(KvReuseBench::print);
      }
      return 0;
    } catch (Exception e) {
      System.err.println("bench kvcache reuse: " + e);
      e.printStackTrace();
      return 1;
    }
  }

  private static String value(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + ": missing value");
    }
    return args[i];
  }

  private static int positive(String flag, String v) {
    try {
      int n = Integer.parseInt(v);
      if (n >= 1) {
        return n;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw new IllegalArgumentException(flag + ": " + v + " (expected: a positive integer)");
  }

  /** A random Llama, generated once into the temp directory and kept for later runs. */
  private static Path generated(boolean quick) throws IOException {
    // ~110M: hidden 768, 12 layers, 12 heads, intermediate 3072; ~25M: hidden 512, 8 layers.
    ModelConfig c =
        quick
            ? new ModelConfig(
                ModelConfig.LLAMA,
                512,
                512,
                1408,
                8,
                8,
                8,
                64,
                10000.0,
                null,
                1e-5,
                2048,
                false,
                false,
                RandomCheckpoint.BOS_ID,
                RandomCheckpoint.EOS_ID)
            : new ModelConfig(
                ModelConfig.LLAMA,
                512,
                768,
                3072,
                12,
                12,
                12,
                64,
                10000.0,
                null,
                1e-5,
                2048,
                false,
                false,
                RandomCheckpoint.BOS_ID,
                RandomCheckpoint.EOS_ID);
    Path dir =
        Path.of(System.getProperty("java.io.tmpdir"))
            .resolve(quick ? "draftmesh-bench-llama25m-2k" : "draftmesh-bench-llama110m-2k");
    if (!Files.isRegularFile(dir.resolve("config.json"))) {
      RandomCheckpoint.write(dir, c, 42, DType.F16, 0);
    }
    return dir;
  }

  /** The pools of the two target replicas (the router's pool "target" spans both). */
  private static final String A = Mesh.targetReplica(0);

  private static final String B = Mesh.targetReplica(1);

  /**
   * A {@link Mesh} of two target replicas, a and b (linked to {@code kvcache} when given, as is the
   * router then, placing by its index), with the router's pool {@code target} over both.
   */
  private static final class Topology implements AutoCloseable {
    final Mesh mesh;
    final WorkerServer a;
    final WorkerServer b;
    final ManagedChannel channel;

    Topology(Path model, String kvcache) throws Exception {
      List<String> workerFlags =
          new ArrayList<>(List.of("--max-sessions", "4", "--backend", "vector"));
      if (kvcache != null) {
        // Generous for the bench: a 2k prefix of the 110M model is 150 MB to move.
        workerFlags.addAll(
            List.of("--kvcache-deadline-ms", "5000", "--kvcache-publish-queue", "1024"));
      }
      Mesh.Spec spec =
          Mesh.Spec.builder(model, null)
              .targetReplicas(2)
              .kvBudgets(1024, 128)
              .limits(2048, 64)
              .drainSeconds(0)
              .kvCache(kvcache)
              .targetFlags(workerFlags)
              .routerFlags(List.of("--target-timeout-ms", "600000", "--kvcache-deadline-ms", "200"))
              .build();
      mesh = Mesh.start(spec, OpenTelemetry.noop());
      a = mesh.targetWorkers().get(0);
      b = mesh.targetWorkers().get(1);
      channel =
          Grpc.newChannelBuilder(mesh.routerAddress(), InsecureChannelCredentials.create()).build();
    }

    /** Generates on {@code pool}; returns the generated ids and sets ttft[0] in ms. */
    List<Integer> generate(String pool, int[] prompt, int tokens, double[] ttft) {
      List<Integer> out = new ArrayList<>();
      generate(pool, prompt, tokens, ttft, null, out);
      return out;
    }

    /**
     * Generates on {@code pool} with KV compression {@code kv} (null: none) into {@code out}; sets
     * ttft[0] in ms and returns the final chunk's stats.
     */
    GenerationStats generate(
        String pool,
        int[] prompt,
        int tokens,
        double[] ttft,
        KvCompressionOptions kv,
        List<Integer> out) {
      TokenIds.Builder ids = TokenIds.newBuilder();
      for (int t : prompt) {
        ids.addIds(t);
      }
      GenerateRequest.Builder r =
          GenerateRequest.newBuilder()
              .setTokenIds(ids)
              .setTarget(pool)
              .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
              .setIgnoreEos(true)
              .setSampling(Sampling.newBuilder().setMaxTokens(tokens));
      if (kv != null) {
        r.setKvCompression(kv);
      }
      long start = System.nanoTime();
      GenerationStats stats = null;
      Iterator<GenerateChunk> it =
          RouterGrpc.newBlockingStub(channel)
              .withDeadlineAfter(10, TimeUnit.MINUTES)
              .generate(r.build());
      boolean first = true;
      while (it.hasNext()) {
        GenerateChunk c = it.next();
        if (first && c.getTokenIdsCount() > 0) {
          ttft[0] = (System.nanoTime() - start) / 1e6;
          first = false;
        }
        out.addAll(c.getTokenIdsList());
        stats = c.getStats();
      }
      return stats;
    }

    @Override
    public void close() {
      channel.shutdownNow();
      mesh.close();
    }
  }

  private static int[] tokens(int n, long seed) {
    java.util.Random r = new java.util.Random(seed);
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = 2 + r.nextInt(500);
    }
    return p;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static long cached(WorkerServer w) {
    return w.engine().promptTokensCached();
  }

  /** Waits until {@code w}'s publisher has gone quiet (its queue drained) for 300 ms. */
  private static void awaitPublished(WorkerServer w) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    long seen = -1;
    while (System.nanoTime() < deadline) {
      long now = w.kvcache().stats().publishedBlocks() + w.kvcache().stats().failedPuts();
      if (now == seen) {
        return;
      }
      seen = now;
      Thread.sleep(300);
    }
  }

  private static final int COMPRESSED_BUDGET = 256;

  /** The compressed-cache rows (see {@link Compressed}), on a topology whose workers are linked. */
  private static List<Compressed> compressed(Topology t, int[] prefixes, int maxContext)
      throws InterruptedException {
    List<Compressed> rows = new ArrayList<>();
    double[] ms = new double[1];
    for (int p : prefixes) {
      int len = Math.min(p, maxContext - SUFFIX - 2);
      if (len <= COMPRESSED_BUDGET) {
        continue; // nothing to drop
      }
      KvCompressionOptions snap =
          KvCompressionOptions.newBuilder()
              .setMethod("snapkv")
              .setBudget(COMPRESSED_BUDGET)
              .setPrefixTokens(len)
              .build();
      int[] doc = tokens(len, 5000 + p);
      long stored = t.a.kvcache().stats().storedCompacted();
      GenerationStats fresh =
          t.generate(A, concat(doc, tokens(SUFFIX, 11)), 1, ms, snap, new ArrayList<>());
      double freshMs = ms[0];
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (t.a.kvcache().stats().storedCompacted() == stored && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      GenerationStats other =
          t.generate(B, concat(doc, tokens(SUFFIX, 12)), 1, ms, snap, new ArrayList<>());
      double otherMs = ms[0];
      GenerationStats same =
          t.generate(A, concat(doc, tokens(SUFFIX, 13)), 1, ms, snap, new ArrayList<>());
      double sameMs = ms[0];
      var f = fresh.getKvCompression();
      rows.add(
          new Compressed(
              len,
              COMPRESSED_BUDGET,
              freshMs,
              otherMs,
              sameMs,
              other.getKvCompression().getRestored() && same.getKvCompression().getRestored(),
              f.getKvBytesKept() + f.getKvBytesDropped(),
              f.getKvBytesKept(),
              other.getKvCompression().getKvBytesRestored()));
    }
    return rows;
  }

  private static ModelReport measure(
      Path model, int[] prefixes, int conversations, int turns, boolean compressedOnly)
      throws Exception {
    Path data = Files.createTempDirectory("draftmesh-bench-kvcache");
    KvCacheConfig kvConfig =
        KvCacheConfig.inMemory(1L << 30).withDisk(data.resolve("kv"), 8L << 30, 256L << 20);
    KvCacheServer kv = KvCacheServer.onPort(kvConfig, OpenTelemetry.noop()).start();
    int kvPort = kv.port();
    String kvTarget = "localhost:" + kvPort;
    List<Ttft> ttft = new ArrayList<>();
    List<Chat> chat = new ArrayList<>();
    List<Compressed> compressed;
    long parameters;
    int maxContext;
    try (Topology t = new Topology(model, kvTarget)) {
      parameters = t.a.engine().info().numParameters();
      maxContext = t.a.engine().info().maxContext();
      double[] ms = new double[1];
      // One throwaway request per replica: JIT and connections warm.
      t.generate(A, tokens(64, 1), 1, ms);
      t.generate(B, tokens(64, 2), 1, ms);
      compressed = compressed(t, prefixes, maxContext);
      if (compressedOnly) {
        return new ModelReport(
            model.getFileName().toString(), parameters, maxContext, ttft, chat, compressed);
      }
      for (int p : prefixes) {
        int len = Math.min(p, maxContext - SUFFIX - 2);
        int[] prefix = tokens(len, 1000 + p);
        t.generate(A, concat(prefix, tokens(SUFFIX, 1)), 1, ms);
        double cold = ms[0];
        long before = cached(t.a);
        t.generate(A, concat(prefix, tokens(SUFFIX, 2)), 1, ms);
        double local = ms[0];
        long localReused = cached(t.a) - before;
        awaitPublished(t.a);
        t.b.engine().prefixCache().clear();
        before = cached(t.b);
        t.generate(B, concat(prefix, tokens(SUFFIX, 3)), 1, ms);
        double remote = ms[0];
        long remoteReused = cached(t.b) - before;
        ttft.add(new Ttft(len, cold, local, remote, Double.NaN, localReused, remoteReused, 0));
      }
      // The disk tier: the service restarts (its memory tier is empty after), b forgets.
      kv.close();
      kv = KvCacheServer.onPort(kvConfig.withPort(kvPort), OpenTelemetry.noop()).start();
      Thread.sleep(2000);
      t.generate(B, tokens(40, 3), 1, ms); // reconnects b's channel
      for (int i = 0; i < ttft.size(); i++) {
        Ttft row = ttft.get(i);
        int[] prefix = tokens(row.prefix(), 1000 + prefixes[i]);
        t.b.engine().prefixCache().clear();
        long before = cached(t.b);
        t.generate(B, concat(prefix, tokens(SUFFIX, 4)), 1, ms);
        ttft.set(
            i,
            new Ttft(
                row.prefix(),
                row.coldMs(),
                row.localMs(),
                row.remoteMs(),
                ms[0],
                row.localReused(),
                row.remoteReused(),
                cached(t.b) - before));
      }
      chat.add(chat(t, "kvcache, round-robin", false, conversations, turns, 300, "rr"));
    } finally {
      kv.close();
    }
    // KV-aware placement: a fresh kvcache and workers, so nothing from above helps.
    KvCacheServer kv2 =
        KvCacheServer.onPort(KvCacheConfig.inMemory(1L << 30), OpenTelemetry.noop()).start();
    try (Topology t = new Topology(model, "localhost:" + kv2.port())) {
      double[] ms = new double[1];
      t.generate(A, tokens(64, 1), 1, ms);
      t.generate(B, tokens(64, 2), 1, ms);
      chat.add(chat(t, "kvcache, KV-aware", false, conversations, turns, 400, "target"));
    } finally {
      kv2.close();
    }
    try (Topology t = new Topology(model, null)) {
      double[] ms = new double[1];
      t.generate(A, tokens(64, 1), 1, ms);
      t.generate(B, tokens(64, 2), 1, ms);
      chat.add(0, chat(t, "no reuse (caches cleared)", true, conversations, turns, 100, "rr"));
      chat.add(
          1, chat(t, "worker prefix caches, round-robin", false, conversations, turns, 200, "rr"));
    }
    return new ModelReport(
        model.getFileName().toString(), parameters, maxContext, ttft, chat, compressed);
  }

  /**
   * Conversations advance one turn at a time, interleaved; pool "rr" alternates a and b per request
   * (round-robin as the router would, but by pool so every mode places the same way), "target" lets
   * the router place.
   */
  private static Chat chat(
      Topology t,
      String mode,
      boolean clear,
      int conversations,
      int turns,
      long seed,
      String placement) {
    int[] system = tokens(SYSTEM, seed); // shared by every conversation
    List<int[]> history = new ArrayList<>();
    for (int c = 0; c < conversations; c++) {
      history.add(system);
    }
    long cachedBefore = cached(t.a) + cached(t.b);
    long computedBefore = t.a.engine().promptTokensComputed() + t.b.engine().promptTokensComputed();
    long sessionsA = t.a.engine().promptTokensComputed() + cached(t.a);
    List<Double> ttfts = new ArrayList<>();
    int onA = 0;
    int onB = 0;
    int request = 0;
    double[] ms = new double[1];
    for (int turn = 0; turn < turns; turn++) {
      for (int c = 0; c < conversations; c++) {
        int[] prompt = concat(history.get(c), tokens(USER, seed * 1000 + c * 100 + turn));
        if (prompt.length + REPLY >= 2040) {
          continue;
        }
        if (clear) {
          t.a.engine().prefixCache().clear();
          t.b.engine().prefixCache().clear();
        }
        String pool = placement.equals("rr") ? (request % 2 == 0 ? A : B) : placement;
        long aBefore = t.a.engine().promptTokensComputed() + cached(t.a);
        List<Integer> reply = t.generate(pool, prompt, REPLY, ms);
        if (t.a.engine().promptTokensComputed() + cached(t.a) > aBefore) {
          onA++;
        } else {
          onB++;
        }
        ttfts.add(ms[0]);
        history.set(c, concat(prompt, reply.stream().mapToInt(Integer::intValue).toArray()));
        request++;
      }
    }
    long saved = cached(t.a) + cached(t.b) - cachedBefore;
    long computed =
        t.a.engine().promptTokensComputed() + t.b.engine().promptTokensComputed() - computedBefore;
    double[] sorted = ttfts.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    double mean = Arrays.stream(sorted).average().orElse(Double.NaN);
    double p90 = sorted.length == 0 ? Double.NaN : sorted[(int) Math.ceil(0.9 * sorted.length) - 1];
    return new Chat(mode, saved + computed, saved, mean, p90, onA, onB);
  }

  private static void print(ModelReport r) {
    System.out.printf(
        "%nmodel %s (%.0fM parameters, %d positions), vector backend, 2 target replicas%n",
        r.model(), r.parameters() / 1e6, r.maxContext());
    if (!r.compressed().isEmpty()) {
      System.out.println(
          "compressed caches: a document compacted by snapkv (prefix_tokens = the document), then"
              + " a 16-token question; TTFT (ms) of one token; KV bytes of the document");
      System.out.printf(
          "%8s %7s %9s %15s %14s %9s %12s %12s %12s%n",
          "document",
          "C_max",
          "compacted",
          "restored other",
          "restored same",
          "restored",
          "full KV",
          "kept KV",
          "fetched KV");
      for (Compressed c : r.compressed()) {
        System.out.printf(
            "%8d %7d %9.1f %15.1f %14.1f %9s %12d %12d %12d%n",
            c.prefix(),
            c.budget(),
            c.freshMs(),
            c.restoredOtherMs(),
            c.restoredSameMs(),
            c.restored(),
            c.fullKvBytes(),
            c.keptKvBytes(),
            c.restoredKvBytes());
      }
      if (r.ttft().isEmpty()) {
        return;
      }
    }
    System.out.println(
        "TTFT (ms) of one token after a shared prefix + 16 new tokens; reused = prompt tokens"
            + " taken from a cache");
    System.out.printf(
        "%8s %9s %12s %8s %14s %8s %12s %8s %10s%n",
        "prefix",
        "cold",
        "same worker",
        "reused",
        "other replica",
        "reused",
        "disk tier",
        "reused",
        "other/cold");
    for (Ttft t : r.ttft()) {
      System.out.printf(
          "%8d %9.1f %12.1f %8d %14.1f %8d %12.1f %8d %10.2f%n",
          t.prefix(),
          t.coldMs(),
          t.localMs(),
          t.localReused(),
          t.remoteMs(),
          t.remoteReused(),
          t.diskMs(),
          t.diskReused(),
          t.remoteMs() / t.coldMs());
    }
    System.out.println(
        "multi-turn chat: system prompt "
            + SYSTEM
            + " tokens, "
            + USER
            + "-token user turns, "
            + REPLY
            + "-token replies");
    System.out.printf(
        "%-36s %8s %10s %10s %10s %6s %6s%n",
        "mode", "prompt", "saved", "mean TTFT", "p90 TTFT", "on a", "on b");
    for (Chat c : r.chat()) {
      System.out.printf(
          "%-36s %8d %10d %10.1f %10.1f %6d %6d%n",
          c.mode(),
          c.promptTokens(),
          c.prefillSaved(),
          c.meanTtftMs(),
          c.p90TtftMs(),
          c.onA(),
          c.onB());
    }
  }
}
