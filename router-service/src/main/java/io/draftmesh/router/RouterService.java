package io.draftmesh.router;

import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TextPart;
import io.draftmesh.proto.v1.TextParts;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code Router.Generate}: validates the request at the edge, picks the workers, and runs the
 * request's {@link DecodingStrategy} on a bounded executor that carries the request's gRPC context,
 * so the client's deadline and cancellation reach every worker call. Never blocks a transport
 * thread.
 */
final class RouterService extends RouterGrpc.RouterImplBase implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RouterService.class);

  static final int DEFAULT_K = 4;
  static final int DEFAULT_TREE_NODES = 16;
  static final int DEFAULT_MAX_K = 16;
  static final int DEFAULT_NGRAM_N = 3;
  static final int DEFAULT_NGRAM_MIN_N = 1;
  static final int DEFAULT_NGRAM_MAX_MATCH = 4;
  static final int MAX_STOPS = 16;
  static final int MAX_STOP_LENGTH = 256;
  private static final java.time.Duration INFO_TIMEOUT = java.time.Duration.ofSeconds(5);
  private static final java.time.Duration CLOSE_WAIT = java.time.Duration.ofSeconds(1);

  private final RouterConfig config;
  private final Map<String, WorkerPool> pools;
  private final KvPlacement placement; // null: round-robin only
  private final Tokenizers tokenizers;
  private final ThreadPoolExecutor executor;
  private final AtomicLong requests = new AtomicLong();
  // Token Recycling's tables, one per target model (TokenRecyclingTable.key), for the router's
  // life.
  private final Map<String, TokenRecyclingTable> recyclingTables =
      new java.util.concurrent.ConcurrentHashMap<>();
  private final io.opentelemetry.api.trace.Tracer tracer;
  private final io.draftmesh.telemetry.GenerationMetrics metrics;
  private final AutoCloseable requestGauges;

  RouterService(
      RouterConfig config,
      Map<String, WorkerPool> pools,
      KvPlacement placement,
      Tokenizers tokenizers,
      io.opentelemetry.api.OpenTelemetry otel) {
    this.config = config;
    this.placement = placement;
    this.pools = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(pools));
    this.tokenizers = tokenizers;
    AtomicInteger n = new AtomicInteger();
    this.executor =
        new ThreadPoolExecutor(
            config.maxConcurrent(),
            config.maxConcurrent(),
            60,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(config.maxConcurrent()),
            r -> {
              Thread t = new Thread(r, "router-generate-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
    executor.allowCoreThreadTimeOut(true);
    this.tracer = otel.getTracer("io.draftmesh.router");
    this.metrics = new io.draftmesh.telemetry.GenerationMetrics(otel);
    this.requestGauges =
        metrics.requestGauges(executor::getActiveCount, () -> executor.getQueue().size());
  }

  /** Requests running or queued. */
  int inFlight() {
    return executor.getActiveCount() + executor.getQueue().size();
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateChunk> responseObserver) {
    ServerCallStreamObserver<GenerateChunk> call =
        (ServerCallStreamObserver<GenerateChunk>) responseObserver;
    try {
      validate(request);
    } catch (StatusRuntimeException e) {
      call.onError(e);
      return;
    }
    String label =
        request.getRequestId().isEmpty()
            ? "gen-" + requests.incrementAndGet()
            : request.getRequestId();
    RequestTelemetry telemetry = RequestTelemetry.start(tracer, metrics, request, label);
    Generation g = new Generation(request, call, label, telemetry);
    call.setOnCancelHandler(() -> g.cancel("client cancelled"));
    call.setOnReadyHandler(g::ready);
    Context ctx = Context.current();
    ctx.addListener(
        c ->
            g.cancel(
                c.getDeadline() != null && c.getDeadline().isExpired()
                    ? "deadline exceeded"
                    : "client cancelled"),
        Runnable::run);
    try {
      executor.execute(ctx.wrap(g::run));
    } catch (RejectedExecutionException e) {
      Status full =
          Status.RESOURCE_EXHAUSTED.withDescription(
              "router: "
                  + config.maxConcurrent()
                  + " requests running and as many queued (expected: fewer; retry later)");
      telemetry.end(full, null);
      call.onError(full.asRuntimeException());
    }
  }

  /** Checks everything that does not need the workers' model info. */
  static void validate(GenerateRequest r) {
    switch (r.getPromptCase()) {
      case TEXT:
        if (r.getText().isEmpty()) {
          throw Statuses.invalid("text: empty (expected: a non-empty prompt)");
        }
        break;
      case PARTS:
        if (r.getParts().getPartsCount() == 0) {
          throw Statuses.invalid("parts.parts: empty (expected: at least one part)");
        }
        if (r.getParts().getPartsList().stream().allMatch(p -> p.getText().isEmpty())) {
          throw Statuses.invalid("parts.parts: all empty (expected: a non-empty prompt)");
        }
        break;
      case TOKEN_IDS:
        if (r.getTokenIds().getIdsCount() == 0) {
          throw Statuses.invalid("token_ids.ids: empty (expected: at least one token id)");
        }
        for (int i = 0; i < r.getTokenIds().getIdsCount(); i++) {
          if (r.getTokenIds().getIds(i) < 0) {
            throw Statuses.invalid(
                "token_ids.ids[" + i + "]: " + r.getTokenIds().getIds(i) + " (expected: >= 0)");
          }
        }
        break;
      default:
        throw Statuses.invalid("prompt: missing (expected: text, parts or token_ids)");
    }
    if (r.getStrategy() == Strategy.UNRECOGNIZED) {
      throw Statuses.invalid(
          "strategy: "
              + r.getStrategyValue()
              + " (expected: STRATEGY_AUTOREGRESSIVE, STRATEGY_SPECULATIVE, STRATEGY_NGRAM,"
              + " STRATEGY_NUDGING, STRATEGY_ENTROPY_SWITCH, STRATEGY_SPECPC, STRATEGY_SPECKV or"
              + " STRATEGY_LEAD_IN)");
    }
    validateCollaboration(r);
    Sampling s = r.getSampling();
    float t = s.getTemperature();
    if (!(t >= 0f && t <= 100f)) {
      throw Statuses.invalid(
          "sampling.temperature: " + t + " (expected: 0 for greedy, or (0, 100])");
    }
    if (s.getTopK() < 0) {
      throw Statuses.invalid("sampling.top_k: " + s.getTopK() + " (expected: 0 for off, or >= 1)");
    }
    if (!(s.getTopP() >= 0f && s.getTopP() <= 1f)) {
      throw Statuses.invalid(
          "sampling.top_p: " + s.getTopP() + " (expected: 0 for off, or (0, 1])");
    }
    if (!(s.getMinP() >= 0f && s.getMinP() < 1f)) {
      throw Statuses.invalid(
          "sampling.min_p: " + s.getMinP() + " (expected: 0 for off, or (0, 1))");
    }
    if (s.getMaxTokens() < 0) {
      throw Statuses.invalid(
          "sampling.max_tokens: " + s.getMaxTokens() + " (expected: 0 for the default, or >= 1)");
    }
    if (s.getStopCount() > MAX_STOPS) {
      throw Statuses.invalid(
          "sampling.stop: "
              + s.getStopCount()
              + " sequences (expected: at most "
              + MAX_STOPS
              + ")");
    }
    for (int i = 0; i < s.getStopCount(); i++) {
      int n = s.getStop(i).length();
      if (n < 1 || n > MAX_STOP_LENGTH) {
        throw Statuses.invalid(
            "sampling.stop["
                + i
                + "]: "
                + n
                + " characters (expected: 1.."
                + MAX_STOP_LENGTH
                + ")");
      }
    }
    SpeculativeOptions sp = r.getSpeculative();
    if (sp.getK() < 0) {
      throw Statuses.invalid(
          "speculative.k: " + sp.getK() + " (expected: 0 for " + DEFAULT_K + ", or >= 1)");
    }
    if (sp.getMaxK() < 0 || (sp.getMaxK() > 0 && sp.getMaxK() < sp.getK())) {
      throw Statuses.invalid(
          "speculative.max_k: "
              + sp.getMaxK()
              + " (expected: 0 for "
              + DEFAULT_MAX_K
              + ", or >= speculative.k)");
    }
    float mp = sp.getMinDraftTokenProb();
    if (!(mp >= 0f && mp < 1f)) {
      throw Statuses.invalid(
          "speculative.min_draft_token_prob: " + mp + " (expected: 0 for off, or (0, 1))");
    }
    if (sp.getDrafter() == Drafter.UNRECOGNIZED) {
      throw Statuses.invalid(
          "speculative.drafter: "
              + sp.getDrafterValue()
              + " (expected: DRAFTER_CHAIN, DRAFTER_DYSPEC, DRAFTER_RSD, DRAFTER_TOKEN_RECYCLING or"
              + " DRAFTER_LOOKAHEAD)");
    }
    if (sp.getTreeNodes() < 0) {
      throw Statuses.invalid(
          "speculative.tree_nodes: "
              + sp.getTreeNodes()
              + " (expected: 0 for "
              + DEFAULT_TREE_NODES
              + ", or >= 1)");
    }
    SpecPcStrategy.validate(r.getSpecPc());
    SpecKvStrategy.validate(r);
    NgramOptions ng = r.getNgram();
    if (ng.getN() < 0 || ng.getN() > 64) {
      throw Statuses.invalid(
          "ngram.n: " + ng.getN() + " (expected: 0 for " + DEFAULT_NGRAM_N + ", or 1..64)");
    }
    int n = ng.getN() == 0 ? DEFAULT_NGRAM_N : ng.getN();
    if (ng.getMinN() < 0 || ng.getMinN() > n) {
      throw Statuses.invalid(
          "ngram.min_n: "
              + ng.getMinN()
              + " (expected: 0 for "
              + DEFAULT_NGRAM_MIN_N
              + ", or 1..n "
              + n
              + ")");
    }
    if (ng.getMaxMatch() < 0) {
      throw Statuses.invalid(
          "ngram.max_match: "
              + ng.getMaxMatch()
              + " (expected: 0 for "
              + DEFAULT_NGRAM_MAX_MATCH
              + ", or >= 1)");
    }
  }

  /** The options of the approximate strategies (checked whatever the strategy, like the others). */
  static void validateCollaboration(GenerateRequest r) {
    NudgingOptions nu = r.getNudging();
    float g = nu.getGamma();
    if (g != 0f && !(g > 0f && g < 1f)) {
      throw Statuses.invalid(
          "nudging.gamma: "
              + g
              + " (expected: 0 for "
              + NudgingRule.DEFAULT_GAMMA
              + ", or a top-1 probability in (0, 1))");
    }
    if (nu.getChunkTokens() < 0) {
      throw Statuses.invalid(
          "nudging.chunk_tokens: "
              + nu.getChunkTokens()
              + " (expected: 0 for "
              + NudgingRule.DEFAULT_CHUNK_TOKENS
              + ", or >= 1)");
    }
    if (r.getStrategy() == Strategy.STRATEGY_NUDGING
        && nu.getAlignedPrompt().isEmpty()
        && nu.getAlignedParts().getPartsCount() == 0) {
      throw Statuses.invalid(
          "nudging.aligned_prompt: empty (expected: the aligned model's prompt in its chat"
              + " template, for STRATEGY_NUDGING)");
    }
    EntropySwitchOptions es = r.getEntropySwitch();
    if (es.hasTau() && !(es.getTau() >= 0f && Float.isFinite(es.getTau()))) {
      throw Statuses.invalid(
          "entropy_switch.tau: " + es.getTau() + " (expected: a finite entropy in bits, >= 0)");
    }
    if (es.hasWindow() && es.getWindow() < 1) {
      throw Statuses.invalid(
          "entropy_switch.window: " + es.getWindow() + " (expected: >= 1 tokens)");
    }
    if (es.hasMinRun() && es.getMinRun() < 1) {
      throw Statuses.invalid(
          "entropy_switch.min_run: " + es.getMinRun() + " (expected: >= 1 tokens)");
    }
    LeadInOptions li = r.getLeadIn();
    if (li.hasN() && li.getN() < 0) {
      throw Statuses.invalid("lead_in.n: " + li.getN() + " (expected: >= 0 tokens)");
    }
    if (li.getSentenceEnd().length() > MAX_STOP_LENGTH) {
      throw Statuses.invalid(
          "lead_in.sentence_end: "
              + li.getSentenceEnd().length()
              + " characters (expected: 0 for \".!?\\n\", or 1.."
              + MAX_STOP_LENGTH
              + ")");
    }
  }

  /**
   * The pool a request names: a pool name, else the first pool (in configuration order) serving
   * that model id; empty means the default pool.
   */
  WorkerPool resolve(String requested, String defaultPool, String field) {
    if (requested.isEmpty()) {
      if (defaultPool == null) {
        throw Statuses.failedPrecondition(
            field
                + ": none given and the router has no default "
                + field
                + " pool (expected: a "
                + field
                + " pool name, or start the router with --"
                + field
                + ")");
      }
      return pools.get(defaultPool);
    }
    WorkerPool byName = pools.get(requested);
    if (byName != null) {
      return byName;
    }
    for (WorkerPool pool : pools.values()) {
      for (WorkerPool.Backend b : pool.backends()) {
        ModelInfo info = b.cachedInfo();
        if (info == null) {
          try {
            info = b.info(INFO_TIMEOUT);
          } catch (StatusRuntimeException unreachable) {
            continue;
          }
        }
        if (info.getModelId().equals(requested)) {
          return pool;
        }
      }
    }
    throw Statuses.notFound(
        field
            + ": "
            + requested
            + " (expected: one of the pools "
            + new java.util.TreeSet<>(pools.keySet())
            + " or a model id they serve)");
  }

  @Override
  public void close() {
    executor.shutdownNow();
    try {
      requestGauges.close();
    } catch (Exception e) {
      log.debug("request gauges not unregistered: {}", e.toString());
    }
  }

  /** One Generate call. */
  private final class Generation {
    private final GenerateRequest request;
    private final ServerCallStreamObserver<GenerateChunk> call;
    private final String label;
    private final RequestTelemetry telemetry;
    private final Object readyLock = new Object();
    private final List<WorkerSession> sessions = new ArrayList<>(); // guarded by this
    private final List<WorkerPool.Backend> held = new ArrayList<>(); // guarded by this
    private volatile WorkerPool.Backend placedOn; // the target replica, counted in its load
    private volatile String cancelled; // why, once the client is gone

    Generation(
        GenerateRequest request,
        ServerCallStreamObserver<GenerateChunk> call,
        String label,
        RequestTelemetry telemetry) {
      this.request = request;
      this.call = call;
      this.label = label;
      this.telemetry = telemetry;
    }

    /** The client cancelled or its deadline passed: tear down both worker sessions. */
    void cancel(String why) {
      if (cancelled != null) {
        return;
      }
      cancelled = why;
      List<WorkerSession> open;
      synchronized (this) {
        open = List.copyOf(sessions);
      }
      for (WorkerSession s : open) {
        s.cancel("router request " + label + ": " + why);
      }
      ready();
    }

    void ready() {
      synchronized (readyLock) {
        readyLock.notifyAll();
      }
    }

    private synchronized WorkerSession startSession(WorkerPool.Backend b, String role) {
      if (cancelled != null) {
        throw Status.CANCELLED.withDescription(cancelled).asRuntimeException();
      }
      WorkerSession s = WorkerSession.start(b.channel(), role, b.address());
      sessions.add(s);
      return s;
    }

    /** Streams a chunk, waiting while the client's flow-control window is full. */
    private void send(GenerateChunk chunk) {
      synchronized (readyLock) {
        while (!call.isReady() && cancelled == null) {
          try {
            readyLock.wait(100);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
          }
        }
      }
      if (cancelled == null) {
        telemetry.chunk(chunk);
        call.onNext(chunk);
      }
    }

    void run() {
      try (io.opentelemetry.context.Scope traced = telemetry.makeCurrent()) {
        decode();
      } finally {
        if (placedOn != null) {
          placedOn.finished();
        }
        for (WorkerPool.Backend b : releaseAll()) {
          b.release();
        }
        telemetry.end(null, cancelled);
      }
    }

    /** The next backend of {@code pool}, held until this request ends (its channel stays open). */
    private WorkerPool.Backend acquire(WorkerPool pool) {
      WorkerPool.Backend b = pool.acquire();
      synchronized (this) {
        held.add(b);
      }
      return b;
    }

    /**
     * {@code chosen} held in place of {@code current} (held), or {@code current} when {@code
     * chosen} was retired meanwhile.
     */
    private WorkerPool.Backend moveTo(WorkerPool.Backend chosen, WorkerPool.Backend current) {
      if (chosen == current || !chosen.tryHold()) {
        return current;
      }
      synchronized (this) {
        held.add(chosen);
        held.remove(current);
      }
      current.release();
      return chosen;
    }

    private synchronized List<WorkerPool.Backend> releaseAll() {
      List<WorkerPool.Backend> all = List.copyOf(held);
      held.clear();
      return all;
    }

    private void decode() {
      try {
        DecodingStrategy decoding = prepare();
        decoding.run();
        List<java.util.concurrent.CompletableFuture<Void>> closing = new ArrayList<>();
        for (WorkerSession s : sessionsSnapshot()) {
          closing.add(s.close());
        }
        // Let the workers free the sessions before the call ends (which cancels its sub-calls).
        try {
          java.util.concurrent.CompletableFuture.allOf(
                  closing.toArray(new java.util.concurrent.CompletableFuture<?>[0]))
              .get(CLOSE_WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException
            | java.util.concurrent.TimeoutException e) {
          log.debug("request {}: sessions not confirmed closed: {}", label, e.toString());
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        if (cancelled == null) {
          call.onCompleted();
        }
      } catch (WorkerFailure e) {
        cancelAll("failed: " + e.getMessage());
        telemetry.end(e.toStatusException().getStatus(), cancelled);
        if (cancelled == null) {
          log.warn("request {}: {}", label, e.getMessage());
          call.onError(e.toStatusException());
        }
      } catch (RuntimeException e) {
        cancelAll("failed");
        telemetry.end(Statuses.toStatus(e), cancelled);
        if (cancelled == null) {
          call.onError(Statuses.toStatus(e).asRuntimeException());
        }
      }
    }

    private synchronized List<WorkerSession> sessionsSnapshot() {
      return List.copyOf(sessions);
    }

    private void cancelAll(String why) {
      for (WorkerSession s : sessionsSnapshot()) {
        s.cancel("router request " + label + " " + why);
      }
    }

    /** Resolves workers and tokenizer, validates against them and opens the sessions. */
    private DecodingStrategy prepare() {
      RunStats stats = new RunStats();
      stats.listener = telemetry;
      WorkerPool targetPool = resolve(request.getTarget(), config.defaultTarget(), "target");
      WorkerPool.Backend targetBackend = acquire(targetPool);
      ModelInfo targetInfo = targetBackend.info(INFO_TIMEOUT);
      stats.targetModel = targetInfo.getModelId();
      int vocab = targetInfo.getVocabSize();
      BpeTokenizer tokenizer = tokenizers.forHash(targetInfo.getTokenizerHash());

      int[] prompt;
      boolean textual = request.hasText() || request.hasParts();
      String field = request.hasParts() ? "parts" : request.hasText() ? "text" : "token_ids.ids";
      if (textual) {
        if (tokenizer == null) {
          throw Statuses.failedPrecondition(
              field
                  + ": the router has no tokenizer.json with the target's hash "
                  + targetInfo.getTokenizerHash()
                  + " (expected: start the router with --tokenizers covering model "
                  + targetInfo.getModelId()
                  + ", or send token_ids)");
        }
        long chars =
            request.hasParts()
                ? request.getParts().getPartsList().stream()
                    .mapToLong(part -> part.getText().length())
                    .sum()
                : request.getText().length();
        long maxChars = tokenizer.maxChars(targetInfo.getMaxContext());
        if (chars > maxChars) {
          throw Statuses.invalid(
              field
                  + ": "
                  + chars
                  + " characters (expected: at most "
                  + maxChars
                  + ", more cannot fit the target's max context of "
                  + targetInfo.getMaxContext()
                  + " tokens)");
        }
        try {
          prompt =
              request.hasParts()
                  ? encodeParts(tokenizer, request.getParts(), request.getAddSpecialTokens())
                  : tokenizer.encode(request.getText(), request.getAddSpecialTokens());
        } catch (UnsupportedOperationException e) {
          throw Statuses.failedPrecondition(
              field
                  + ": the router cannot tokenize for model "
                  + targetInfo.getModelId()
                  + ": "
                  + e.getMessage()
                  + " (expected: send token_ids)");
        }
        if (prompt.length == 0) {
          throw Statuses.invalid(field + ": encodes to no tokens (expected: a non-empty prompt)");
        }
      } else {
        prompt = request.getTokenIds().getIdsList().stream().mapToInt(Integer::intValue).toArray();
        for (int i = 0; i < prompt.length; i++) {
          if (prompt[i] >= vocab) {
            throw Statuses.invalid(
                "token_ids.ids[" + i + "]: " + prompt[i] + " (expected: 0.." + (vocab - 1) + ")");
          }
        }
      }
      if (prompt.length >= targetInfo.getMaxContext()) {
        throw Statuses.invalid(
            field
                + ": "
                + prompt.length
                + " tokens (expected: fewer than the target's max context "
                + targetInfo.getMaxContext()
                + ")");
      }
      Sampling s = request.getSampling();
      if (s.getTopK() > vocab) {
        throw Statuses.invalid(
            "sampling.top_k: " + s.getTopK() + " (expected: 0 for off, or 1.." + vocab + ")");
      }
      if (s.getStopCount() > 0 && tokenizer == null) {
        throw Statuses.failedPrecondition(
            "sampling.stop: the router has no tokenizer.json with the target's hash "
                + targetInfo.getTokenizerHash()
                + " to match text against (expected: --tokenizers covering model "
                + targetInfo.getModelId()
                + ")");
      }
      int maxTokens = s.getMaxTokens() == 0 ? config.defaultMaxTokens() : s.getMaxTokens();
      if (maxTokens > config.maxTokensLimit()) {
        throw Statuses.invalid(
            "sampling.max_tokens: "
                + maxTokens
                + " (expected: 0 for the default "
                + config.defaultMaxTokens()
                + ", or 1.."
                + config.maxTokensLimit()
                + ")");
      }

      Strategy strategy = request.getStrategy();
      if (strategy == Strategy.STRATEGY_UNSPECIFIED) {
        strategy =
            config.defaultDraft() != null
                ? Strategy.STRATEGY_SPECULATIVE
                : Strategy.STRATEGY_AUTOREGRESSIVE;
      }
      stats.strategy = strategy;
      int opLimit = Math.max(1, targetInfo.getMaxTokensPerOp());

      WorkerPool.Backend draftBackend = null;
      ModelInfo draftInfo = null;
      // SpecPC asks its draft for a prompt selection only (specPc below) and opens no draft
      // session.
      // SpecKV's draft writes its answer before the target opens (specKvAnswer below).
      Drafter drafter =
          strategy == Strategy.STRATEGY_SPECULATIVE
              ? request.getSpeculative().getDrafter()
              : Drafter.DRAFTER_CHAIN;
      // Token Recycling and lookahead draft in the router: no draft worker.
      boolean modelFree =
          drafter == Drafter.DRAFTER_TOKEN_RECYCLING || drafter == Drafter.DRAFTER_LOOKAHEAD;
      boolean twoModels =
          strategy != Strategy.STRATEGY_AUTOREGRESSIVE
              && strategy != Strategy.STRATEGY_NGRAM
              && strategy != Strategy.STRATEGY_SPECPC
              && strategy != Strategy.STRATEGY_SPECKV
              && !modelFree;
      if (twoModels) {
        WorkerPool draftPool = resolve(request.getDraft(), config.defaultDraft(), "draft");
        draftBackend = acquire(draftPool);
        try {
          draftInfo = draftBackend.info(INFO_TIMEOUT);
        } catch (StatusRuntimeException unreachable) {
          // The helper (draft, aligned, small model) is an accelerator, never a dependency.
          stats.fallback = true;
          stats.fallbackReason = unreachable.getStatus().getDescription();
          log.warn("request {}: no {}: {}", label, "draft", stats.fallbackReason);
          draftBackend = null;
        }
        // Nudging exchanges text: any tokenizer works. The others exchange token ids.
        if (draftInfo != null && strategy != Strategy.STRATEGY_NUDGING) {
          if (!draftInfo.getTokenizerHash().equals(targetInfo.getTokenizerHash())) {
            throw Statuses.failedPrecondition(
                "draft: model "
                    + draftInfo.getModelId()
                    + " has tokenizer "
                    + draftInfo.getTokenizerHash()
                    + " but target "
                    + targetInfo.getModelId()
                    + " has "
                    + targetInfo.getTokenizerHash()
                    + " (expected: the same tokenizer.json)");
          }
          if (draftInfo.getVocabSize() != vocab) {
            throw Statuses.failedPrecondition(
                "draft: model "
                    + draftInfo.getModelId()
                    + " has vocab size "
                    + draftInfo.getVocabSize()
                    + " but target "
                    + targetInfo.getModelId()
                    + " has "
                    + vocab
                    + " (expected: equal)");
          }
          opLimit = Math.min(opLimit, Math.max(1, draftInfo.getMaxTokensPerOp()));
        }
        if (draftInfo != null) {
          stats.draftModel = draftInfo.getModelId();
          stats.smallParameters = draftInfo.getNumParameters();
        }
        stats.largeParameters = targetInfo.getNumParameters();
      }
      int[] targetPrompt = prompt;
      if (strategy == Strategy.STRATEGY_SPECPC
          || (strategy == Strategy.STRATEGY_SPECKV && specKvPc(request))) {
        targetPrompt = specPc(prompt, targetInfo, stats); // SpecKV-PC's first stage
      }
      KvCompression compression = null;
      int[] answer = new int[0];
      if (strategy == Strategy.STRATEGY_SPECKV) {
        answer = specKvAnswer(prompt, targetPrompt.length, targetInfo, maxTokens, stats);
        if (answer != null) {
          compression =
              SpecKvStrategy.compression(
                  request.getKvCompression(), SpecKvStrategy.SPECKV, answer.length);
        } else {
          answer = new int[0];
          stats.kvCompression =
              SpecKvStrategy.uncompressed(
                  targetPrompt.length,
                  SpecKvStrategy.compression(request.getKvCompression(), SpecKvStrategy.SPECKV, 0)
                      .getBudget());
        }
      } else if (request.hasKvCompression()) {
        SpecKvStrategy.checkPrefix(request.getKvCompression(), targetPrompt.length);
        compression =
            SpecKvStrategy.compression(
                request.getKvCompression(), request.getKvCompression().getMethod(), 0);
      }
      SpeculativeOptions sp = request.getSpeculative();
      int k = sp.getK() == 0 ? Math.min(DEFAULT_K, opLimit) : sp.getK();
      if (k > opLimit) {
        throw Statuses.invalid(
            "speculative.k: "
                + k
                + " (expected: 0 for "
                + DEFAULT_K
                + ", or 1.."
                + opLimit
                + ", the workers' max_tokens_per_op)");
      }
      int maxK = Math.min(sp.getMaxK() == 0 ? Math.max(DEFAULT_MAX_K, k) : sp.getMaxK(), opLimit);
      int treeNodes =
          sp.getTreeNodes() == 0 ? Math.min(DEFAULT_TREE_NODES, opLimit) : sp.getTreeNodes();
      if (treeNodes > opLimit) {
        throw Statuses.invalid(
            "speculative.tree_nodes: "
                + treeNodes
                + " (expected: 0 for "
                + DEFAULT_TREE_NODES
                + ", or 1.."
                + opLimit
                + ", the workers' max_tokens_per_op)");
      }
      if (drafter != Drafter.DRAFTER_CHAIN) {
        stats.drafter = drafter;
        stats.treeNodes = treeNodes;
      }
      NgramOptions ng = request.getNgram();
      int ngramN = ng.getN() == 0 ? DEFAULT_NGRAM_N : ng.getN();
      int ngramMinN = ng.getMinN() == 0 ? Math.min(DEFAULT_NGRAM_MIN_N, ngramN) : ng.getMinN();
      int maxMatch = ng.getMaxMatch() == 0 ? DEFAULT_NGRAM_MAX_MATCH : ng.getMaxMatch();

      long seed = s.hasSeed() ? s.getSeed() : ThreadLocalRandom.current().nextLong();
      SamplingParams.Builder sampling =
          SamplingParams.newBuilder()
              .setTemperature(s.getTemperature())
              .setTopK(s.getTopK())
              .setTopP(s.getTopP())
              .setMinP(s.getMinP());
      SamplingParams targetSampling = sampling.setSeed(seed).build();
      // Same transforms, but never the same random stream: a draft drawing the same uniforms
      // the target uses to accept would correlate proposals with acceptance and bias the output.
      SamplingParams draftSampling = sampling.setSeed(mix(seed)).build();

      DecodingPlan.Nudging nudging = null;
      BpeTokenizer alignedTokenizer = null;
      if (strategy == Strategy.STRATEGY_NUDGING) {
        if (tokenizer == null) {
          throw Statuses.failedPrecondition(
              "target: the router has no tokenizer.json with the base model's hash "
                  + targetInfo.getTokenizerHash()
                  + " (expected: --tokenizers covering model "
                  + targetInfo.getModelId()
                  + "; nudging exchanges text)");
        }
        int[] alignedPrompt = new int[0];
        if (draftInfo != null) {
          alignedTokenizer = tokenizers.forHash(draftInfo.getTokenizerHash());
          if (alignedTokenizer == null || alignedTokenizer.encodeUnsupported() != null) {
            throw Statuses.failedPrecondition(
                "draft: the router cannot tokenize for aligned model "
                    + draftInfo.getModelId()
                    + " (tokenizer "
                    + draftInfo.getTokenizerHash()
                    + ") (expected: --tokenizers covering it; nudging exchanges text)");
          }
          alignedPrompt =
              alignedTokenizer.encode(
                  request.getNudging().getAlignedPrompt(), request.getAddSpecialTokens());
          if (request.getNudging().getAlignedParts().getPartsCount() > 0) {
            alignedPrompt =
                encodeParts(
                    alignedTokenizer,
                    request.getNudging().getAlignedParts(),
                    request.getAddSpecialTokens());
          }
          if (alignedPrompt.length == 0 || alignedPrompt.length >= draftInfo.getMaxContext()) {
            throw Statuses.invalid(
                "nudging.aligned_prompt: "
                    + alignedPrompt.length
                    + " tokens (expected: 1.."
                    + (draftInfo.getMaxContext() - 1)
                    + ", the aligned model's max context)");
          }
        }
        NudgingOptions nu = request.getNudging();
        float gamma = nu.getGamma() == 0f ? NudgingRule.DEFAULT_GAMMA : nu.getGamma();
        int chunk =
            nu.getChunkTokens() == 0 ? NudgingRule.DEFAULT_CHUNK_TOKENS : nu.getChunkTokens();
        nudging = new DecodingPlan.Nudging(alignedPrompt, gamma, chunk);
        stats.gamma = gamma;
      }
      EntropySwitchOptions es = request.getEntropySwitch();
      int window = es.hasWindow() ? es.getWindow() : EntropySwitchRule.DEFAULT_WINDOW;
      LeadInOptions li = request.getLeadIn();
      DecodingPlan.Switching switching =
          new DecodingPlan.Switching(
              es.hasTau() ? es.getTau() : EntropySwitchRule.DEFAULT_TAU,
              window,
              es.hasMinRun() ? es.getMinRun() : window,
              li.hasN() ? li.getN() : LeadInRule.DEFAULT_N,
              li.getSentenceEnd().isEmpty()
                  ? LeadInRule.DEFAULT_SENTENCE_END
                  : li.getSentenceEnd());
      if (strategy == Strategy.STRATEGY_ENTROPY_SWITCH) {
        stats.tau = switching.tau();
        stats.window = switching.window();
      }

      DecodingPlan plan =
          new DecodingPlan(
              strategy,
              targetPrompt,
              targetSampling,
              draftSampling,
              k,
              sp.getAdaptive(),
              maxK,
              sp.getMinDraftTokenProb(),
              sp.getDraftAhead(),
              ngramN,
              ngramMinN,
              maxMatch,
              nudging,
              switching,
              drafter,
              treeNodes,
              label,
              compression,
              answer);
      TokenStream out =
          new TokenStream(
              this::send,
              tokenizer,
              s.getStopList(),
              maxTokens,
              targetInfo.getEosTokenId(),
              request.getIgnoreEos(),
              prompt.length,
              stats);
      DecodingPlan.Settings settings =
          new DecodingPlan.Settings(
              config.targetTimeout(), config.draftTimeout(), config.autoregressiveChunk());
      // The replica the target session runs on, for the whole request: with a kvcache index, the
      // one that holds most of the prompt's prefix, weighed against its load.
      if (placement != null) {
        targetBackend =
            moveTo(placement.choose(targetPool, prompt, targetInfo, targetBackend), targetBackend);
      }
      targetBackend.started();
      placedOn = targetBackend;
      WorkerSession target = startSession(targetBackend, "target");
      WorkerSession draft = draftBackend == null ? null : startSession(draftBackend, "draft");
      if (strategy == Strategy.STRATEGY_SPECULATIVE && drafter != Drafter.DRAFTER_CHAIN) {
        TokenRecyclingTable recycling =
            drafter == Drafter.DRAFTER_TOKEN_RECYCLING
                ? recyclingTables.computeIfAbsent(
                    TokenRecyclingTable.key(targetInfo),
                    key -> new TokenRecyclingTable(targetInfo.getVocabSize()))
                : null;
        return treeDecoding(
            plan,
            settings,
            target,
            targetInfo,
            draft,
            draftInfo,
            out,
            stats,
            targetSampling,
            recycling);
      }
      return switch (strategy) {
        case STRATEGY_SPECULATIVE ->
            new SpeculativeDecoding(
                plan,
                settings,
                new TargetLoop(plan, settings, target, targetInfo, out, stats),
                draft,
                draftInfo,
                out,
                stats);
        case STRATEGY_NGRAM ->
            new NgramDecoding(
                plan, new TargetLoop(plan, settings, target, targetInfo, out, stats), out, stats);
        case STRATEGY_NUDGING ->
            new NudgingDecoding(
                plan,
                settings,
                target,
                targetInfo,
                tokenizer,
                draft,
                draftInfo,
                alignedTokenizer,
                out,
                stats);
        case STRATEGY_ENTROPY_SWITCH ->
            new SpanSwitchDecoding(
                plan,
                settings,
                new EntropySwitchRule(switching.tau(), switching.window(), switching.minRun()),
                target,
                targetInfo,
                draft,
                draftInfo,
                tokenizer,
                out,
                stats);
        case STRATEGY_LEAD_IN ->
            new SpanSwitchDecoding(
                plan,
                settings,
                new LeadInRule(switching.leadIn(), switching.sentenceEnd()),
                target,
                targetInfo,
                draft,
                draftInfo,
                tokenizer,
                out,
                stats);
        default ->
            new AutoregressiveDecoding(
                new TargetLoop(plan, settings, target, targetInfo, out, stats));
      };
    }

    /**
     * STRATEGY_SPECKV: the draft's greedy answer, which the target prefills after its prompt and
     * scores the prompt's KV with; empty when the budget covers the prompt (nothing to drop), null
     * when the draft could not write it (the reason is in stats).
     */
    private int[] specKvAnswer(
        int[] prompt, int targetPromptLength, ModelInfo targetInfo, int maxTokens, RunStats stats) {
      if (request.getDraft().isEmpty() && config.defaultDraft() == null) {
        throw Statuses.invalid(
            "draft: none given and the router has no default draft pool (expected: a draft pool"
                + " for STRATEGY_SPECKV, whose answer scores the prompt's KV)");
      }
      KvCompression defaults =
          SpecKvStrategy.compression(request.getKvCompression(), SpecKvStrategy.SPECKV, 0);
      if (targetPromptLength <= defaults.getBudget()) {
        return new int[0];
      }
      WorkerPool.Backend backend =
          acquire(resolve(request.getDraft(), config.defaultDraft(), "draft"));
      ModelInfo info;
      try {
        info = backend.info(INFO_TIMEOUT);
      } catch (StatusRuntimeException unreachable) {
        stats.fallback = true;
        stats.fallbackReason = unreachable.getStatus().getDescription();
        log.warn("request {}: no draft for SpecKV: {}", label, stats.fallbackReason);
        return null;
      }
      if (!info.getTokenizerHash().equals(targetInfo.getTokenizerHash())) {
        throw Statuses.failedPrecondition(
            "draft: model "
                + info.getModelId()
                + " has tokenizer "
                + info.getTokenizerHash()
                + " but target "
                + targetInfo.getModelId()
                + " has "
                + targetInfo.getTokenizerHash()
                + " (expected: the same tokenizer.json)");
      }
      stats.draftModel = info.getModelId();
      int asked = request.getKvCompression().getAnswerTokens();
      int n = asked == 0 ? maxTokens : asked;
      // The draft holds prompt ⊕ answer, and so does the target's prefill.
      n = Math.min(n, info.getMaxContext() - prompt.length);
      n = Math.min(n, targetInfo.getMaxContext() - 1 - targetPromptLength);
      if (n < 1) {
        stats.fallback = true;
        stats.fallbackReason = "no room for a draft answer in the models' max context";
        return null;
      }
      WorkerSession draft = startSession(backend, "draft");
      return SpecKvStrategy.draftAnswer(
          prompt, n, draft, info, config.draftTimeout(), label, stats);
    }

    /** STRATEGY_SPECPC: the draft picks the prompt tokens the target reads. */
    private int[] specPc(int[] prompt, ModelInfo targetInfo, RunStats stats) {
      SpecPcStrategy.requireDraft(request, config.defaultDraft());
      SpecPcStrategy.Settings settings =
          SpecPcStrategy.settings(request.getSpecPc(), prompt.length);
      WorkerPool.Backend backend =
          acquire(resolve(request.getDraft(), config.defaultDraft(), "draft"));
      ModelInfo info = null;
      try {
        info = backend.info(INFO_TIMEOUT);
      } catch (StatusRuntimeException unreachable) {
        stats.fallback = true;
        stats.fallbackReason = unreachable.getStatus().getDescription();
        log.warn("request {}: no draft for SpecPC: {}", label, stats.fallbackReason);
      }
      return SpecPcStrategy.compress(
          prompt, settings, backend, info, targetInfo, config.targetTimeout(), label, stats);
    }
  }

  /** STRATEGY_SPECKV is SpecKV-PC when spec_pc gives a budget (an empty spec_pc is no request). */
  static boolean specKvPc(GenerateRequest r) {
    return r.getSpecPc().getBudgetTokens() > 0 || r.getSpecPc().getBudgetRatio() > 0f;
  }

  /** The parts concatenated, with added-token matching off inside the literal ones. */
  static int[] encodeParts(BpeTokenizer tokenizer, TextParts parts, boolean addSpecialTokens) {
    StringBuilder text = new StringBuilder();
    int[] literals = new int[2 * parts.getPartsCount()];
    int n = 0;
    for (TextPart part : parts.getPartsList()) {
      if (part.getLiteral() && !part.getText().isEmpty()) {
        if (n > 0 && literals[n - 1] == text.length()) {
          literals[n - 1] += part.getText().length(); // adjacent literal parts: one range
        } else {
          literals[n++] = text.length();
          literals[n++] = text.length() + part.getText().length();
        }
      }
      text.append(part.getText());
    }
    return tokenizer.encode(text.toString(), Arrays.copyOf(literals, n), addSpecialTokens);
  }

  /** SPECULATIVE with a tree drafter: the drafter and, for DySpec and RSD, its draft session. */
  private static DecodingStrategy treeDecoding(
      DecodingPlan plan,
      DecodingPlan.Settings settings,
      WorkerSession target,
      ModelInfo targetInfo,
      WorkerSession draft,
      ModelInfo draftInfo,
      TokenStream out,
      RunStats stats,
      SamplingParams targetSampling,
      TokenRecyclingTable recycling) {
    TargetLoop loop = new TargetLoop(plan, settings, target, targetInfo, out, stats);
    int vocab = targetInfo.getVocabSize();
    // The drafter's own draws (children without replacement) take a stream of their own.
    RandomGenerator rng = new SplittableRandom(mix(mix(targetSampling.getSeed())));
    TreeDrafter drafter = null;
    Runnable openDraft = () -> {};
    switch (plan.drafter()) {
      case DRAFTER_TOKEN_RECYCLING -> drafter = new TokenRecyclingDrafter(recycling, plan.greedy());
      case DRAFTER_LOOKAHEAD -> drafter = new LookaheadDrafter(plan.greedy());
      default -> {
        if (draft != null && draftInfo != null) {
          int topK = plan.greedy() ? Math.min(DySpecDrafter.MAX_CHILDREN, plan.treeNodes()) : 0;
          DraftModelTree model =
              new DraftModelTree(
                  draft,
                  settings.draftTimeout(),
                  Math.max(1, draftInfo.getMaxTokensPerOp()),
                  plan.prompt().length,
                  topK,
                  vocab);
          drafter =
              plan.drafter() == Drafter.DRAFTER_RSD
                  ? new RsdDrafter(model, plan.greedy(), rng)
                  : new DySpecDrafter(model, plan.greedy(), rng);
          openDraft = () -> draft.send(TargetLoop.open(plan, plan.prompt(), plan.draftSampling()));
        }
      }
    }
    return new TreeDecoding(plan, loop, drafter, openDraft, out, stats);
  }

  /** SplitMix64's finalizer over a golden-ratio offset: a seed unrelated to {@code seed}. */
  static long mix(long seed) {
    long z = seed + 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
