package io.draftmesh.kvcache;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.sun.management.OperatingSystemMXBean;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.ModelSpec;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * {@code draftmesh bench kvcache}: the service on loopback (a real Netty port, the real client):
 * put and get throughput of the memory tier and of the disk tier for each of several numbers of
 * parallel client streams (one channel each), and lookup latency of a 2,048-token prompt, hit and
 * miss. Blocks have the byte size of one 16-token KV block of a ~110M-parameter Llama (12 layers ×
 * K and V × 12 KV heads × 64 dims × 16 tokens × fp32 = 1.18 MB). Prints a table, or one JSON object
 * with {@code --json}.
 */
public final class KvCacheBench {
  public static final String USAGE =
      """
      usage: draftmesh bench kvcache [--json] [--quick] [--streams N[,N...]] [--blocks N]
                                     [--rounds N] [--warmup N] [--block-bytes N]
        kvcache-service on loopback: put/get GB/s of the memory tier and of the disk tier (memory
        tier off, segment files in a temporary directory) with N parallel client streams, one
        channel each, for every N listed (default 1,2,4), each stream moving a chain of --blocks
        blocks (default 64 = 1,024 tokens) --rounds times (default 5) after --warmup untimed rounds
        (default 3; as many again, of both tiers, before the first row, so that every row runs
        compiled code); lookup latency of a 2,048-token prompt (hit and miss). --block-bytes
        defaults to one 16-token KV block of a ~110M Llama in fp32 (1,179,648). --quick: fewer
        rounds. Each throughput also reports the CPU seconds spent per GB moved, by the whole
        process (client and service together, JIT compiler and GC included) and by its transfer
        threads alone (the Java threads: Netty's event loops, which run the service's handlers and
        the client's callbacks, and the client threads); both depend far less than GB/s on what
        else runs on the machine.""";

  /** 12 layers × (K, V) × 12 KV heads × 64 dims × 16 tokens × 4 bytes. */
  static final int LLAMA_110M_BLOCK_BYTES = 12 * 2 * 12 * 64 * 16 * 4;

  private static final int BLOCK_TOKENS = 16;

  /** {@code streams}: the stream counts to measure, in order. */
  record Options(
      boolean json, List<Integer> streams, int blocks, int rounds, int warmup, int blockBytes) {}

  /**
   * One measurement: bytes moved per second over the wall time of all streams together; the
   * process's CPU time (client and service, every thread including the JIT compiler and GC) per GB;
   * and the CPU time of its Java threads alone (event loops, client threads) per GB.
   */
  record Throughput(
      double gbPerSecond,
      long bytes,
      double seconds,
      double cpuSecondsPerGb,
      double transferCpuSecondsPerGb) {}

  /** Put and get throughput of both tiers with {@code streams} parallel streams. */
  record Row(
      int streams,
      Throughput memoryPut,
      Throughput memoryGet,
      Throughput diskPut,
      Throughput diskGet) {}

  /** Latency percentiles in microseconds. */
  record Latency(double p50, double p10, double p90, int n) {}

  record Report(
      Options options, List<Row> rows, Latency lookupHit, Latency lookupMiss, int lookupBlocks) {}

  private KvCacheBench() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the bench; returns the exit code. */
  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      err.println("draftmesh bench kvcache: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    if (o == null) {
      out.println(USAGE);
      return 0;
    }
    Report r;
    try {
      r = measure(o, err);
    } catch (IOException e) {
      err.println("draftmesh bench kvcache: " + e);
      return 1;
    }
    out.print(o.json() ? json(r) : table(r));
    return 0;
  }

  static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    List<Integer> streams = List.of(1, 2, 4);
    int blocks = 64;
    int rounds = 5;
    int warmup = 3;
    int blockBytes = LLAMA_110M_BLOCK_BYTES;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--help", "-h" -> {
          return null;
        }
        case "--streams" -> streams = intList(args, ++i, "--streams", 1, 64);
        case "--blocks" -> blocks = intArg(args, ++i, "--blocks", 1, 4096);
        case "--rounds" -> rounds = intArg(args, ++i, "--rounds", 1, 1000);
        case "--warmup" -> warmup = intArg(args, ++i, "--warmup", 0, 1000);
        case "--block-bytes" -> blockBytes = intArg(args, ++i, "--block-bytes", 1, 32 << 20);
        default ->
            throw new IllegalArgumentException(
                args[i]
                    + ": unknown flag (expected: --json, --quick, --streams, --blocks,"
                    + " --rounds, --warmup, --block-bytes)");
      }
    }
    return new Options(
        json, streams, blocks, quick ? Math.min(rounds, 2) : rounds, warmup, blockBytes);
  }

  /** A comma-separated list of distinct ints in [min, max], at least one. */
  private static List<Integer> intList(String[] args, int i, String flag, int min, int max) {
    if (i >= args.length) {
      throw new IllegalArgumentException(
          flag + ": missing value (expected: N[,N...], each " + min + ".." + max + ")");
    }
    List<Integer> out = new ArrayList<>();
    for (String part : args[i].split(",", -1)) {
      try {
        int v = Integer.parseInt(part.trim());
        if (v < min || v > max || out.contains(v)) {
          throw new NumberFormatException();
        }
        out.add(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(
            flag
                + ": "
                + args[i]
                + " (expected: N[,N...], each "
                + min
                + ".."
                + max
                + ", none twice)");
      }
    }
    return List.copyOf(out);
  }

  private static int intArg(String[] args, int i, String flag, int min, int max) {
    if (i >= args.length) {
      throw new IllegalArgumentException(
          flag + ": missing value (expected: " + min + ".." + max + ")");
    }
    try {
      int v = Integer.parseInt(args[i]);
      if (v < min || v > max) {
        throw new NumberFormatException();
      }
      return v;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          flag + ": " + args[i] + " (expected: " + min + ".." + max + ")");
    }
  }

  static final ModelSpec SPEC =
      ModelSpec.newBuilder()
          .setArchitecture("LlamaForCausalLM")
          .setWeightsDigest(com.google.protobuf.ByteString.copyFromUtf8("bench-llama-110m"))
          .setDtype("float32")
          .setNumLayers(12)
          .setNumKvHeads(12)
          .setHeadDim(64)
          .setKvLayout("paged-v1")
          .setBlockSize(BLOCK_TOKENS)
          .build();

  static Report measure(Options o, PrintStream err) throws IOException {
    err.printf(
        Locale.ROOT,
        "kvcache bench: %s streams x %d blocks x %,d bytes, %d rounds per tier after %d to warm up%n",
        o.streams(),
        o.blocks(),
        o.blockBytes(),
        o.rounds(),
        o.warmup());
    // The JIT compiles the transfer path over the first rounds of the first row, whichever it is
    // (that row's process CPU per GB came out twice the next rows'): one untimed pass of both
    // tiers first, so every row measures the same compiled code.
    if (o.warmup() > 0) {
      row(
          new Options(false, o.streams(), o.blocks(), o.warmup(), 0, o.blockBytes()),
          o.streams().get(0),
          null);
    }
    List<Row> rows = new ArrayList<>();
    for (int streams : o.streams()) {
      rows.add(row(o, streams, err));
    }
    Latency[] l;
    KvCacheConfig config = KvCacheConfig.inMemory(64L << 20);
    try (KvCacheServer server = KvCacheServer.onPort(config, OpenTelemetry.noop()).start()) {
      l = lookups(server.port());
    }
    return new Report(o, rows, l[0], l[1], 2048 / BLOCK_TOKENS);
  }

  /**
   * Both tiers with {@code streams} parallel streams, each tier on a fresh server; stalled rounds
   * are reported to {@code err} (null: not reported).
   */
  private static Row row(Options o, int streams, PrintStream err) throws IOException {
    long chainBytes = (long) o.blocks() * o.blockBytes();
    // Room for every stream's chain twice over: puts of later rounds evict earlier ones.
    long memory = Math.max(64L << 20, 2 * streams * chainBytes + (16L << 20));
    int maxBlock = Math.max(o.blockBytes(), 1 << 20);
    KvCacheConfig memoryConfig = KvCacheConfig.inMemory(memory).withLimits(1 << 20, maxBlock);
    Throughput[] mem;
    try (KvCacheServer server = KvCacheServer.onPort(memoryConfig, OpenTelemetry.noop()).start()) {
      mem = putGet(server.port(), o, streams, new Stalls(err, streams + " streams, memory"));
    }
    Path dir = Files.createTempDirectory("draftmesh-kvcache-bench");
    Throughput[] disk;
    try {
      KvCacheConfig diskConfig =
          KvCacheConfig.inMemory(64L << 20)
              .withLimits(1 << 20, maxBlock)
              .withDisk(dir, 2 * streams * chainBytes * 2 + (64L << 20), 256L << 20)
              .withMemory(0);
      try (KvCacheServer server = KvCacheServer.onPort(diskConfig, OpenTelemetry.noop()).start()) {
        disk = putGet(server.port(), o, streams, new Stalls(err, streams + " streams, disk"));
      }
    } finally {
      deleteTree(dir);
    }
    return new Row(streams, mem[0], mem[1], disk[0], disk[1]);
  }

  /**
   * Puts then gets each of {@code streams} chains {@code rounds} times; {put, get} throughput. The
   * payloads are allocated once and reused (with the round's keys): the timed rounds carry no
   * garbage of the bench's own, only the client's and the service's.
   */
  private static Throughput[] putGet(int port, Options o, int streams, Stalls stalls) {
    List<KvCacheClient> clients = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(streams);
    try {
      byte[] fp = null;
      for (int s = 0; s < streams; s++) {
        KvCacheClient c =
            KvCacheClient.connect(
                "localhost:" + port, Duration.ofSeconds(120), 1 << 20, OpenTelemetry.noop());
        clients.add(c);
        fp = c.register(SPEC).orElseThrow(() -> new IllegalStateException("register failed"));
      }
      byte[] fingerprint = fp;
      byte[] payloadSeed = new byte[o.blockBytes()];
      new Random(1).nextBytes(payloadSeed);
      byte[][][] payloads = new byte[streams][o.blocks()][];
      for (byte[][] chain : payloads) {
        for (int i = 0; i < chain.length; i++) {
          chain[i] = payloadSeed.clone();
        }
      }
      List<List<KvCacheClient.Block>> last = new ArrayList<>();
      long putBytes = 0;
      long putNanos = 0;
      long putCpu = 0;
      long putJava = 0;
      for (int round = 0; round < o.warmup() + o.rounds(); round++) {
        List<List<KvCacheClient.Block>> chains = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
          chains.add(chain(fingerprint, 1 + round * 100 + s, payloads[s]));
        }
        long t0 = System.nanoTime();
        long c0 = processCpuNanos();
        long j0 = javaThreadsCpuNanos();
        List<Future<Boolean>> done = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
          KvCacheClient c = clients.get(s);
          List<KvCacheClient.Block> chain = chains.get(s);
          done.add(pool.submit(() -> c.put(fingerprint, chain)));
        }
        for (Future<Boolean> f : done) {
          if (!f.get()) {
            throw new IllegalStateException("a put failed: see the service log");
          }
        }
        if (round >= o.warmup()) {
          putNanos += stalls.round("put", System.nanoTime() - t0);
          putCpu += processCpuNanos() - c0;
          putJava += javaThreadsCpuNanos() - j0;
          putBytes += (long) streams * o.blocks() * o.blockBytes();
        }
        last = chains;
      }
      long getBytes = 0;
      long getNanos = 0;
      long getCpu = 0;
      long getJava = 0;
      for (int round = 0; round < o.warmup() + o.rounds(); round++) {
        long t0 = System.nanoTime();
        long c0 = processCpuNanos();
        long j0 = javaThreadsCpuNanos();
        List<Future<Boolean>> done = new ArrayList<>();
        for (int s = 0; s < streams; s++) {
          KvCacheClient c = clients.get(s);
          List<byte[]> keys = last.get(s).stream().map(KvCacheClient.Block::key).toList();
          done.add(pool.submit(() -> c.get(keys).map(List::size).orElse(-1) == keys.size()));
        }
        for (Future<Boolean> f : done) {
          if (!f.get()) {
            throw new IllegalStateException("a get failed: see the service log");
          }
        }
        if (round >= o.warmup()) {
          getNanos += stalls.round("get", System.nanoTime() - t0);
          getCpu += processCpuNanos() - c0;
          getJava += javaThreadsCpuNanos() - j0;
          getBytes += (long) streams * o.blocks() * o.blockBytes();
        }
      }
      stalls.report();
      return new Throughput[] {
        throughput(putBytes, putNanos, putCpu, putJava),
        throughput(getBytes, getNanos, getCpu, getJava)
      };
    } catch (Exception e) {
      throw new IllegalStateException("kvcache bench: " + e.getMessage(), e);
    } finally {
      pool.shutdownNow();
      clients.forEach(KvCacheClient::close);
    }
  }

  /**
   * The timed rounds of one tier's puts and gets: a round that took more than four times its
   * phase's median is reported, since on a shared machine the process can sit idle (stopped, or
   * waiting) for seconds and that one round then lowers the row's GB/s.
   */
  static final class Stalls {
    private final PrintStream err;
    private final String what;
    private final java.util.Map<String, List<Long>> rounds = new java.util.LinkedHashMap<>();

    Stalls(PrintStream err, String what) {
      this.err = err;
      this.what = what;
    }

    /** Records one timed round of {@code phase}; returns {@code nanos}. */
    long round(String phase, long nanos) {
      rounds.computeIfAbsent(phase, p -> new ArrayList<>()).add(nanos);
      return nanos;
    }

    void report() {
      if (err == null) {
        return;
      }
      rounds.forEach(
          (phase, ns) -> {
            long median = ns.stream().sorted().toList().get(ns.size() / 2);
            for (int i = 0; i < ns.size(); i++) {
              if (ns.get(i) > 4 * median) {
                err.printf(
                    Locale.ROOT,
                    "kvcache bench: %s %s: timed round %d took %.2f s (median %.2f s): the process"
                        + " stalled or was stopped; that row's GB/s is lowered by it%n",
                    what,
                    phase,
                    i + 1,
                    ns.get(i) / 1e9,
                    median / 1e9);
              }
            }
          });
    }
  }

  /** Lookup latency of a 2,048-token prompt whose 128 blocks are all stored, and of one not. */
  private static Latency[] lookups(int port) {
    try (KvCacheClient c =
        KvCacheClient.connect(
            "localhost:" + port, Duration.ofSeconds(10), 1 << 20, OpenTelemetry.noop())) {
      byte[] fp = c.register(SPEC).orElseThrow();
      int[] tokens = new int[2048];
      Random rnd = new Random(7);
      for (int i = 0; i < tokens.length; i++) {
        tokens[i] = rnd.nextInt(150_000);
      }
      List<byte[]> keys = KvKeys.chain(fp, BLOCK_TOKENS, tokens);
      List<KvCacheClient.Block> blocks = new ArrayList<>();
      for (int i = 0; i < keys.size(); i++) {
        blocks.add(
            new KvCacheClient.Block(
                keys.get(i),
                i == 0 ? null : keys.get(i - 1),
                Arrays.copyOfRange(tokens, i * BLOCK_TOKENS, (i + 1) * BLOCK_TOKENS),
                new byte[1024]));
      }
      if (!c.put(fp, blocks)) {
        throw new IllegalStateException("lookup bench: put failed");
      }
      int[] other = tokens.clone();
      other[0] ^= 1; // differs in the first block: nothing of it is stored
      return new Latency[] {lookupLatency(c, fp, tokens, 128), lookupLatency(c, fp, other, 0)};
    }
  }

  private static Latency lookupLatency(KvCacheClient c, byte[] fp, int[] tokens, int expect) {
    int warm = 200;
    int n = 1000;
    double[] us = new double[n];
    for (int i = 0; i < warm + n; i++) {
      long t0 = System.nanoTime();
      KvCacheClient.Prefix p = c.lookup(fp, BLOCK_TOKENS, tokens, 0).orElseThrow();
      long t = System.nanoTime() - t0;
      if (p.cachedBlocks() != expect) {
        throw new IllegalStateException(
            "lookup found " + p.cachedBlocks() + " blocks (expected " + expect + ")");
      }
      if (i >= warm) {
        us[i - warm] = t / 1e3;
      }
    }
    Arrays.sort(us);
    return new Latency(pct(us, 0.5), pct(us, 0.1), pct(us, 0.9), n);
  }

  private static double pct(double[] sorted, double q) {
    double pos = q * (sorted.length - 1);
    int lo = (int) Math.floor(pos);
    int hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  }

  /** A chain of {@code payloads.length} blocks under keys of {@code seed}, over those payloads. */
  private static List<KvCacheClient.Block> chain(byte[] fp, int seed, byte[][] payloads) {
    int blocks = payloads.length;
    int[] tokens = new int[blocks * BLOCK_TOKENS];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = (int) (((long) seed * 65_536 + i) & Integer.MAX_VALUE);
    }
    List<byte[]> keys = KvKeys.chain(fp, BLOCK_TOKENS, tokens);
    List<KvCacheClient.Block> out = new ArrayList<>();
    for (int i = 0; i < blocks; i++) {
      byte[] p = payloads[i];
      p[0] = (byte) seed;
      p[1] = (byte) i;
      out.add(
          new KvCacheClient.Block(
              keys.get(i),
              i == 0 ? null : keys.get(i - 1),
              Arrays.copyOfRange(tokens, i * BLOCK_TOKENS, (i + 1) * BLOCK_TOKENS),
              p));
    }
    return out;
  }

  private static Throughput throughput(long bytes, long nanos, long cpuNanos, long javaNanos) {
    double s = nanos / 1e9;
    double gb = bytes / 1e9;
    return new Throughput(gb / s, bytes, s, cpuNanos / 1e9 / gb, javaNanos / 1e9 / gb);
  }

  /** CPU time of this whole process so far (every thread), or 0 where the JVM does not say. */
  private static long processCpuNanos() {
    return ManagementFactory.getOperatingSystemMXBean() instanceof OperatingSystemMXBean os
        ? Math.max(0, os.getProcessCpuTime())
        : 0;
  }

  /**
   * CPU time so far of this process's live Java threads (HotSpot does not list its JIT compiler
   * threads among them, and GC workers are not Java threads), or 0 where the JVM does not say. The
   * threads a round uses (event loops, the pool) live through all its rounds.
   */
  private static long javaThreadsCpuNanos() {
    ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    if (!threads.isThreadCpuTimeSupported() || !threads.isThreadCpuTimeEnabled()) {
      return 0;
    }
    long sum = 0;
    for (long id : threads.getAllThreadIds()) {
      sum += Math.max(0, threads.getThreadCpuTime(id)); // -1: the thread ended meanwhile
    }
    return sum;
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  // ---- output ----

  static String table(Report r) {
    Options o = r.options();
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "kvcache-service on loopback: chains of %d blocks x %,d bytes (%.1f MB a stream), one"
                + " channel a stream, %d timed rounds after %d to warm up%n",
            o.blocks(),
            o.blockBytes(),
            (double) o.blocks() * o.blockBytes() / 1e6,
            o.rounds(),
            o.warmup()));
    sb.append(
        "CPU s/GB: the whole process (client and service, JIT and GC included) [its transfer"
            + " threads alone]; target >= 1 GB/s\n");
    sb.append(
        String.format(
            Locale.ROOT,
            "%-8s %-7s %-9s %-18s %-9s %s%n",
            "streams",
            "tier",
            "put GB/s",
            "put CPU s/GB",
            "get GB/s",
            "get CPU s/GB"));
    for (Row row : r.rows()) {
      line(sb, row.streams(), "memory", row.memoryPut(), row.memoryGet());
      line(sb, row.streams(), "disk", row.diskPut(), row.diskGet());
    }
    sb.append(
        String.format(
            Locale.ROOT,
            "lookup us, %d blocks hit: %s; miss: %s (2,048 tokens; median [p10-p90])%n",
            r.lookupBlocks(),
            lat(r.lookupHit()),
            lat(r.lookupMiss())));
    return sb.toString();
  }

  private static void line(
      StringBuilder sb, int streams, String tier, Throughput put, Throughput get) {
    sb.append(
        String.format(
            Locale.ROOT,
            "%-8d %-7s %-9.2f %-18s %-9.2f %s%n",
            streams,
            tier,
            put.gbPerSecond(),
            cpu(put),
            get.gbPerSecond(),
            cpu(get)));
  }

  private static String cpu(Throughput t) {
    return String.format(
        Locale.ROOT, "%.1f [%.1f]", t.cpuSecondsPerGb(), t.transferCpuSecondsPerGb());
  }

  private static String lat(Latency l) {
    return String.format(Locale.ROOT, "%.0f [%.0f-%.0f]", l.p50(), l.p10(), l.p90());
  }

  static String json(Report r) {
    JsonObject j = new JsonObject();
    JsonArray streams = new JsonArray();
    r.options().streams().forEach(streams::add);
    j.add("streams", streams);
    j.addProperty("blocks_per_stream", r.options().blocks());
    j.addProperty("block_bytes", r.options().blockBytes());
    j.addProperty("rounds", r.options().rounds());
    j.addProperty("warmup_rounds", r.options().warmup());
    JsonArray rows = new JsonArray();
    for (Row row : r.rows()) {
      JsonObject o = new JsonObject();
      o.addProperty("streams", row.streams());
      o.add("memory_put", throughput(row.memoryPut()));
      o.add("memory_get", throughput(row.memoryGet()));
      o.add("disk_put", throughput(row.diskPut()));
      o.add("disk_get", throughput(row.diskGet()));
      rows.add(o);
    }
    j.add("rows", rows);
    j.add("lookup_hit_us", latency(r.lookupHit()));
    j.add("lookup_miss_us", latency(r.lookupMiss()));
    j.addProperty("lookup_blocks", r.lookupBlocks());
    return new GsonBuilder().setPrettyPrinting().create().toJson(j) + "\n";
  }

  private static JsonObject throughput(Throughput t) {
    JsonObject j = new JsonObject();
    j.addProperty("gb_per_s", t.gbPerSecond());
    j.addProperty("cpu_s_per_gb", t.cpuSecondsPerGb());
    j.addProperty("transfer_cpu_s_per_gb", t.transferCpuSecondsPerGb());
    return j;
  }

  private static JsonObject latency(Latency l) {
    JsonObject j = new JsonObject();
    j.addProperty("p50", l.p50());
    j.addProperty("p10", l.p10());
    j.addProperty("p90", l.p90());
    j.addProperty("n", l.n());
    return j;
  }
}
