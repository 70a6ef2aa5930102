package io.draftmesh.gateway;

import io.draftmesh.flags.Flags;
import io.draftmesh.flags.Keepalive;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Everything the gateway process is configured with, from flags and environment variables (a flag
 * wins over its variable, a variable over the default). Validated on construction; every message
 * names the flag, the value and what was expected.
 *
 * <p>API keys are never taken from a flag (a command line is visible to every local user): {@code
 * DRAFTMESH_API_KEYS=key1,key2} and/or {@code --api-keys-file PATH} (one key per line, {@code #}
 * comments). {@link #toString()} does not print them.
 *
 * @param host the address both servers bind, e.g. {@code 0.0.0.0} or {@code 127.0.0.1}
 * @param grpcPort the public gRPC port; 0 picks a free one
 * @param httpPort the OpenAI-compatible HTTP and playground port; 0 picks a free one
 * @param router the router's gRPC target: {@code host:port} or a URI such as {@code
 *     dns:///router:50051}
 * @param models the public models; empty means one model, {@code default}, on the router's default
 *     pools
 * @param apiKeys accepted bearer keys
 * @param allowAnonymous serve without keys (refused unless no key is configured)
 * @param maxConcurrentPerKey streams one key may have running at once
 * @param tokensPerMinutePerKey completion tokens one key may receive per minute; 0 = unlimited
 * @param tokenBurst the token bucket's capacity (the most tokens one key may use at once)
 * @param maxBodyBytes the largest HTTP request body
 * @param maxTokensLimit the largest {@code max_tokens} a request may ask for
 * @param upstreamTimeout the deadline of every router call (a shorter client deadline wins)
 * @param sseHeartbeat how often an idle SSE stream gets a comment line, and a non-streaming
 *     response a space before its JSON (which detects a client that went away, so its generation is
 *     cancelled)
 * @param bodyTimeout how long a request body may take to arrive, from the end of its headers: a
 *     client that trickles it or stalls is answered 408 and its thread freed
 * @param headerTimeout how long a request line and headers may take to arrive, from their first
 *     byte: a slower client is answered 408 and closed (it holds no thread while it sends them)
 * @param idleTimeout how long an HTTP keep-alive connection may sit idle between requests before
 *     the server closes it
 * @param writeTimeout how long a response may wait for a client that reads nothing (its socket
 *     full): then the connection is cut and the generation cancelled
 * @param httpThreads HTTP completion requests served at once (each holds a thread for its whole
 *     length, an open stream included)
 * @param httpQueue HTTP completion requests that may wait, in arrival order, for one of those; past
 *     both, a request is refused at once with 429 / RESOURCE_EXHAUSTED
 * @param drainGrace how long shutdown waits for running requests before cancelling them
 * @param keepalive pings on the gateway's gRPC connections, both ways (public callers and the
 *     router), and how long a public caller's connection lives before the caller re-resolves
 */
public record GatewayConfig(
    String host,
    int grpcPort,
    int httpPort,
    String router,
    List<ModelSpec> models,
    List<String> apiKeys,
    boolean allowAnonymous,
    int maxConcurrentPerKey,
    int tokensPerMinutePerKey,
    int tokenBurst,
    int maxBodyBytes,
    int maxTokensLimit,
    Duration upstreamTimeout,
    Duration sseHeartbeat,
    Duration bodyTimeout,
    Duration headerTimeout,
    Duration idleTimeout,
    Duration writeTimeout,
    int httpThreads,
    int httpQueue,
    Duration drainGrace,
    Keepalive keepalive) {

  /** A request line and headers must arrive within this by default (--header-timeout-ms). */
  public static final Duration DEFAULT_HEADER_TIMEOUT = Duration.ofSeconds(10);

  /** Idle HTTP keep-alive connections are closed after this by default (--idle-timeout-ms). */
  public static final Duration DEFAULT_IDLE_TIMEOUT = Duration.ofSeconds(60);

  /** A client that reads nothing is cut off after this by default (--write-timeout-ms). */
  public static final Duration DEFAULT_WRITE_TIMEOUT = Duration.ofSeconds(60);

  /** The id of the model served when none is configured. */
  public static final String DEFAULT_MODEL = "default";

  /** HTTP completion requests that may wait for a free place by default (--http-queue). */
  public static final int DEFAULT_HTTP_QUEUE = 16;

  /** Environment variable with comma-separated API keys. */
  public static final String API_KEYS_ENV = "DRAFTMESH_API_KEYS";

  /**
   * One public model.
   *
   * @param id what clients name ({@code model} in OpenAI requests, {@code target} over gRPC)
   * @param target the router's target pool or model id; empty = the router's default
   * @param draft the router's draft pool or model id; empty = the router's default
   * @param dir the checkpoint directory, read for {@code tokenizer_config.json}; null if unknown
   * @param chatFormat forces a chat format; null = from the checkpoint's chat template
   */
  public record ModelSpec(String id, String target, String draft, Path dir, ChatFormat chatFormat) {
    public ModelSpec {
      if (id == null || !id.matches("[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")) {
        throw new ConfigException(
            "--model: id " + id + " (expected: letters, digits, '.', '_', ':', '/', '-')");
      }
      target = target == null ? "" : target;
      draft = draft == null ? "" : draft;
    }

    /**
     * Parses {@code id=NAME[,target=POOL][,draft=POOL][,dir=PATH][,chat=FORMAT]}, or a bare {@code
     * NAME} (served by the router pool or model id of that name).
     */
    static ModelSpec parse(String spec) {
      if (!spec.contains("=")) {
        return new ModelSpec(spec.trim(), spec.trim(), "", null, null);
      }
      Map<String, String> kv = new LinkedHashMap<>();
      for (String part : spec.split(",")) {
        int eq = part.indexOf('=');
        if (eq <= 0) {
          throw new ConfigException(
              "--model: " + spec + " (expected: id=NAME[,target=POOL][,draft=POOL][,dir=PATH])");
        }
        String key = part.substring(0, eq).trim();
        if (!Set.of("id", "target", "draft", "dir", "chat").contains(key)) {
          throw new ConfigException(
              "--model: key " + key + " in " + spec + " (expected: id, target, draft, dir, chat)");
        }
        kv.put(key, part.substring(eq + 1).trim());
      }
      String id = kv.get("id");
      if (id == null) {
        throw new ConfigException("--model: " + spec + " has no id (expected: id=NAME,...)");
      }
      Path dir = kv.containsKey("dir") ? Path.of(kv.get("dir")) : null;
      if (dir != null && !Files.isDirectory(dir)) {
        throw new ConfigException(
            "--model: dir " + dir + " of model " + id + " (expected: a checkpoint directory)");
      }
      ChatFormat chat = kv.containsKey("chat") ? ChatFormat.parse(kv.get("chat")) : null;
      return new ModelSpec(id, kv.getOrDefault("target", id), kv.get("draft"), dir, chat);
    }
  }

  /** A flag or variable that is missing, malformed or out of range. */
  public static final class ConfigException extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private enum Flag implements Flags.Option {
    HOST("host", "ADDR", "address to bind (default 0.0.0.0)"),
    GRPC_PORT("grpc-port", "N", "public gRPC port, 0 = any free port (default 50050)"),
    HTTP_PORT("http-port", "N", "HTTP (OpenAI API, playground) port, 0 = any (default 8080)"),
    ROUTER("router", "ADDR", "router: host:port or dns:///name:port (default localhost:50051)"),
    MODEL(
        "model", "SPEC", "public model id=NAME[,target=P][,draft=P][,dir=D][,chat=F] (repeatable)"),
    API_KEYS_FILE(
        "api-keys-file", "PATH", "file of API keys, one per line (also DRAFTMESH_API_KEYS)"),
    ALLOW_ANONYMOUS("allow-anonymous", "BOOL", "serve without API keys (default false)"),
    MAX_CONCURRENT_PER_KEY("max-concurrent-per-key", "N", "streams per key at once (default 8)"),
    TOKENS_PER_MINUTE("tokens-per-minute", "N", "completion tokens per key per minute, 0 = off"),
    TOKEN_BURST("token-burst", "N", "token bucket capacity (default: tokens-per-minute)"),
    MAX_BODY_BYTES("max-body-bytes", "N", "largest HTTP request body (default 1048576)"),
    MAX_TOKENS_LIMIT(
        "max-tokens-limit", "N", "largest max_tokens a request may ask (default 8192)"),
    UPSTREAM_TIMEOUT_MS("upstream-timeout-ms", "MS", "deadline of a router call (default 300000)"),
    SSE_HEARTBEAT_MS("sse-heartbeat-ms", "MS", "idle SSE keep-alive interval (default 10000)"),
    BODY_TIMEOUT_MS(
        "body-timeout-ms", "MS", "a request body must arrive within this (default 10000)"),
    HEADER_TIMEOUT_MS(
        "header-timeout-ms", "MS", "request line and headers must arrive within (default 10000)"),
    IDLE_TIMEOUT_MS(
        "idle-timeout-ms", "MS", "idle HTTP keep-alive connections close after (default 60000)"),
    WRITE_TIMEOUT_MS(
        "write-timeout-ms", "MS", "a client reading nothing is cut off after (default 60000)"),
    HTTP_THREADS("http-threads", "N", "completions served at once, a thread each (default 64)"),
    HTTP_QUEUE(
        "http-queue", "N", "completions waiting for one of those; more get 429 (default 16)"),
    DRAIN_SECONDS(
        "drain-seconds", "S", "grace period for running requests on shutdown (default 10)"),
    KEEPALIVE_SECONDS(
        "keepalive-seconds", "S", "gRPC ping interval on idle connections (default 30)"),
    KEEPALIVE_TIMEOUT_SECONDS(
        "keepalive-timeout-seconds", "S", "unanswered ping closes the connection (default 10)"),
    MAX_CONNECTION_AGE_SECONDS(
        "max-connection-age-seconds", "S", "gRPC callers reconnect after, 0 = never (default)");

    private final Flags.Spec spec;

    Flag(String name, String arg, String help) {
      String env = "DRAFTMESH_GATEWAY_" + (name().equals("MODEL") ? "MODELS" : name());
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

  public GatewayConfig {
    if (host == null || host.isBlank()) {
      throw new ConfigException("--host: empty (expected: an address such as 0.0.0.0)");
    }
    FLAGS.require(grpcPort >= 0 && grpcPort <= 65535, Flag.GRPC_PORT, grpcPort, "0..65535");
    FLAGS.require(httpPort >= 0 && httpPort <= 65535, Flag.HTTP_PORT, httpPort, "0..65535");
    if (grpcPort != 0 && grpcPort == httpPort) {
      throw new ConfigException(
          "--http-port: " + httpPort + " (expected: not the gRPC port " + grpcPort + ")");
    }
    if (router == null || router.isBlank()) {
      throw new ConfigException("--router: empty (expected: host:port or dns:///name:port)");
    }
    models = List.copyOf(models);
    Set<String> ids = new HashSet<>();
    for (ModelSpec m : models) {
      if (!ids.add(m.id())) {
        throw new ConfigException("--model: id " + m.id() + " given twice (expected: unique ids)");
      }
    }
    apiKeys = List.copyOf(apiKeys);
    for (int i = 0; i < apiKeys.size(); i++) {
      String k = apiKeys.get(i);
      if (k.length() < 8 || !k.chars().allMatch(c -> c > 0x20 && c < 0x7f)) {
        throw new ConfigException(
            "API key #"
                + (i + 1)
                + ": "
                + k.length()
                + " characters (expected: at least 8 printable ASCII characters, no spaces)");
      }
    }
    if (apiKeys.isEmpty() && !allowAnonymous) {
      throw new ConfigException(
          API_KEYS_ENV
              + ": no API key configured (expected: "
              + API_KEYS_ENV
              + "=key1,key2 or --api-keys-file PATH; or --allow-anonymous true for a private"
              + " development gateway)");
    }
    if (!apiKeys.isEmpty() && allowAnonymous) {
      throw new ConfigException(
          "--allow-anonymous: true with "
              + apiKeys.size()
              + " API keys configured (expected: one or the other)");
    }
    FLAGS.require(
        maxConcurrentPerKey >= 1 && maxConcurrentPerKey <= 100_000,
        Flag.MAX_CONCURRENT_PER_KEY,
        maxConcurrentPerKey,
        "1..100000");
    FLAGS.require(
        tokensPerMinutePerKey >= 0, Flag.TOKENS_PER_MINUTE, tokensPerMinutePerKey, ">= 0");
    FLAGS.require(tokenBurst >= 0, Flag.TOKEN_BURST, tokenBurst, ">= 0");
    if (tokensPerMinutePerKey > 0 && tokenBurst == 0) {
      tokenBurst = tokensPerMinutePerKey;
    }
    FLAGS.require(
        maxBodyBytes >= 1024 && maxBodyBytes <= 64 << 20,
        Flag.MAX_BODY_BYTES,
        maxBodyBytes,
        "1024..67108864");
    FLAGS.require(
        maxTokensLimit >= 1 && maxTokensLimit <= 1 << 20,
        Flag.MAX_TOKENS_LIMIT,
        maxTokensLimit,
        "1..1048576");
    positive(upstreamTimeout, Flag.UPSTREAM_TIMEOUT_MS);
    positive(sseHeartbeat, Flag.SSE_HEARTBEAT_MS);
    positive(bodyTimeout, Flag.BODY_TIMEOUT_MS);
    positive(headerTimeout, Flag.HEADER_TIMEOUT_MS);
    positive(idleTimeout, Flag.IDLE_TIMEOUT_MS);
    positive(writeTimeout, Flag.WRITE_TIMEOUT_MS);
    FLAGS.require(
        httpThreads >= 1 && httpThreads <= 10_000, Flag.HTTP_THREADS, httpThreads, "1..10000");
    FLAGS.require(httpQueue >= 0 && httpQueue <= 10_000, Flag.HTTP_QUEUE, httpQueue, "0..10000");
    if (drainGrace == null || drainGrace.isNegative()) {
      throw new ConfigException("--drain-seconds: " + drainGrace + " (expected: >= 0)");
    }
    java.util.Objects.requireNonNull(keepalive, "keepalive").check(FLAGS, KEEPALIVE);
  }

  /**
   * A config with defaults for everything but the router and the keys: both servers on free ports
   * of the loopback address, a drain grace of 1 s (for tests and embedding).
   */
  public static GatewayConfig of(String router, List<String> apiKeys) {
    return new GatewayConfig(
        "127.0.0.1",
        0,
        0,
        router,
        List.of(),
        apiKeys,
        apiKeys.isEmpty(),
        8,
        0,
        0,
        1 << 20,
        8192,
        Duration.ofMinutes(5),
        Duration.ofSeconds(10),
        Duration.ofSeconds(10),
        DEFAULT_HEADER_TIMEOUT,
        DEFAULT_IDLE_TIMEOUT,
        DEFAULT_WRITE_TIMEOUT,
        64,
        DEFAULT_HTTP_QUEUE,
        Duration.ofSeconds(1),
        Keepalive.DEFAULT);
  }

  /** This config serving {@code specs}. */
  public GatewayConfig withModels(List<ModelSpec> specs) {
    return with(f -> f.models = specs);
  }

  /** This config with other per-key limits. */
  public GatewayConfig withLimits(int concurrentPerKey, int tokensPerMinute, int burst) {
    return with(
        f -> {
          f.maxConcurrentPerKey = concurrentPerKey;
          f.tokensPerMinutePerKey = tokensPerMinute;
          f.tokenBurst = burst;
        });
  }

  /** This config with another heartbeat interval (SSE comments, non-streaming padding). */
  public GatewayConfig withSseHeartbeat(Duration interval) {
    return with(f -> f.sseHeartbeat = interval);
  }

  /** This config with another body timeout. */
  public GatewayConfig withBodyTimeout(Duration timeout) {
    return with(f -> f.bodyTimeout = timeout);
  }

  /** This config with other HTTP connection timers: header, keep-alive idle and write. */
  public GatewayConfig withHttpTimeouts(Duration header, Duration idle, Duration write) {
    return with(
        f -> {
          f.headerTimeout = header;
          f.idleTimeout = idle;
          f.writeTimeout = write;
        });
  }

  /** This config with another body limit. */
  public GatewayConfig withMaxBodyBytes(int bytes) {
    return with(f -> f.maxBodyBytes = bytes);
  }

  /**
   * This config with another bound on HTTP completions: {@code threads} served, {@code queue}
   * waiting.
   */
  public GatewayConfig withHttpLimits(int threads, int queue) {
    return with(
        f -> {
          f.httpThreads = threads;
          f.httpQueue = queue;
        });
  }

  /** This config with other gRPC keepalive settings. */
  public GatewayConfig withKeepalive(Keepalive k) {
    return with(f -> f.keepalive = k);
  }

  /** A copy of this config with {@code change} applied, validated as any config is. */
  private GatewayConfig with(java.util.function.Consumer<Fields> change) {
    Fields f = new Fields(this);
    change.accept(f);
    return f.build();
  }

  /** The record's fields, settable: what the withers change before building a new config. */
  private static final class Fields {
    private String host;
    private int grpcPort;
    private int httpPort;
    private String router;
    private List<ModelSpec> models;
    private List<String> apiKeys;
    private boolean allowAnonymous;
    private int maxConcurrentPerKey;
    private int tokensPerMinutePerKey;
    private int tokenBurst;
    private int maxBodyBytes;
    private int maxTokensLimit;
    private Duration upstreamTimeout;
    private Duration sseHeartbeat;
    private Duration bodyTimeout;
    private Duration headerTimeout;
    private Duration idleTimeout;
    private Duration writeTimeout;
    private int httpThreads;
    private int httpQueue;
    private Duration drainGrace;
    private Keepalive keepalive;

    Fields(GatewayConfig c) {
      host = c.host;
      grpcPort = c.grpcPort;
      httpPort = c.httpPort;
      router = c.router;
      models = c.models;
      apiKeys = c.apiKeys;
      allowAnonymous = c.allowAnonymous;
      maxConcurrentPerKey = c.maxConcurrentPerKey;
      tokensPerMinutePerKey = c.tokensPerMinutePerKey;
      tokenBurst = c.tokenBurst;
      maxBodyBytes = c.maxBodyBytes;
      maxTokensLimit = c.maxTokensLimit;
      upstreamTimeout = c.upstreamTimeout;
      sseHeartbeat = c.sseHeartbeat;
      bodyTimeout = c.bodyTimeout;
      headerTimeout = c.headerTimeout;
      idleTimeout = c.idleTimeout;
      writeTimeout = c.writeTimeout;
      httpThreads = c.httpThreads;
      httpQueue = c.httpQueue;
      drainGrace = c.drainGrace;
      keepalive = c.keepalive;
    }

    GatewayConfig build() {
      return new GatewayConfig(
          host,
          grpcPort,
          httpPort,
          router,
          models,
          apiKeys,
          allowAnonymous,
          maxConcurrentPerKey,
          tokensPerMinutePerKey,
          tokenBurst,
          maxBodyBytes,
          maxTokensLimit,
          upstreamTimeout,
          sseHeartbeat,
          bodyTimeout,
          headerTimeout,
          idleTimeout,
          writeTimeout,
          httpThreads,
          httpQueue,
          drainGrace,
          keepalive);
    }
  }

  /** The configured models, or the one default model when none is. */
  public List<ModelSpec> servedModels() {
    return models.isEmpty() ? List.of(new ModelSpec(DEFAULT_MODEL, "", "", null, null)) : models;
  }

  @Override
  public String toString() {
    return "GatewayConfig[host="
        + host
        + ", grpcPort="
        + grpcPort
        + ", httpPort="
        + httpPort
        + ", router="
        + router
        + ", models="
        + models
        + ", apiKeys="
        + apiKeys.size()
        + " (not shown), allowAnonymous="
        + allowAnonymous
        + ", maxConcurrentPerKey="
        + maxConcurrentPerKey
        + ", tokensPerMinutePerKey="
        + tokensPerMinutePerKey
        + ", tokenBurst="
        + tokenBurst
        + ", maxBodyBytes="
        + maxBodyBytes
        + ", maxTokensLimit="
        + maxTokensLimit
        + ", upstreamTimeout="
        + upstreamTimeout
        + ", sseHeartbeat="
        + sseHeartbeat
        + ", bodyTimeout="
        + bodyTimeout
        + ", headerTimeout="
        + headerTimeout
        + ", idleTimeout="
        + idleTimeout
        + ", writeTimeout="
        + writeTimeout
        + ", httpThreads="
        + httpThreads
        + ", httpQueue="
        + httpQueue
        + ", drainGrace="
        + drainGrace
        + ", keepalive="
        + keepalive
        + "]";
  }

  /** Parses {@code args} over {@code env}. */
  public static GatewayConfig parse(String[] args, Map<String, String> env) {
    Flags<Flag>.Values v = FLAGS.parse(args, env, Set.of(Flag.MODEL), true);
    List<ModelSpec> models = new ArrayList<>();
    for (String m : v.list(Flag.MODEL, true)) {
      models.add(ModelSpec.parse(m));
    }
    List<String> keys = new ArrayList<>();
    String envKeys = env.get(API_KEYS_ENV);
    if (envKeys != null) {
      for (String k : envKeys.split(",")) {
        if (!k.isBlank()) {
          keys.add(k.trim());
        }
      }
    }
    String file = v.get(Flag.API_KEYS_FILE);
    if (file != null) {
      keys.addAll(readKeys(Path.of(file), v.origin(Flag.API_KEYS_FILE)));
    }
    String anon = v.get(Flag.ALLOW_ANONYMOUS, "false");
    if (!anon.equals("true") && !anon.equals("false")) {
      throw new ConfigException(
          v.origin(Flag.ALLOW_ANONYMOUS) + ": " + anon + " (expected: true or false)");
    }
    int tpm = v.intOf(Flag.TOKENS_PER_MINUTE, 0);
    return new GatewayConfig(
        v.get(Flag.HOST, "0.0.0.0"),
        v.intOf(Flag.GRPC_PORT, 50050),
        v.intOf(Flag.HTTP_PORT, 8080),
        v.get(Flag.ROUTER, "localhost:50051"),
        models,
        keys,
        Boolean.parseBoolean(anon),
        v.intOf(Flag.MAX_CONCURRENT_PER_KEY, 8),
        tpm,
        v.intOf(Flag.TOKEN_BURST, tpm),
        v.intOf(Flag.MAX_BODY_BYTES, 1 << 20),
        v.intOf(Flag.MAX_TOKENS_LIMIT, 8192),
        v.millis(Flag.UPSTREAM_TIMEOUT_MS, 300_000),
        v.millis(Flag.SSE_HEARTBEAT_MS, 10_000),
        v.millis(Flag.BODY_TIMEOUT_MS, 10_000),
        v.millis(Flag.HEADER_TIMEOUT_MS, (int) DEFAULT_HEADER_TIMEOUT.toMillis()),
        v.millis(Flag.IDLE_TIMEOUT_MS, (int) DEFAULT_IDLE_TIMEOUT.toMillis()),
        v.millis(Flag.WRITE_TIMEOUT_MS, (int) DEFAULT_WRITE_TIMEOUT.toMillis()),
        v.intOf(Flag.HTTP_THREADS, 64),
        v.intOf(Flag.HTTP_QUEUE, DEFAULT_HTTP_QUEUE),
        v.seconds(Flag.DRAIN_SECONDS, 10),
        Keepalive.parse(FLAGS, v, KEEPALIVE));
  }

  private static List<String> readKeys(Path file, String origin) {
    List<String> keys = new ArrayList<>();
    try {
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        String k = line.strip();
        if (!k.isEmpty() && !k.startsWith("#")) {
          keys.add(k);
        }
      }
    } catch (IOException e) {
      throw new ConfigException(
          origin + ": " + file + " (expected: a readable file of API keys; " + e + ")");
    }
    return keys;
  }

  /** The flag table, for {@code --help}. */
  public static String usage() {
    return FLAGS.usage(32, 42)
        + Flags.row(32, 42, "  (no flag)", API_KEYS_ENV, "API keys, comma-separated");
  }

  private static void positive(Duration d, Flag f) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new ConfigException(
          "--" + f.spec().name() + ": " + (d == null ? null : d.toMillis()) + " (expected: > 0)");
    }
  }
}
