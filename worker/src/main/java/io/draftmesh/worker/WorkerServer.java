package io.draftmesh.worker;

import io.draftmesh.engine.runtime.EngineInfo;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.serving.Drain;
import io.draftmesh.serving.ServiceHealth;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.IOException;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A model worker's lifecycle: the gRPC server (ModelWorker, health, reflection, tracing), the
 * engine loaded in the background, and graceful drain.
 *
 * <ol>
 *   <li>{@link #start()} binds the server at once with health NOT_SERVING, then loads the engine
 *       and runs its warm-up on a background thread; meanwhile ModelWorker calls get UNAVAILABLE.
 *   <li>Once warm, health turns SERVING (overall and for {@code draftmesh.v1.ModelWorker}).
 *   <li>{@link #close()} drains: health NOT_SERVING, new calls refused, open sessions get the grace
 *       period to finish, then are cancelled (which frees their KV), then the engine closes.
 * </ol>
 *
 * <p>Takes a {@link ServerBuilder} so tests can run it in-process; {@link #onPort} builds the
 * production (Netty) one.
 */
public final class WorkerServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(WorkerServer.class);

  /** How long a session may sit idle unless configured otherwise (WorkerConfig's default). */
  public static final Duration DEFAULT_SESSION_IDLE = Duration.ofMinutes(5);

  /** The service name health is reported under, besides the overall "" service. */
  public static final String SERVICE_NAME = "draftmesh.v1.ModelWorker";

  private final Server server;
  private final ServiceHealth health = new ServiceHealth(SERVICE_NAME);
  private final WorkerState state = new WorkerState();
  private final Supplier<InferenceEngine> loader;
  private final Duration drainGrace;
  private final KvCacheLink.Settings kvcacheSettings; // null: no kvcache
  private final OpenTelemetry openTelemetry;
  private final ExecutorService responses;
  // SelectPromptTokens reads: one at a time (each is a whole prefill), a few queued.
  private final java.util.concurrent.ThreadPoolExecutor probes;
  private final java.util.concurrent.ScheduledExecutorService timers; // sessions' idle timers
  private final CompletableFuture<InferenceEngine> ready = new CompletableFuture<>();
  private final io.draftmesh.telemetry.WorkerMetrics metrics;
  private final Object lifecycle = new Object();
  private Thread loading; // guarded by lifecycle
  private boolean started; // guarded by lifecycle
  private boolean closed; // guarded by lifecycle

  /**
   * @param loader loads the engine (blocking, on a background thread); {@link #start} runs its
   *     warm-up afterwards
   */
  public WorkerServer(
      ServerBuilder<?> builder,
      WorkerConfig.Role role,
      Supplier<InferenceEngine> loader,
      Duration drainGrace,
      OpenTelemetry openTelemetry) {
    this(builder, role, loader, drainGrace, DEFAULT_SESSION_IDLE, openTelemetry);
  }

  /**
   * @param loader loads the engine (blocking, on a background thread); {@link #start} runs its
   *     warm-up afterwards
   * @param sessionIdle how long a session may go without a request while no op runs before it is
   *     ended with DEADLINE_EXCEEDED (and freed); zero = never
   */
  public WorkerServer(
      ServerBuilder<?> builder,
      WorkerConfig.Role role,
      Supplier<InferenceEngine> loader,
      Duration drainGrace,
      Duration sessionIdle,
      OpenTelemetry openTelemetry) {
    this(builder, role, loader, drainGrace, sessionIdle, null, openTelemetry);
  }

  /**
   * @param loader loads the engine (blocking, on a background thread); {@link #start} runs its
   *     warm-up afterwards
   * @param sessionIdle how long a session may go without a request while no op runs before it is
   *     ended with DEADLINE_EXCEEDED (and freed); zero = never
   * @param kvcache the kvcache-service to reuse and publish prompt KV through; null = none
   */
  public WorkerServer(
      ServerBuilder<?> builder,
      WorkerConfig.Role role,
      Supplier<InferenceEngine> loader,
      Duration drainGrace,
      Duration sessionIdle,
      KvCacheLink.Settings kvcache,
      OpenTelemetry openTelemetry) {
    this.loader = Objects.requireNonNull(loader, "loader");
    this.kvcacheSettings = kvcache;
    this.openTelemetry = openTelemetry;
    this.drainGrace = Objects.requireNonNull(drainGrace, "drainGrace");
    this.responses = Executors.newFixedThreadPool(2, daemonThreads("worker-responses-"));
    this.probes =
        new java.util.concurrent.ThreadPoolExecutor(
            1,
            1,
            0,
            TimeUnit.SECONDS,
            new java.util.concurrent.ArrayBlockingQueue<>(8),
            daemonThreads("worker-prompt-reader-"));
    java.util.concurrent.ScheduledThreadPoolExecutor t =
        new java.util.concurrent.ScheduledThreadPoolExecutor(1, daemonThreads("worker-idle-"));
    t.setRemoveOnCancelPolicy(true); // a session's timer is cancelled at every request
    this.timers = t;
    this.server =
        builder
            .addService(
                new ModelWorkerService(
                    state, role, responses, probes, new SessionCall.IdleTimer(timers, sessionIdle)))
            .addServices(health.services()) // health, reflection v1 and v1alpha
            .intercept(GrpcTelemetry.create(openTelemetry).createServerInterceptor())
            .build();
    this.metrics =
        io.draftmesh.telemetry.WorkerMetrics.register(openTelemetry, role.id(), this::snapshot);
  }

  /**
   * What the metrics report: the engine's sessions, KV blocks and steps, and the kvcache link's
   * counters; null until loaded.
   */
  private io.draftmesh.telemetry.WorkerMetrics.Snapshot snapshot() {
    InferenceEngine e = engine();
    if (e == null) {
      return null;
    }
    EngineInfo i = e.info();
    KvCacheLink link = kvcache();
    return new io.draftmesh.telemetry.WorkerMetrics.Snapshot(
        i.modelId(),
        i.activeSessions(),
        i.kvBlocksTotal() - i.kvBlocksFree(),
        i.kvBlocksFree(),
        e.steps(),
        link == null ? null : linkCounters(link.stats()));
  }

  private static io.draftmesh.telemetry.WorkerMetrics.KvCacheLink linkCounters(
      KvCacheLink.Stats s) {
    return new io.draftmesh.telemetry.WorkerMetrics.KvCacheLink(
        s.fetchedBlocks(),
        s.fetchMisses(),
        s.garbageBlocks(),
        s.publishedBlocks(),
        s.droppedBlocks(),
        s.failedPuts(),
        s.clientFailures(),
        s.restoredCompacted(),
        s.compactedMisses(),
        s.garbageCompacted(),
        s.storedCompacted());
  }

  /** A worker for {@code config} on a real (Netty) port. */
  public static WorkerServer onPort(WorkerConfig config, OpenTelemetry openTelemetry) {
    ServerBuilder<?> builder =
        Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create())
            // A caller that vanished without closing its connection (no FIN, no deadline) is
            // noticed by an unanswered ping; its calls are cancelled, which frees their KV.
            .keepAliveTime(config.keepAlive().toMillis(), TimeUnit.MILLISECONDS)
            .keepAliveTimeout(config.keepAliveTimeout().toMillis(), TimeUnit.MILLISECONDS)
            // Callers ping too (the router's channels); allow it down to 10 s, with or without
            // calls, rather than closing their connections for "too many pings".
            .permitKeepAliveTime(10, TimeUnit.SECONDS)
            .permitKeepAliveWithoutCalls(true)
            // A session's requests are parsed and handed to the engine's scheduler on the
            // transport thread that read them (nothing here blocks): a hop through an executor
            // cost a speculative round two thread wake-ups, each up to ~0.1-0.5 ms on 2 cores.
            .directExecutor();
    return new WorkerServer(
        builder,
        config.role(),
        engineLoader(config),
        config.drainGrace(),
        config.sessionIdle(),
        config.kvcache(),
        openTelemetry);
  }

  /**
   * Loads the engine {@code config} describes, first setting the PyTorch thread count (which DJL
   * reads once, when its engine starts).
   */
  public static Supplier<InferenceEngine> engineLoader(WorkerConfig config) {
    return () -> {
      if (config.threads() > 0) {
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(config.threads()));
      }
      InferenceEngine engine = InferenceEngine.load(config.engineConfig());
      engine.prefixCache().enabled(config.prefixCache());
      return engine;
    };
  }

  /** Binds the server and starts loading the model in the background. */
  public WorkerServer start() throws IOException {
    synchronized (lifecycle) {
      if (started) {
        throw new IllegalStateException("already started");
      }
      started = true;
      server.start();
      loading = new Thread(this::load, "worker-load");
      loading.setDaemon(true);
      loading.start();
    }
    return this;
  }

  private void load() {
    InferenceEngine engine = null;
    KvCacheLink kv = null;
    try {
      engine = loader.get();
      engine.warmUp();
      // After the warm-up (whose few tokens fill no block), before any session: the link seeds
      // the prefix cache with the model's fingerprint.
      kv =
          kvcacheSettings == null
              ? null
              : KvCacheLink.start(engine, kvcacheSettings, server.getPort(), openTelemetry);
      WorkerState.Loaded loaded = describe(engine, kv);
      synchronized (lifecycle) {
        if (closed) {
          if (kv != null) {
            kv.close();
          }
          engine.close();
          ready.completeExceptionally(new IllegalStateException("worker closed while warming up"));
          return;
        }
        state.serving(loaded);
        health.serving();
      }
      engine.failure().thenAccept(this::engineFailed);
      ready.complete(engine);
    } catch (RuntimeException | Error e) {
      log.error("model failed to load", e);
      state.moveTo(WorkerState.Phase.FAILED);
      if (kv != null) {
        kv.close();
      }
      if (engine != null) {
        engine.close();
      }
      ready.completeExceptionally(e);
    }
  }

  /**
   * The engine's scheduler died of an Error: its sessions were failed with UNAVAILABLE and freed.
   * The worker cannot serve again without a restart, so health says NOT_SERVING (Kubernetes'
   * liveness probe restarts the pod, the router stops picking it) and every call is UNAVAILABLE.
   */
  private void engineFailed(Throwable error) {
    log.error("engine failed; the worker is NOT_SERVING until restarted", error);
    synchronized (lifecycle) {
      if (closed) {
        return;
      }
      state.moveTo(WorkerState.Phase.BROKEN);
      health.notServing();
    }
  }

  private static WorkerState.Loaded describe(InferenceEngine engine, KvCacheLink kv) {
    EngineInfo info = engine.info();
    return new WorkerState.Loaded(engine, info.dtype(), info.device(), kv);
  }

  /** Completes with the engine once it is loaded and warm; fails if loading failed. */
  public CompletableFuture<InferenceEngine> ready() {
    return ready;
  }

  /** Waits for {@link #ready()}; throws if loading failed or took longer than {@code timeout}. */
  public InferenceEngine awaitReady(Duration timeout) throws InterruptedException {
    try {
      return ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw new IllegalStateException("model failed to load: " + e.getCause().getMessage(), e);
    } catch (TimeoutException e) {
      throw new IllegalStateException("model not ready after " + timeout, e);
    }
  }

  /** The port the server listens on (-1 for in-process servers). */
  public int port() {
    return server.getPort();
  }

  /** The engine once serving, else null. */
  public InferenceEngine engine() {
    WorkerState.Loaded l = state.loaded();
    return l == null ? null : l.engine();
  }

  /** The link to kvcache-service once serving with one, else null. */
  public KvCacheLink kvcache() {
    WorkerState.Loaded l = state.loaded();
    return l == null ? null : l.kvcache();
  }

  /** Blocks until the server has terminated (after {@link #close()}, from another thread). */
  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /** Drains and stops: see the class comment. Idempotent. */
  @Override
  public void close() {
    synchronized (lifecycle) {
      if (closed) {
        return;
      }
      closed = true;
      if (state.phase() != WorkerState.Phase.FAILED && state.phase() != WorkerState.Phase.BROKEN) {
        state.moveTo(WorkerState.Phase.DRAINING);
      }
      health.terminal(); // NOT_SERVING for every service, and stays so
    }
    Drain.stop(
        server,
        drainGrace,
        () -> log.info("drain grace of {} over; cancelling open sessions", drainGrace));
    responses.shutdown();
    probes.shutdown(); // a prompt read uses the model: let it end before the engine closes
    timers.shutdownNow();
    try {
      responses.awaitTermination(5, TimeUnit.SECONDS);
      probes.awaitTermination(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    metrics.close();
    state.moveTo(WorkerState.Phase.STOPPED);
    WorkerState.Loaded l = state.loaded();
    if (l != null) {
      if (l.kvcache() != null) {
        l.kvcache().close(); // stops publishing before the pool goes
      }
      l.engine().close();
    }
  }

  private static java.util.concurrent.ThreadFactory daemonThreads(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
