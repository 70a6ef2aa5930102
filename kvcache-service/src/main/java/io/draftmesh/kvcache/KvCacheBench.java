package io.draftmesh.kvcache;

import com.google.gson.GsonBuilder;
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
 * put and get throughput of the memory tier and of the disk tier, and lookup latency of a
 * 2,048-token prompt, hit and miss. Blocks have the byte size of one 16-token KV block of a
 * ~110M-parameter Llama (12 layers × K and V × 12 KV heads × 64 dims × 16 tokens × fp32 = 1.18 MB).
 * Prints a table, or one JSON object with {@code --json}.
 */
public final class KvCacheBench {
  public static final String USAGE =
      """
      usage: draftmesh bench kvcache [--json] [--quick] [--streams N] [--blocks N] [--rounds N]
                                     [--warmup N] [--block-bytes N]
        kvcache-service on loopback: put/get GB/s of the memory tier and of the disk tier (memory
        tier off, segment files in a temporary directory) with N parallel client streams (default
        2) each moving a chain of --blocks blocks (default 64 = 1,024 tokens) --rounds times
        (default 5) after --warmup untimed rounds (default 1); lookup latency of a 2,048-token
        prompt (hit and miss). --block-bytes defaults to one 16-token KV block of a ~110M Llama in
        fp32 (1,179,648). --quick: fewer rounds. Each throughput also reports the CPU seconds the
        process (client and service together) spent per GB moved, which depends far less than
        GB/s on what else runs on the machine.""";

  /** 12 layers × (K, V) × 12 KV heads × 64 dims × 16 tokens × 4 bytes. */
  static final int LLAMA_110M_BLOCK_BYTES = 12 * 2 * 12 * 64 * 16 * 4;

  private static final int BLOCK_TOKENS = 16;

  record Options(boolean json, int streams, int blocks, int rounds, int warmup, int blockBytes) {}

  /**
   * One measurement: bytes moved per second over the wall time of all streams together, and the
   * process's CPU time (client and service, every thread including the JIT and GC) per GB.
   */
  record Throughput(double gbPerSecond, long bytes, double seconds, double cpuSecondsPerGb) {}

  /** Latency percentiles in microseconds. */
  record Latency(double p50, double p10, double p90, int n) {}

  record Report(
      Options options,
      Throughput memoryPut,
      Throughput memoryGet,
      Throughput diskPut,
      Throughput diskGet,
      Latency lookupHit,
      Latency lookupMiss,
      int lookupBlocks) {}

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
    int streams = 2;
    int blocks = 64;
    int rounds = 5;
    int warmup = 1;
    int blockBytes = LLAMA_110M_BLOCK_BYTES;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--help", "-h" -> {
          return null;
        }
        case "--streams" -> streams = intArg(args, ++i, "--streams", 1, 64);
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
    long chainBytes = (long) o.blocks() * o.blockBytes();
    // Room for every stream's chain twice over: puts of later rounds evict earlier ones.
    long memory = Math.max(64L << 20, 2 * o.streams() * chainBytes + (16L << 20));
    int maxBlock = Math.max(o.blockBytes(), 1 << 20);
    KvCacheConfig memoryConfig = KvCacheConfig.inMemory(memory).withLimits(1 << 20, maxBlock);
    err.printf(
        Locale.ROOT,
        "kvcache bench: %d streams x %d blocks x %,d bytes, %d rounds per tier after %d to warm up%n",
        o.streams(),
        o.blocks(),
        o.blockBytes(),
        o.rounds(),
        o.warmup());
    Throughput[] mem;
    Latency hit;
    Latency miss;
    try (KvCacheServer server = KvCacheServer.onPort(memoryConfig, OpenTelemetry.noop()).start()) {
      mem = putGet(server.port(), o, 1);
      Latency[] l = lookups(server.port());
      hit = l[0];
      miss = l[1];
    }
    Path dir = Files.createTempDirectory("draftmesh-kvcache-bench");
    Throughput[] disk;
    try {
      KvCacheConfig diskConfig =
          KvCacheConfig.inMemory(64L << 20)
              .withLimits(1 << 20, maxBlock)
              .withDisk(dir, 2 * o.streams() * chainBytes * 2 + (64L << 20), 256L << 20)
              .withMemory(0);
      try (KvCacheServer server = KvCacheServer.onPort(diskConfig, OpenTelemetry.noop()).start()) {
        disk = putGet(server.port(), o, 1);
      }
    } finally {
      deleteTree(dir);
    }
    return new Report(o, mem[0], mem[1], disk[0], disk[1], hit, miss, 2048 / BLOCK_TOKENS);
  }

  /** Puts then gets each stream's chain {@code rounds} times; {put, get} throughput. */
  private static Throughput[] putGet(int port, Options o, int seedBase) {
    List<KvCacheClient> clients = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(o.streams());
    try {
      byte[] fp = null;
      for (int s = 0; s < o.streams(); s++) {
        KvCacheClient c =
            KvCacheClient.connect(
                "localhost:" + port, Duration.ofSeconds(120), 1 << 20, OpenTelemetry.noop());
        clients.add(c);
        fp = c.register(SPEC).orElseThrow(() -> new IllegalStateException("register failed"));
      }
      byte[] fingerprint = fp;
      byte[] payloadSeed = new byte[o.blockBytes()];
      new Random(1).nextBytes(payloadSeed);
      List<List<KvCacheClient.Block>> last = new ArrayList<>();
      long putBytes = 0;
      long putNanos = 0;
      long putCpu = 0;
      for (int round = 0; round < o.warmup() + o.rounds(); round++) {
        List<List<KvCacheClient.Block>> chains = new ArrayList<>();
        for (int s = 0; s < o.streams(); s++) {
          chains.add(chain(fingerprint, seedBase + round * 100 + s, o.blocks(), payloadSeed));
        }
        long t0 = System.nanoTime();
        long c0 = processCpuNanos();
        List<Future<Boolean>> done = new ArrayList<>();
        for (int s = 0; s < o.streams(); s++) {
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
          putNanos += System.nanoTime() - t0;
          putCpu += processCpuNanos() - c0;
          putBytes += (long) o.streams() * o.blocks() * o.blockBytes();
        }
        last = chains;
      }
      long getBytes = 0;
      long getNanos = 0;
      long getCpu = 0;
      for (int round = 0; round < o.warmup() + o.rounds(); round++) {
        long t0 = System.nanoTime();
        long c0 = processCpuNanos();
        List<Future<Boolean>> done = new ArrayList<>();
        for (int s = 0; s < o.streams(); s++) {
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
          getNanos += System.nanoTime() - t0;
          getCpu += processCpuNanos() - c0;
          getBytes += (long) o.streams() * o.blocks() * o.blockBytes();
        }
      }
      return new Throughput[] {
        throughput(putBytes, putNanos, putCpu), throughput(getBytes, getNanos, getCpu)
      };
    } catch (Exception e) {
      throw new IllegalStateException("kvcache bench: " + e.getMessage(), e);
    } finally {
      pool.shutdownNow();
      clients.forEach(KvCacheClient::close);
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

  private static List<KvCacheClient.Block> chain(byte[] fp, int seed, int blocks, byte[] base) {
    int[] tokens = new int[blocks * BLOCK_TOKENS];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = (int) (((long) seed * 65_536 + i) & Integer.MAX_VALUE);
    }
    List<byte[]> keys = KvKeys.chain(fp, BLOCK_TOKENS, tokens);
    List<KvCacheClient.Block> out = new ArrayList<>();
    for (int i = 0; i < blocks; i++) {
      byte[] p = base.clone();
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

  private static Throughput throughput(long bytes, long nanos, long cpuNanos) {
    double s = nanos / 1e9;
    return new Throughput(bytes / 1e9 / s, bytes, s, cpuNanos / 1e9 / (bytes / 1e9));
  }

  /** CPU time of this whole process so far (every thread), or 0 where the JVM does not say. */
  private static long processCpuNanos() {
    return ManagementFactory.getOperatingSystemMXBean() instanceof OperatingSystemMXBean os
        ? Math.max(0, os.getProcessCpuTime())
        : 0;
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
            "kvcache-service on loopback: %d client streams, chains of %d blocks x %,d bytes"
                + " (%.1f MB a stream), %d timed rounds after %d to warm up%n",
            o.streams(),
            o.blocks(),
            o.blockBytes(),
            (double) o.blocks() * o.blockBytes() / 1e6,
            o.rounds(),
            o.warmup()));
    sb.append(String.format(Locale.ROOT, "%-30s %-26s %s%n", "metric", "value", "target / notes"));
    row(sb, "put GB/s, memory tier", gbs(r.memoryPut()), "target >= 1 GB/s; CRC32C both ends");
    row(sb, "get GB/s, memory tier", gbs(r.memoryGet()), "target >= 1 GB/s; checked by the client");
    row(sb, "put GB/s, disk tier", gbs(r.diskPut()), "memory tier off; write to page cache");
    row(sb, "get GB/s, disk tier", gbs(r.diskGet()), "every block read from segment files");
    row(
        sb,
        "lookup us, " + r.lookupBlocks() + " blocks hit",
        lat(r.lookupHit()),
        "2,048 tokens, all stored; median [p10-p90]");
    row(sb, "lookup us, miss", lat(r.lookupMiss()), "first block differs");
    return sb.toString();
  }

  private static void row(StringBuilder sb, String metric, String value, String notes) {
    sb.append(String.format(Locale.ROOT, "%-30s %-26s %s%n", metric, value, notes));
  }

  private static String gbs(Throughput t) {
    return String.format(Locale.ROOT, "%.2f (%.1f CPU s/GB)", t.gbPerSecond(), t.cpuSecondsPerGb());
  }

  private static String lat(Latency l) {
    return String.format(Locale.ROOT, "%.0f [%.0f-%.0f]", l.p50(), l.p10(), l.p90());
  }

  static String json(Report r) {
    JsonObject j = new JsonObject();
    j.addProperty("streams", r.options().streams());
    j.addProperty("blocks_per_stream", r.options().blocks());
    j.addProperty("block_bytes", r.options().blockBytes());
    j.addProperty("rounds", r.options().rounds());
    j.addProperty("warmup_rounds", r.options().warmup());
    j.addProperty("memory_put_gb_per_s", r.memoryPut().gbPerSecond());
    j.addProperty("memory_get_gb_per_s", r.memoryGet().gbPerSecond());
    j.addProperty("disk_put_gb_per_s", r.diskPut().gbPerSecond());
    j.addProperty("disk_get_gb_per_s", r.diskGet().gbPerSecond());
    j.addProperty("memory_put_cpu_s_per_gb", r.memoryPut().cpuSecondsPerGb());
    j.addProperty("memory_get_cpu_s_per_gb", r.memoryGet().cpuSecondsPerGb());
    j.addProperty("disk_put_cpu_s_per_gb", r.diskPut().cpuSecondsPerGb());
    j.addProperty("disk_get_cpu_s_per_gb", r.diskGet().cpuSecondsPerGb());
    j.add("lookup_hit_us", latency(r.lookupHit()));
    j.add("lookup_miss_us", latency(r.lookupMiss()));
    j.addProperty("lookup_blocks", r.lookupBlocks());
    return new GsonBuilder().setPrettyPrinting().create().toJson(j) + "\n";
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
