package io.draftmesh.kvcache;

import io.draftmesh.flags.Flags;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Everything kvcache-service is configured with, from flags and {@code DRAFTMESH_KVCACHE_*}
 * environment variables (a flag wins over its variable, a variable over the default). Validated on
 * construction; every message names the flag, the value and what was expected. Byte sizes take an
 * optional binary suffix: {@code 512k}, {@code 64m}, {@code 2g}.
 *
 * @param port the gRPC port; 0 picks a free one
 * @param dataDir where the disk tier and the model registrations live; null: memory only
 * @param memoryBytes the off-heap memory tier's budget
 * @param diskBytes the disk tier's budget of live record bytes (with a data dir)
 * @param segmentBytes the disk tier's segment file size
 * @param maxChunkBytes the largest chunk a Put may send and a Get sends
 * @param maxBlockBytes the largest block payload
 * @param defaultLease a Pin's lease when it asks for none
 * @param maxLease the longest lease a Pin or Lookup may ask for
 * @param replicaTtl how long a replica's report counts without a newer one
 * @param maxIndexEntries most (replica, block) entries in the routing index
 * @param drainGrace how long shutdown waits for running calls before cancelling them
 * @param putIdle how long a Put stream in the middle of a block may send nothing before it is
 *     failed (DEADLINE_EXCEEDED) and the block's reserved pages freed: a live but stalled client
 *     would otherwise hold them for as long as its connection lives
 */
public record KvCacheConfig(
    int port,
    Path dataDir,
    long memoryBytes,
    long diskBytes,
    long segmentBytes,
    int maxChunkBytes,
    int maxBlockBytes,
    Duration defaultLease,
    Duration maxLease,
    Duration replicaTtl,
    long maxIndexEntries,
    Duration drainGrace,
    Duration putIdle) {

  /** The default port. */
  public static final int DEFAULT_PORT = 50070;

  /** A flag or variable that is missing, malformed or out of range. */
  public static final class ConfigException extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private enum Flag implements Flags.Option {
    PORT("port", "N", "gRPC port, 0 = any free port (default 50070)"),
    DATA_DIR("data-dir", "DIR", "disk tier and model registrations (default: none, memory only)"),
    MEMORY_BYTES("memory-bytes", "BYTES", "off-heap memory tier budget (default 1g)"),
    DISK_BYTES(
        "disk-bytes", "BYTES", "disk tier budget, live bytes; needs --data-dir (default 16g)"),
    SEGMENT_BYTES("segment-bytes", "BYTES", "disk segment file size (default 256m)"),
    MAX_CHUNK_BYTES("max-chunk-bytes", "BYTES", "largest Put/Get chunk (default 1m)"),
    MAX_BLOCK_BYTES("max-block-bytes", "BYTES", "largest block payload (default 64m)"),
    LEASE_MS("lease-ms", "MS", "lease of a Pin that asks for none (default 30000)"),
    MAX_LEASE_MS("max-lease-ms", "MS", "longest lease a Pin or Lookup may ask (default 600000)"),
    REPLICA_TTL_MS(
        "replica-ttl-ms",
        "MS",
        "a replica's blocks count this long after its report (default 60000)"),
    MAX_INDEX_ENTRIES(
        "max-index-entries", "N", "most (replica, block) routing entries (default 4000000)"),
    DRAIN_SECONDS("drain-seconds", "S", "grace period for running calls on shutdown (default 10)"),
    PUT_IDLE_MS(
        "put-idle-ms",
        "MS",
        "a Put stream mid-block that sends nothing this long is failed, its pages freed (default"
            + " 30000)");

    private final Flags.Spec spec;

    Flag(String name, String arg, String help) {
      spec = new Flags.Spec(name, arg, help, "DRAFTMESH_KVCACHE_" + name());
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  private static final Flags<Flag> FLAGS = new Flags<>(Flag.class, ConfigException::new);
  private static final long GIB = 1L << 30;

  public KvCacheConfig {
    FLAGS.require(port >= 0 && port <= 65535, Flag.PORT, port, "0..65535");
    FLAGS.require(memoryBytes >= 0, Flag.MEMORY_BYTES, memoryBytes, ">= 0");
    FLAGS.require(diskBytes >= 0, Flag.DISK_BYTES, diskBytes, ">= 0");
    FLAGS.require(
        maxChunkBytes >= 1024 && maxChunkBytes <= 64 << 20,
        Flag.MAX_CHUNK_BYTES,
        maxChunkBytes,
        "1k..64m");
    FLAGS.require(
        maxBlockBytes >= 1 && maxBlockBytes <= 1 << 30,
        Flag.MAX_BLOCK_BYTES,
        maxBlockBytes,
        "1..1g");
    FLAGS.require(
        segmentBytes >= maxBlockBytes + (1 << 20) && segmentBytes <= 64 * GIB,
        Flag.SEGMENT_BYTES,
        segmentBytes,
        "--max-block-bytes + 1m .. 64g");
    if ((dataDir == null || diskBytes == 0) && memoryBytes < MemoryTier.PAGE_BYTES) {
      throw new ConfigException(
          "--memory-bytes: "
              + memoryBytes
              + " (expected: at least one 64k page when there is no disk tier)");
    }
    FLAGS.require(
        maxLease.toMillis() >= 1 && maxLease.toMillis() <= 86_400_000,
        Flag.MAX_LEASE_MS,
        maxLease.toMillis(),
        "1..86400000");
    FLAGS.require(
        defaultLease.toMillis() >= 1 && defaultLease.compareTo(maxLease) <= 0,
        Flag.LEASE_MS,
        defaultLease.toMillis(),
        "1..--max-lease-ms " + maxLease.toMillis());
    FLAGS.require(replicaTtl.toMillis() >= 1, Flag.REPLICA_TTL_MS, replicaTtl.toMillis(), ">= 1");
    FLAGS.require(maxIndexEntries >= 0, Flag.MAX_INDEX_ENTRIES, maxIndexEntries, ">= 0");
    FLAGS.require(!drainGrace.isNegative(), Flag.DRAIN_SECONDS, drainGrace.toSeconds(), ">= 0");
    FLAGS.require(
        putIdle.toMillis() >= 1 && putIdle.toMillis() <= 3_600_000,
        Flag.PUT_IDLE_MS,
        putIdle.toMillis(),
        "1..3600000");
  }

  /** Whether the disk tier is on. */
  public boolean diskEnabled() {
    return dataDir != null && diskBytes > 0;
  }

  /** Defaults (memory only, any free port) with a memory budget, for tests and embedding. */
  public static KvCacheConfig inMemory(long memoryBytes) {
    return new KvCacheConfig(
        0,
        null,
        memoryBytes,
        0,
        256L << 20,
        1 << 20,
        64 << 20,
        Duration.ofSeconds(30),
        Duration.ofMinutes(10),
        Duration.ofMinutes(1),
        4_000_000,
        Duration.ofSeconds(10),
        Duration.ofSeconds(30));
  }

  /**
   * This config with a disk tier in {@code dir} of {@code bytes} and segments of {@code segment}.
   */
  public KvCacheConfig withDisk(Path dir, long bytes, long segment) {
    return new KvCacheConfig(
        port,
        dir,
        memoryBytes,
        bytes,
        segment,
        maxChunkBytes,
        maxBlockBytes,
        defaultLease,
        maxLease,
        replicaTtl,
        maxIndexEntries,
        drainGrace,
        putIdle);
  }

  /** This config with other block and chunk limits. */
  public KvCacheConfig withLimits(int maxChunk, int maxBlock) {
    return new KvCacheConfig(
        port,
        dataDir,
        memoryBytes,
        diskBytes,
        Math.max(segmentBytes, maxBlock + (1L << 20)),
        maxChunk,
        maxBlock,
        defaultLease,
        maxLease,
        replicaTtl,
        maxIndexEntries,
        drainGrace,
        putIdle);
  }

  /** This config with another memory tier budget. */
  public KvCacheConfig withMemory(long bytes) {
    return new KvCacheConfig(
        port,
        dataDir,
        bytes,
        diskBytes,
        segmentBytes,
        maxChunkBytes,
        maxBlockBytes,
        defaultLease,
        maxLease,
        replicaTtl,
        maxIndexEntries,
        drainGrace,
        putIdle);
  }

  /** This config with another Put idle limit. */
  public KvCacheConfig withPutIdle(Duration idle) {
    return new KvCacheConfig(
        port,
        dataDir,
        memoryBytes,
        diskBytes,
        segmentBytes,
        maxChunkBytes,
        maxBlockBytes,
        defaultLease,
        maxLease,
        replicaTtl,
        maxIndexEntries,
        drainGrace,
        idle);
  }

  /** This config on {@code port}. */
  public KvCacheConfig withPort(int p) {
    return new KvCacheConfig(
        p,
        dataDir,
        memoryBytes,
        diskBytes,
        segmentBytes,
        maxChunkBytes,
        maxBlockBytes,
        defaultLease,
        maxLease,
        replicaTtl,
        maxIndexEntries,
        drainGrace,
        putIdle);
  }

  /** Parses {@code args} over {@code env}. */
  public static KvCacheConfig parse(String[] args, Map<String, String> env) {
    Flags<Flag>.Values v = FLAGS.parse(args, env, Set.of(), true);
    String dir = v.get(Flag.DATA_DIR);
    return new KvCacheConfig(
        v.intOf(Flag.PORT, DEFAULT_PORT),
        dir == null || dir.isBlank() ? null : Path.of(dir),
        bytes(v, Flag.MEMORY_BYTES, GIB),
        bytes(v, Flag.DISK_BYTES, 16 * GIB),
        bytes(v, Flag.SEGMENT_BYTES, 256L << 20),
        intBytes(v, Flag.MAX_CHUNK_BYTES, 1 << 20),
        intBytes(v, Flag.MAX_BLOCK_BYTES, 64 << 20),
        v.millis(Flag.LEASE_MS, 30_000),
        v.millis(Flag.MAX_LEASE_MS, 600_000),
        v.millis(Flag.REPLICA_TTL_MS, 60_000),
        longOf(v, Flag.MAX_INDEX_ENTRIES, 4_000_000),
        v.seconds(Flag.DRAIN_SECONDS, 10),
        v.millis(Flag.PUT_IDLE_MS, 30_000));
  }

  /** The flag table, for {@code --help}. */
  public static String usage() {
    return FLAGS.usage(28, 36);
  }

  private static int intBytes(Flags<Flag>.Values v, Flag f, int fallback) {
    long b = bytes(v, f, fallback);
    if (b > Integer.MAX_VALUE) {
      throw new ConfigException(
          v.origin(f) + ": " + v.get(f) + " (expected: at most " + Integer.MAX_VALUE + " bytes)");
    }
    return (int) b;
  }

  private static long longOf(Flags<Flag>.Values v, Flag f, long fallback) {
    String s = v.get(f);
    if (s == null) {
      return fallback;
    }
    try {
      return Long.parseLong(s.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(v.origin(f) + ": " + s + " (expected: an integer)");
    }
  }

  /** A byte size: digits with an optional k, m or g (powers of 1024). */
  static long bytes(Flags<Flag>.Values v, Flag f, long fallback) {
    String s = v.get(f);
    if (s == null) {
      return fallback;
    }
    String t = s.trim().toLowerCase(Locale.ROOT);
    long unit = 1;
    if (!t.isEmpty()) {
      switch (t.charAt(t.length() - 1)) {
        case 'k' -> unit = 1L << 10;
        case 'm' -> unit = 1L << 20;
        case 'g' -> unit = 1L << 30;
        default -> unit = 1;
      }
    }
    String digits = unit == 1 ? t : t.substring(0, t.length() - 1);
    try {
      long n = Long.parseLong(digits);
      if (n < 0 || n > Long.MAX_VALUE / unit) {
        throw new NumberFormatException();
      }
      return n * unit;
    } catch (NumberFormatException e) {
      throw new ConfigException(
          v.origin(f) + ": " + s + " (expected: a byte size such as 1073741824, 512m or 1g)");
    }
  }
}
