package io.draftmesh.worker;

import io.draftmesh.engine.runtime.EngineConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

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
 * @param threads PyTorch intra-op threads; 0 leaves {@code ai.djl.pytorch.num_threads} as it is
 * @param drainGrace how long shutdown waits for open sessions before cancelling them
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
    Duration drainGrace) {

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
  public static final class ConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  /** One flag: its name, environment variable and help text, in the order {@link #usage} prints. */
  private enum Flag {
    MODEL("model", "DIR", "Hugging Face checkpoint directory (required)"),
    PORT("port", "N", "gRPC port, 0 = any free port (default 0)"),
    ROLE("role", "draft|target", "which role this worker serves"),
    MAX_SESSIONS("max-sessions", "N", "concurrent sessions (default: draft 128, target 32)"),
    KV_BUDGET_MB("kv-budget-mb", "MiB", "KV pool memory (default: draft 256, target 1024)"),
    KV_BLOCK_SIZE("kv-block-size", "N", "tokens per KV block (default 16)"),
    MAX_TOKENS_PER_OP("max-tokens-per-op", "N", "largest k per Score/Propose/Verify (default 64)"),
    MAX_BATCH_TOKENS("max-batch-tokens", "N", "tokens per batched forward step (default 512)"),
    MAX_CONTEXT("max-context", "N", "longest sequence, capped by the model (default 4096)"),
    THREADS("threads", "N", "PyTorch intra-op threads, 0 = leave as configured (default 0)"),
    DRAIN_SECONDS("drain-seconds", "S", "grace period for open sessions on shutdown (default 10)");

    final String name;
    final String arg;
    final String help;

    Flag(String name, String arg, String help) {
      this.name = name;
      this.arg = arg;
      this.help = help;
    }

    String env() {
      return "DRAFTMESH_" + name().replace("-", "_");
    }

    static Flag of(String name) {
      for (Flag f : values()) {
        if (f.name.equals(name)) {
          return f;
        }
      }
      return null;
    }
  }

  public WorkerConfig {
    if (model == null) {
      throw new ConfigException(
          "--model: missing (expected: a checkpoint directory; or set " + Flag.MODEL.env() + ")");
    }
    require(port >= 0 && port <= 65535, Flag.PORT, port, "0..65535");
    if (role == null) {
      throw new ConfigException("--role: missing (expected: draft or target)");
    }
    require(
        maxSessions >= 1 && maxSessions <= 100_000, Flag.MAX_SESSIONS, maxSessions, "1..100000");
    require(kvBudgetMb >= 1 && kvBudgetMb <= 1 << 20, Flag.KV_BUDGET_MB, kvBudgetMb, "1..1048576");
    require(kvBlockSize >= 1 && kvBlockSize <= 1024, Flag.KV_BLOCK_SIZE, kvBlockSize, "1..1024");
    require(
        maxTokensPerOp >= 1 && maxTokensPerOp <= 1024,
        Flag.MAX_TOKENS_PER_OP,
        maxTokensPerOp,
        "1..1024");
    require(
        maxBatchTokens > maxTokensPerOp && maxBatchTokens <= 1 << 20,
        Flag.MAX_BATCH_TOKENS,
        maxBatchTokens,
        (maxTokensPerOp + 1) + "..1048576, more than --max-tokens-per-op");
    require(maxContext >= 2, Flag.MAX_CONTEXT, maxContext, ">= 2");
    require(threads >= 0 && threads <= 1024, Flag.THREADS, threads, "0..1024");
    if (drainGrace == null || drainGrace.isNegative()) {
      throw new ConfigException("--drain-seconds: " + drainGrace + " (expected: >= 0)");
    }
  }

  /** Parses {@code args} over {@code env}; the service mains pass their fixed role. */
  public static WorkerConfig parse(String[] args, Map<String, String> env, Role fixedRole) {
    Map<Flag, String> values = new LinkedHashMap<>();
    Map<Flag, String> origins = new LinkedHashMap<>();
    for (Flag f : Flag.values()) {
      String v = env.get(f.env());
      if (v != null && !v.isBlank()) {
        values.put(f, v.trim());
        origins.put(f, f.env());
      }
    }
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        throw new ConfigException(a + ": unexpected argument (expected: --flag value)");
      }
      String name = a.substring(2);
      String value = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      Flag f = Flag.of(name);
      if (f == null) {
        throw new ConfigException(
            "--" + name + ": unknown flag (expected one of: " + names() + ")");
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          throw new ConfigException("--" + name + ": missing value (expected: " + f.arg + ")");
        }
        value = args[++i];
      }
      values.put(f, value);
      origins.put(f, "--" + f.name);
    }

    Role role = fixedRole;
    if (values.containsKey(Flag.ROLE)) {
      Role asked = Role.parse(values.get(Flag.ROLE), origins.get(Flag.ROLE));
      if (fixedRole != null && asked != fixedRole) {
        throw new ConfigException(
            origins.get(Flag.ROLE)
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
    String modelValue = values.get(Flag.MODEL);
    Path model = modelValue == null ? null : Path.of(modelValue);
    if (model != null && !Files.isDirectory(model)) {
      throw new ConfigException(
          origins.get(Flag.MODEL)
              + ": "
              + model
              + " (expected: a checkpoint directory; not found)");
    }
    return new WorkerConfig(
        model,
        intOf(values, origins, Flag.PORT, 0),
        role,
        intOf(values, origins, Flag.MAX_SESSIONS, role.defaultMaxSessions),
        intOf(values, origins, Flag.KV_BUDGET_MB, role.defaultKvBudgetMb),
        intOf(values, origins, Flag.KV_BLOCK_SIZE, 16),
        intOf(values, origins, Flag.MAX_TOKENS_PER_OP, 64),
        intOf(values, origins, Flag.MAX_BATCH_TOKENS, 512),
        intOf(values, origins, Flag.MAX_CONTEXT, 4096),
        intOf(values, origins, Flag.THREADS, 0),
        Duration.ofSeconds(intOf(values, origins, Flag.DRAIN_SECONDS, 10)));
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
        maxContext);
  }

  /** The flag table, for {@code --help}. */
  public static String usage() {
    StringBuilder sb = new StringBuilder("flags (each also read from its environment variable):\n");
    for (Flag f : Flag.values()) {
      String left = "  --" + f.name + " " + f.arg;
      sb.append(String.format(Locale.ROOT, "%-32s %-32s %s%n", left, f.env(), f.help));
    }
    return sb.toString();
  }

  private static String names() {
    StringBuilder sb = new StringBuilder();
    for (Flag f : Flag.values()) {
      sb.append(sb.length() == 0 ? "--" : ", --").append(f.name);
    }
    return sb.toString();
  }

  private static int intOf(
      Map<Flag, String> values, Map<Flag, String> origins, Flag f, int fallback) {
    String v = values.get(f);
    if (v == null) {
      return fallback;
    }
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(origins.get(f) + ": " + v + " (expected: an integer)");
    }
  }

  private static void require(boolean ok, Flag f, long value, String expected) {
    if (!ok) {
      throw new ConfigException("--" + f.name + ": " + value + " (expected: " + expected + ")");
    }
  }
}
