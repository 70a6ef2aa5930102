package io.draftmesh.router;

import io.draftmesh.flags.Flags;
import io.draftmesh.flags.Keepalive;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Everything the router process is configured with, from flags and {@code DRAFTMESH_ROUTER_*}
 * environment variables (a flag wins over its variable, a variable over the default). Validated on
 * construction; every message names the flag, the value and what was expected.
 *
 * @param port the gRPC port; 0 picks a free one
 * @param pools worker pools by name: {@code host:port[,host:port]} or a target URI such as {@code
 *     dns:///workers:50051}; {@code --target} and {@code --draft} define the pools "target" and
 *     "draft"
 * @param defaultTarget the pool used when a request names no target
 * @param defaultDraft the pool used when a speculative request names no draft, or null
 * @param tokenizers tokenizer.json files or directories holding them (a model zoo)
 * @param defaultMaxTokens completion tokens when a request gives none
 * @param maxTokensLimit the largest max_tokens a request may ask for
 * @param maxConcurrent requests decoded at once; as many more wait, the rest get RESOURCE_EXHAUSTED
 * @param targetTimeout deadline of each target op (the client's deadline applies as well)
 * @param draftTimeout deadline of each draft round; a slower draft is dropped for the request
 * @param autoregressiveChunk the most tokens one autoregressive Propose asks the target for
 * @param drainGrace how long shutdown waits for running requests before cancelling them
 * @param keepalive pings on the router's connections, both ways (callers and workers), and how long
 *     a caller connection lives before the caller re-resolves
 * @param kvcache kvcache-service {@code host:port} whose replica index places requests on the
 *     target replica holding most of their prefix, or null for round-robin
 * @param kvcacheDeadline how long placement waits for the index before round-robin decides
 * @param kvRouteWeight w in the placement score {@code w x blocks to prefill + running requests}
 * @param resolveInterval how often a {@code dns:///} pool's name is resolved again (replicas added
 *     and removed are followed at this pace, besides the JVM's own cache of answers)
 */
public record RouterConfig(
    int port,
    Map<String, String> pools,
    String defaultTarget,
    String defaultDraft,
    List<Path> tokenizers,
    int defaultMaxTokens,
    int maxTokensLimit,
    int maxConcurrent,
    Duration targetTimeout,
    Duration draftTimeout,
    int autoregressiveChunk,
    Duration drainGrace,
    Keepalive keepalive,
    String kvcache,
    Duration kvcacheDeadline,
    double kvRouteWeight,
    Duration resolveInterval) {

  /** A config without a kvcache: round-robin placement. */
  public RouterConfig(
      int port,
      Map<String, String> pools,
      String defaultTarget,
      String defaultDraft,
      List<Path> tokenizers,
      int defaultMaxTokens,
      int maxTokensLimit,
      int maxConcurrent,
      Duration targetTimeout,
      Duration draftTimeout,
      int autoregressiveChunk,
      Duration drainGrace,
      Keepalive keepalive) {
    this(
        port,
        pools,
        defaultTarget,
        defaultDraft,
        tokenizers,
        defaultMaxTokens,
        maxTokensLimit,
        maxConcurrent,
        targetTimeout,
        draftTimeout,
        autoregressiveChunk,
        drainGrace,
        keepalive,
        null,
        DEFAULT_KVCACHE_DEADLINE,
        1.0,
        DEFAULT_RESOLVE_INTERVAL);
  }

  /** How long placement waits for the kvcache's replica index before round-robin decides. */
  public static final Duration DEFAULT_KVCACHE_DEADLINE = Duration.ofMillis(50);

  /** How often a {@code dns:///} pool is resolved again. */
  public static final Duration DEFAULT_RESOLVE_INTERVAL = Duration.ofSeconds(5);

  /** A flag or variable that is missing, malformed or out of range. */
  public static final class ConfigException extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private enum Flag implements Flags.Option {
    PORT("port", "N", "gRPC port, 0 = any free port (default 50051)"),
    TARGET("target", "ADDRS", "target pool: host:port[,host:port] or dns:///name:port"),
    DRAFT("draft", "ADDRS", "draft pool: host:port[,host:port] or dns:///name:port"),
    POOL("pool", "NAME=ADDRS", "another named pool (repeatable; env: NAME=ADDRS;NAME=ADDRS)"),
    DEFAULT_TARGET("default-target", "NAME", "pool for requests naming no target (default target)"),
    DEFAULT_DRAFT("default-draft", "NAME", "pool for requests naming no draft (default draft)"),
    TOKENIZERS("tokenizers", "PATHS", "tokenizer.json files or directories, comma-separated"),
    MAX_TOKENS("max-tokens", "N", "completion tokens when a request sets none (default 256)"),
    MAX_TOKENS_LIMIT(
        "max-tokens-limit", "N", "largest max_tokens a request may ask (default 8192)"),
    MAX_CONCURRENT("max-concurrent", "N", "requests decoded at once (default 64)"),
    TARGET_TIMEOUT_MS("target-timeout-ms", "MS", "deadline of one target op (default 60000)"),
    DRAFT_TIMEOUT_MS("draft-timeout-ms", "MS", "deadline of one draft round (default 2000)"),
    AR_CHUNK("ar-chunk", "N", "most tokens per autoregressive target call (default 8)"),
    DRAIN_SECONDS(
        "drain-seconds", "S", "grace period for running requests on shutdown (default 10)"),
    KVCACHE("kvcache", "HOST:PORT", "kvcache-service: place by its replica index (default none)"),
    KVCACHE_DEADLINE_MS(
        "kvcache-deadline-ms", "MS", "wait on the index, then round-robin (default 50)"),
    KV_ROUTE_WEIGHT(
        "kv-route-weight", "W", "score w x blocks to prefill + running requests (default 1)"),
    RESOLVE_INTERVAL_MS(
        "resolve-interval-ms", "MS", "resolve dns:/// pools again this often (default 5000)"),
    KEEPALIVE_SECONDS("keepalive-seconds", "S", "ping interval on idle connections (default 30)"),
    KEEPALIVE_TIMEOUT_SECONDS(
        "keepalive-timeout-seconds", "S", "unanswered ping closes the connection (default 10)"),
    MAX_CONNECTION_AGE_SECONDS(
        "max-connection-age-seconds", "S", "callers reconnect (re-resolve) after, 0 = never");

    private final Flags.Spec spec;

    Flag(String name, String arg, String help) {
      String env = "DRAFTMESH_ROUTER_" + (name().equals("POOL") ? "POOLS" : name());
      spec = new Flags.Spec(name, arg, help, env);
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  private static final Flags<Flag> FLAGS = new Flags<>(Flag.class, ConfigException::new);
  private static final Keepalive.Names<Flag> KEEPALIVE =
      new Keepalive.Names<>(
          Flag.KEEPALIVE_SECONDS, Flag.KEEPALIVE_TIMEOUT_SECONDS, Flag.MAX_CONNECTION_AGE_SECONDS);

  public RouterConfig {
    FLAGS.require(port >= 0 && port <= 65535, Flag.PORT, port, "0..65535");
    pools = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(pools));
    for (Map.Entry<String, String> e : pools.entrySet()) {
      if (!e.getKey().matches("[A-Za-z0-9][A-Za-z0-9._-]*")) {
        throw new ConfigException(
            "--pool: " + e.getKey() + " (expected: a name of letters, digits, '.', '_', '-')");
      }
      try {
        WorkerPool.parseSpec(e.getValue());
      } catch (IllegalArgumentException bad) {
        throw new ConfigException("pool " + e.getKey() + ": " + bad.getMessage());
      }
    }
    if (defaultTarget == null || !pools.containsKey(defaultTarget)) {
      throw new ConfigException(
          "target".equals(defaultTarget) || defaultTarget == null
              ? "--target: missing (expected: host:port[,host:port] or dns:///name:port;"
                  + " or --pool NAME=ADDRS with --default-target NAME)"
              : "--default-target: "
                  + defaultTarget
                  + " (expected: one of the pools "
                  + pools.keySet()
                  + ")");
    }
    if (defaultDraft != null && !pools.containsKey(defaultDraft)) {
      throw new ConfigException(
          "--default-draft: "
              + defaultDraft
              + " (expected: one of the pools "
              + pools.keySet()
              + ")");
    }
    tokenizers = List.copyOf(tokenizers);
    FLAGS.require(defaultMaxTokens >= 1, Flag.MAX_TOKENS, defaultMaxTokens, ">= 1");
    FLAGS.require(
        maxTokensLimit >= defaultMaxTokens,
        Flag.MAX_TOKENS_LIMIT,
        maxTokensLimit,
        ">= --max-tokens " + defaultMaxTokens);
    FLAGS.require(
        maxConcurrent >= 1 && maxConcurrent <= 100_000,
        Flag.MAX_CONCURRENT,
        maxConcurrent,
        "1..100000");
    if (targetTimeout == null || targetTimeout.isNegative() || targetTimeout.isZero()) {
      throw new ConfigException("--target-timeout-ms: " + targetTimeout + " (expected: > 0)");
    }
    if (draftTimeout == null || draftTimeout.isNegative() || draftTimeout.isZero()) {
      throw new ConfigException("--draft-timeout-ms: " + draftTimeout + " (expected: > 0)");
    }
    FLAGS.require(
        autoregressiveChunk >= 1 && autoregressiveChunk <= 1024,
        Flag.AR_CHUNK,
        autoregressiveChunk,
        "1..1024");
    if (drainGrace == null || drainGrace.isNegative()) {
      throw new ConfigException("--drain-seconds: " + drainGrace + " (expected: >= 0)");
    }
    java.util.Objects.requireNonNull(keepalive, "keepalive").check(FLAGS, KEEPALIVE);
    if (kvcache != null) {
      try {
        if (WorkerPool.parseSpec(kvcache).size() != 1 || kvcache.contains("://")) {
          throw new IllegalArgumentException(kvcache + " (expected: one host:port)");
        }
      } catch (IllegalArgumentException bad) {
        throw new ConfigException("--kvcache: " + bad.getMessage());
      }
    }
    if (kvcacheDeadline == null
        || kvcacheDeadline.toMillis() < 1
        || kvcacheDeadline.toMillis() > 60_000) {
      throw new ConfigException(
          "--kvcache-deadline-ms: "
              + (kvcacheDeadline == null ? null : kvcacheDeadline.toMillis())
              + " (expected: 1..60000)");
    }
    if (!(kvRouteWeight >= 0 && kvRouteWeight <= 1_000_000)) {
      throw new ConfigException(
          "--kv-route-weight: " + kvRouteWeight + " (expected: a number in 0..1000000)");
    }
    if (resolveInterval == null
        || resolveInterval.toMillis() < 100
        || resolveInterval.toMillis() > 3_600_000) {
      throw new ConfigException(
          "--resolve-interval-ms: "
              + (resolveInterval == null ? null : resolveInterval.toMillis())
              + " (expected: 100..3600000)");
    }
  }

  /** A config with defaults for everything but the pools (for tests and embedding). */
  public static RouterConfig of(String targetSpec, String draftSpec) {
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", targetSpec);
    if (draftSpec != null) {
      pools.put("draft", draftSpec);
    }
    return new RouterConfig(
        0,
        pools,
        "target",
        draftSpec == null ? null : "draft",
        List.of(),
        256,
        8192,
        64,
        Duration.ofSeconds(60),
        Duration.ofSeconds(2),
        8,
        Duration.ofSeconds(10),
        Keepalive.DEFAULT);
  }

  /** This config with other tokenizer paths. */
  public RouterConfig withTokenizers(List<Path> paths) {
    return new RouterConfig(
        port,
        pools,
        defaultTarget,
        defaultDraft,
        paths,
        defaultMaxTokens,
        maxTokensLimit,
        maxConcurrent,
        targetTimeout,
        draftTimeout,
        autoregressiveChunk,
        drainGrace,
        keepalive,
        kvcache,
        kvcacheDeadline,
        kvRouteWeight,
        resolveInterval);
  }

  /** This config with another draft round deadline. */
  public RouterConfig withDraftTimeout(Duration timeout) {
    return new RouterConfig(
        port,
        pools,
        defaultTarget,
        defaultDraft,
        tokenizers,
        defaultMaxTokens,
        maxTokensLimit,
        maxConcurrent,
        targetTimeout,
        timeout,
        autoregressiveChunk,
        drainGrace,
        keepalive,
        kvcache,
        kvcacheDeadline,
        kvRouteWeight,
        resolveInterval);
  }

  /** Parses {@code args} over {@code env}. */
  public static RouterConfig parse(String[] args, Map<String, String> env) {
    Flags<Flag>.Values v = FLAGS.parse(args, env, Set.of(Flag.POOL), true);
    Map<String, String> pools = new LinkedHashMap<>();
    if (v.get(Flag.TARGET) != null) {
      pools.put("target", v.get(Flag.TARGET));
    }
    if (v.get(Flag.DRAFT) != null) {
      pools.put("draft", v.get(Flag.DRAFT));
    }
    for (String p : v.list(Flag.POOL, false)) {
      int eq = p.indexOf('=');
      if (eq <= 0) {
        throw new ConfigException("--pool: " + p + " (expected: NAME=ADDRS)");
      }
      pools.put(p.substring(0, eq).trim(), p.substring(eq + 1).trim());
    }
    String defaultTarget = v.get(Flag.DEFAULT_TARGET, "target");
    String defaultDraft = v.get(Flag.DEFAULT_DRAFT);
    if (defaultDraft == null && pools.containsKey("draft")) {
      defaultDraft = "draft";
    }
    List<Path> tokenizers = new ArrayList<>();
    String tok = v.get(Flag.TOKENIZERS);
    if (tok != null) {
      for (String t : tok.split(",")) {
        if (!t.isBlank()) {
          tokenizers.add(Path.of(t.trim()));
        }
      }
    }
    return new RouterConfig(
        v.intOf(Flag.PORT, 50051),
        pools,
        defaultTarget,
        defaultDraft,
        tokenizers,
        v.intOf(Flag.MAX_TOKENS, 256),
        v.intOf(Flag.MAX_TOKENS_LIMIT, 8192),
        v.intOf(Flag.MAX_CONCURRENT, 64),
        v.millis(Flag.TARGET_TIMEOUT_MS, 60_000),
        v.millis(Flag.DRAFT_TIMEOUT_MS, 2_000),
        v.intOf(Flag.AR_CHUNK, 8),
        v.seconds(Flag.DRAIN_SECONDS, 10),
        Keepalive.parse(FLAGS, v, KEEPALIVE),
        blankToNull(v.get(Flag.KVCACHE)),
        v.millis(Flag.KVCACHE_DEADLINE_MS, (int) DEFAULT_KVCACHE_DEADLINE.toMillis()),
        weight(v),
        v.millis(Flag.RESOLVE_INTERVAL_MS, (int) DEFAULT_RESOLVE_INTERVAL.toMillis()));
  }

  private static String blankToNull(String s) {
    return s == null || s.isBlank() ? null : s.trim();
  }

  private static double weight(Flags<Flag>.Values v) {
    String text = v.get(Flag.KV_ROUTE_WEIGHT);
    if (text == null) {
      return 1.0;
    }
    try {
      return Double.parseDouble(text.trim());
    } catch (NumberFormatException e) {
      throw new ConfigException(
          v.origin(Flag.KV_ROUTE_WEIGHT) + ": " + text + " (expected: a number in 0..1000000)");
    }
  }

  /** The flag table, for {@code --help}. */
  public static String usage() {
    return FLAGS.usage(30, 34);
  }
}
