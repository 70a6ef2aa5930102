package io.draftmesh.worker;

import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.flags.Flags;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Everything one worker process is configured with, from flags and {@code DRAFTMESH_*} environment
 * variables (a flag wins over its variable, a variable over the role's default). Validated on
 * construction; every message names the flag, the value and what was expected.
 *
 * @param model a Hugging Face checkpoint directory
 * @param port the gRPC port; 0 picks a free one
 * @param role which side of speculation this worker serves
 * @param maxSessions concurrent sessions; more are refused with RESOURCE_EXHAUSTED
 * @param kvBudgetMb memory for the paged KV pool, in MiB (preallocated at start)
 * @param kvBlockSize tokens per KV block
 * @param maxTokensPerOp upper bound for k in Score/Propose/Verify and Append
 * @param maxBatchTokens tokens one batched forward step may feed over all sessions
 * @param maxContext longest sequence; capped by the model's max_position_embeddings
 * @param threads compute threads: the vector backend's (0 measures 1 against 2 at load) and
 *     PyTorch's intra-op threads (0 leaves {@code ai.djl.pytorch.num_threads} as it is)
 * @param drainGrace how long shutdown waits for open sessions before cancelling them
 * @param backend which decoder serves: auto (the Vector API CPU backend when the JVM has it, else
 *     DJL), vector or djl
 * @param keepAlive how often the server pings an idle connection: a caller that vanished without
 *     closing its connection is noticed after {@code keepAlive + keepAliveTimeout}, and its
 *     sessions are cancelled (which frees their KV)
 * @param keepAliveTimeout how long a ping may go unanswered before the connection is closed
 * @param sessionIdle how long a session may go without a request (while no op runs) before the
 *     worker ends it with DEADLINE_EXCEEDED; zero = never
 * @param kvcache the kvcache-service this worker reuses prompt KV through and publishes its blocks
 *     to, with its deadline, publish queue and replica name; null = none
 * @param prefixCache whether sessions share full KV blocks by content (on unless turned off, e.g.
 *     by a benchmark that measures prefill); the kvcache needs it
 * @param kvDtype the KV pool's element type: float32, or float16 for half the memory
 */
public record WorkerConfig(
    Path model,
    int port,
    Role role,
    int maxSessions,
    int kvBudgetMb,
    int kvBlockSize,
    int maxTokensPerOp,
    int maxBatchTokens,
    int maxContext,
    int threads,
    Duration drainGrace,
    Backend backend,
    Duration keepAlive,
    Duration keepAliveTimeout,
    Duration sessionIdle,
    KvCacheLink.Settings kvcache,
    boolean prefixCache,
    KvDtype kvDtype) {

  /** Which calls a worker serves: the draft proposes, the target verifies. Same contract. */
  public enum Role {
    DRAFT(256, 128),
    TARGET(1024, 32);

    private final int defaultKvBudgetMb;
    private final int defaultMaxSessions;

    Role(int defaultKvBudgetMb, int defaultMaxSessions) {
      this.defaultKvBudgetMb = defaultKvBudgetMb;
      this.defaultMaxSessions = defaultMaxSessions;
    }

    /** The spelling used on the command line and in {@code ModelInfo.role}. */
    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    static Role parse(String value, String origin) {
      for (Role r : values()) {
        if (r.id().equals(value)) {
          return r;
        }
      }
      throw new ConfigException(origin + ": " + value + " (expected: draft or target)");
    }
  }

  /** A flag or variable that is missing, malformed or out of range. */
  public static final class ConfigException extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  /** One flag: its name, environment variable and help text, in the order {@link #usage} prints. */
  private enum Flag implements Flags.Option {
    MODEL("model", "DIR", "Hugging Face checkpoint directory (required)"),
    PORT("port", "N", "gRPC port, 0 = any free port (default 0)"),
    ROLE("role", "draft|target", "which role this worker serves"),
    MAX_SESSIONS("max-sessions", "N", "concurrent sessions (default: draft 128, target 32)"),
    KV_BUDGET_MB("kv-budget-mb", "MiB", "KV pool memory (default: draft 256, target 1024)"),
    KV_BLOCK_SIZE("kv-block-size", "N", "tokens per KV block (default 16)"),
    KV_DTYPE(
        "kv-dtype", "float32|float16", "KV pool elements; float16 halves it (default float32)"),
    MAX_TOKENS_PER_OP("max-tokens-per-op", "N", "largest k per Score/Propose/Verify (default 64)"),
    MAX_BATCH_TOKENS("max-batch-tokens", "N", "tokens per batched forward step (default 512)"),
    MAX_CONTEXT("max-context", "N", "longest sequence, capped by the model (default 4096)"),
    THREADS("threads", "N", "compute threads, 0 = measured (vector) / as configured (djl)"),
    DRAIN_SECONDS("drain-seconds", "S", "grace period for open sessions on shutdown (default 10)"),
    BACKEND("backend", "auto|vector|djl", "decoder: auto = vector when the JVM has it (default)"),
    KEEPALIVE_SECONDS("keepalive-seconds", "S", "ping interval on idle connections (default 30)"),
    KEEPALIVE_TIMEOUT_SECONDS(
        "keepalive-timeout-seconds", "S", "unanswered ping closes the connection (default 10)"),
    SESSION_IDLE_SECONDS(
        "session-idle-seconds", "S", "end a session idle this long, 0 = never (default 300)"),
    KVCACHE(
        "kvcache", "HOST:PORT", "kvcache-service for cross-replica prefix reuse (default none)"),
    KVCACHE_DEADLINE_MS(
        "kvcache-deadline-ms", "MS", "longest wait per kvcache call, then prefill (default 500)"),
    KVCACHE_PUBLISH_QUEUE(
        "kvcache-publish-queue", "N", "blocks waiting to publish; more are dropped (default 256)"),
    PREFIX_CACHE("prefix-cache", "on|off", "share full KV blocks between sessions (default on)"),
    KVCACHE_REPLICA(
        "kvcache-replica", "HOST:PORT", "this worker as the router names it (default host:port)");

    private final Flags.Spec spec;

    Flag(String name, String arg, String help) {
      spec = new Flags.Spec(name, arg, help, "DRAFTMESH_" + name());
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  private static final Flags<Flag> FLAGS = new Flags<>(Flag.class, ConfigException::new);

  public WorkerConfig {
    if (model == null) {
      throw new ConfigException(
          "--model: missing (expected: a checkpoint directory; or set "
              + Flag.MODEL.spec().env()
              + ")");
    }
    FLAGS.require(port >= 0 && port <= 65535, Flag.PORT, port, "0..65535");
    if (role == null) {
      throw new ConfigException("--role: missing (expected: draft or target)");
    }
    FLAGS.require(
        maxSessions >= 1 && maxSessions <= 100_000, Flag.MAX_SESSIONS, maxSessions, "1..100000");
    FLAGS.require(
        kvBudgetMb >= 1 && kvBudgetMb <= 1 << 20, Flag.KV_BUDGET_MB, kvBudgetMb, "1..1048576");
    FLAGS.require(
        kvBlockSize >= 1 && kvBlockSize <= 1024, Flag.KV_BLOCK_SIZE, kvBlockSize, "1..1024");
    FLAGS.require(
        maxTokensPerOp >= 1 && maxTokensPerOp <= 1024,
        Flag.MAX_TOKENS_PER_OP,
        maxTokensPerOp,
        "1..1024");
    FLAGS.require(
        maxBatchTokens > maxTokensPerOp && maxBatchTokens <= 1 << 20,
        Flag.MAX_BATCH_TOKENS,
        maxBatchTokens,
        (maxTokensPerOp + 1) + "..1048576, more than --max-tokens-per-op");
    FLAGS.require(maxContext >= 2, Flag.MAX_CONTEXT, maxContext, ">= 2");
    FLAGS.require(threads >= 0 && threads <= 1024, Flag.THREADS, threads, "0..1024");
    if (drainGrace == null || drainGrace.isNegative()) {
      throw new ConfigException("--drain-seconds: " + drainGrace + " (expected: >= 0)");
    }
    if (backend == null) {
      throw new ConfigException("--backend: missing (expected: auto, vector or djl)");
    }
    if (backend == Backend.VECTOR && !Backend.vectorAvailable()) {
      throw new ConfigException(
          "--backend: vector (expected: a JVM started with --add-modules jdk.incubator.vector;"
              + " use auto or djl)");
    }
    long ka = java.util.Objects.requireNonNull(keepAlive, "keepAlive").toSeconds();
    // gRPC's Netty server raises anything shorter to 10 s; refuse it rather than pretend.
    FLAGS.require(ka >= 10 && ka <= 86_400, Flag.KEEPALIVE_SECONDS, ka, "10..86400");
    long kat = java.util.Objects.requireNonNull(keepAliveTimeout, "keepAliveTimeout").toSeconds();
    FLAGS.require(kat >= 1 && kat <= 3_600, Flag.KEEPALIVE_TIMEOUT_SECONDS, kat, "1..3600");
    if (kvDtype == null) {
      throw new ConfigException("--kv-dtype: missing (expected: float32 or float16)");
    }
    long idle = java.util.Objects.requireNonNull(sessionIdle, "sessionIdle").toSeconds();
    FLAGS.require(
        idle >= 0 && idle <= 604_800, Flag.SESSION_IDLE_SECONDS, idle, "0 (never) or 1..604800");
  }

  /** Parses {@code args} over {@code env}; the service mains pass their fixed role. */
  public static WorkerConfig parse(String[] args, Map<String, String> env, Role fixedRole) {
    Flags<Flag>.Values v = FLAGS.parse(args, env, Set.of(), false);
    Role role = fixedRole;
    if (v.get(Flag.ROLE) != null) {
      Role asked = Role.parse(v.get(Flag.ROLE), v.origin(Flag.ROLE));
      if (fixedRole != null && asked != fixedRole) {
        throw new ConfigException(
            v.origin(Flag.ROLE)
                + ": "
                + asked.id()
                + " (expected: "
                + fixedRole.id()
                + " for this service)");
      }
      role = asked;
    }
    if (role == null) {
      throw new ConfigException("--role: missing (expected: draft or target)");
    }
    String modelValue = v.get(Flag.MODEL);
    Path model = modelValue == null ? null : Path.of(modelValue);
    if (model != null && !Files.isDirectory(model)) {
      throw new ConfigException(
          v.origin(Flag.MODEL) + ": " + model + " (expected: a checkpoint directory; not found)");
    }
    return new WorkerConfig(
        model,
        v.intOf(Flag.PORT, 0),
        role,
        v.intOf(Flag.MAX_SESSIONS, role.defaultMaxSessions),
        v.intOf(Flag.KV_BUDGET_MB, role.defaultKvBudgetMb),
        v.intOf(Flag.KV_BLOCK_SIZE, 16),
        v.intOf(Flag.MAX_TOKENS_PER_OP, 64),
        v.intOf(Flag.MAX_BATCH_TOKENS, 512),
        v.intOf(Flag.MAX_CONTEXT, 4096),
        v.intOf(Flag.THREADS, 0),
        v.seconds(Flag.DRAIN_SECONDS, 10),
        backend(v),
        v.seconds(Flag.KEEPALIVE_SECONDS, 30),
        v.seconds(Flag.KEEPALIVE_TIMEOUT_SECONDS, 10),
        v.seconds(Flag.SESSION_IDLE_SECONDS, 300),
        kvcache(v),
        prefixCache(v),
        kvDtype(v));
  }

  private static KvDtype kvDtype(Flags<Flag>.Values v) {
    String text = v.get(Flag.KV_DTYPE);
    if (text == null) {
      return KvDtype.FLOAT32;
    }
    try {
      return KvDtype.parse(text);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(v.origin(Flag.KV_DTYPE) + ": " + e.getMessage());
    }
  }

  private static boolean prefixCache(Flags<Flag>.Values v) {
    String text = v.get(Flag.PREFIX_CACHE);
    if (text == null || text.equals("on")) {
      return true;
    }
    if (text.equals("off")) {
      if (v.get(Flag.KVCACHE) != null && !v.get(Flag.KVCACHE).isBlank()) {
        throw new ConfigException(
            v.origin(Flag.PREFIX_CACHE)
                + ": off (expected: on with --kvcache, which fetches into the prefix cache)");
      }
      return false;
    }
    throw new ConfigException(v.origin(Flag.PREFIX_CACHE) + ": " + text + " (expected: on or off)");
  }

  /** The kvcache settings, or null without --kvcache; each flag checked and named. */
  private static KvCacheLink.Settings kvcache(Flags<Flag>.Values v) {
    String target = v.get(Flag.KVCACHE);
    if (target == null || target.isBlank()) {
      for (Flag f :
          List.of(Flag.KVCACHE_DEADLINE_MS, Flag.KVCACHE_PUBLISH_QUEUE, Flag.KVCACHE_REPLICA)) {
        if (v.get(f) != null) {
          throw new ConfigException(
              v.origin(f) + ": " + v.get(f) + " (expected: only together with --kvcache)");
        }
      }
      return null;
    }
    hostPort(v.origin(Flag.KVCACHE), target);
    int deadline = v.intOf(Flag.KVCACHE_DEADLINE_MS, 500);
    FLAGS.require(
        deadline >= 1 && deadline <= 60_000, Flag.KVCACHE_DEADLINE_MS, deadline, "1..60000");
    int queue = v.intOf(Flag.KVCACHE_PUBLISH_QUEUE, 256);
    FLAGS.require(queue >= 1 && queue <= 65_536, Flag.KVCACHE_PUBLISH_QUEUE, queue, "1..65536");
    String replica = v.get(Flag.KVCACHE_REPLICA);
    if (replica != null) {
      hostPort(v.origin(Flag.KVCACHE_REPLICA), replica);
    }
    return new KvCacheLink.Settings(target, Duration.ofMillis(deadline), queue, replica);
  }

  /** Checks {@code value} is HOST:PORT with a port in 1..65535. */
  private static void hostPort(String origin, String value) {
    int colon = value.lastIndexOf(':');
    int port = -1;
    if (colon > 0 && colon < value.length() - 1) {
      try {
        port = Integer.parseInt(value.substring(colon + 1));
      } catch (NumberFormatException e) {
        port = -1;
      }
    }
    if (port < 1 || port > 65535 || value.substring(0, Math.max(colon, 0)).isBlank()) {
      throw new ConfigException(
          origin + ": " + value + " (expected: HOST:PORT with a port in 1..65535)");
    }
  }

  private static Backend backend(Flags<Flag>.Values v) {
    String text = v.get(Flag.BACKEND);
    if (text == null) {
      return Backend.AUTO;
    }
    try {
      return Backend.parse(text);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(v.origin(Flag.BACKEND) + ": " + e.getMessage());
    }
  }

  /** What the engine is built with. */
  public EngineConfig engineConfig() {
    return new EngineConfig(
        model,
        (long) kvBudgetMb << 20,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        threads,
        kvDtype);
  }

  /** The flag table, for {@code --help}. */
  public static String usage() {
    return FLAGS.usage(32, 32);
  }
}
