package io.draftmesh.gateway;

import io.draftmesh.flags.Keepalive;
import io.draftmesh.serving.Drain;
import io.draftmesh.serving.Keepalives;
import io.draftmesh.serving.ServiceHealth;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.ServerInterceptors;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's lifecycle: the public gRPC server (Generation behind API-key auth, health,
 * reflection, tracing), the HTTP server (OpenAI-compatible API and playground), and the channel to
 * the router.
 *
 * <p>Health is SERVING once both servers are bound: the gateway holds no model, and an unreachable
 * router is a per-request UNAVAILABLE (HTTP 503), not a gateway fault. {@link #close()} turns
 * health NOT_SERVING, stops accepting, gives running requests the drain grace, then cancels them
 * (which cancels their router calls) and closes the channel.
 *
 * <p>Takes the gRPC {@link ServerBuilder} and the HTTP address, so tests bind port 0 (or run gRPC
 * in-process); {@link #create} builds the production servers from a config.
 */
public final class GatewayServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(GatewayServer.class);

  /** The service name health is reported under, besides the overall "" service. */
  public static final String SERVICE_NAME = "draftmesh.v1.Generation";

  /** HTTP threads beyond the admitted completions: for refusals and the short requests. */
  private static final int SPARE_HTTP_THREADS = 4;

  /** Requests the HTTP pool's queue holds while all its threads are busy. */
  private static final int POOL_QUEUE = 128;

  /** The ports the servers are bound to (gRPC -1 for an in-process server). */
  public record Ports(int grpc, int http) {}

  private final GatewayConfig config;
  private final Server grpc;
  private final NettyHttpServer http;
  private final HttpApi httpApi;
  private final HttpAdmission admission;
  private final ManagedChannel routerChannel;
  private final ServiceHealth health = new ServiceHealth(SERVICE_NAME);
  private final ExecutorService httpExecutor;
  private final ScheduledExecutorService scheduler;
  private final Object lifecycle = new Object();
  private boolean started; // guarded by lifecycle
  private boolean closed; // guarded by lifecycle

  /**
   * @param grpcBuilder the public gRPC server (port from the builder; the config's is ignored)
   * @param httpAddress where HTTP binds (port 0 picks one)
   * @param routerChannel the channel to the router; closed with the gateway
   */
  public GatewayServer(
      ServerBuilder<?> grpcBuilder,
      InetSocketAddress httpAddress,
      ManagedChannel routerChannel,
      GatewayConfig config,
      OpenTelemetry otel)
      throws IOException {
    this.config = config;
    this.routerChannel = routerChannel;
    Catalog catalog = new Catalog(config.servedModels(), System.currentTimeMillis() / 1000);
    ApiKeys keys = new ApiKeys(config.apiKeys());
    KeyLimits limits = KeyLimits.of(config);
    RouterClient router =
        new RouterClient(routerChannel, config.upstreamTimeout(), catalog, config.maxTokensLimit());
    this.grpc =
        grpcBuilder
            .addService(
                ServerInterceptors.intercept(
                    new GenerationService(router, limits, catalog), new AuthInterceptor(keys)))
            .addServices(health.services()) // health, reflection v1 and v1alpha
            .intercept(GrpcTelemetry.create(otel).createServerInterceptor())
            .build();
    this.scheduler = new ScheduledThreadPoolExecutor(1, daemonThreads("gateway-sse-heartbeat-"));
    // Completions are bounded by HttpAdmission (served + waiting); the pool has SPARE_HTTP_THREADS
    // more, so refusals and short requests (health, models, playground) never wait behind
    // streams. Its queue only takes bursts of those; past it the executor rejects and the
    // transport answers 503 from its event loop, the last resort of a flood. (Connections, and
    // requests whose headers are still arriving, hold no thread at all: NettyHttpServer.)
    this.admission = new HttpAdmission(config.httpThreads(), config.httpQueue());
    int poolThreads = config.httpThreads() + config.httpQueue() + SPARE_HTTP_THREADS;
    this.httpExecutor =
        new ThreadPoolExecutor(
            poolThreads,
            poolThreads,
            60,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(POOL_QUEUE),
            daemonThreads("gateway-http-"));
    ((ThreadPoolExecutor) httpExecutor).allowCoreThreadTimeOut(true);
    this.httpApi =
        new HttpApi(
            config,
            keys,
            limits,
            admission,
            catalog,
            router,
            scheduler,
            new io.draftmesh.telemetry.HttpServerTracing(otel));
    this.http = new NettyHttpServer(httpAddress, config, httpExecutor, httpApi);
  }

  /** A gateway for {@code config}: Netty gRPC and HTTP on the configured host and ports. */
  public static GatewayServer create(GatewayConfig config, OpenTelemetry otel) throws IOException {
    ServerBuilder<?> grpc =
        Grpc.newServerBuilderForPort(config.grpcPort(), InsecureServerCredentials.create());
    if (!config.host().equals("0.0.0.0")) {
      grpc =
          io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder.forAddress(
              new InetSocketAddress(config.host(), config.grpcPort()),
              InsecureServerCredentials.create());
    }
    // A public client that vanished without closing its connection is noticed by an unanswered
    // ping; its call is cancelled, and with it the router call and the worker sessions.
    return new GatewayServer(
        Keepalives.server(grpc, config.keepalive()),
        new InetSocketAddress(config.host(), config.httpPort()),
        routerChannel(config.router(), config.keepalive(), otel),
        config,
        otel);
  }

  /**
   * A plaintext channel to the router: a target with a scheme (e.g. {@code dns:///router:50051})
   * balances round-robin over every address it resolves to.
   */
  static ManagedChannel routerChannel(String target, Keepalive keepalive, OpenTelemetry otel) {
    // A router that vanished mid-generation fails the call after an unanswered ping.
    ManagedChannelBuilder<?> b =
        Keepalives.channel(
            Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()), keepalive);
    b.intercept(GrpcTelemetry.create(otel).createClientInterceptor());
    if (target.contains("://")) {
      b.defaultLoadBalancingPolicy("round_robin");
    }
    return b.build();
  }

  /** Binds both servers; health turns SERVING. */
  public Ports start() throws IOException {
    synchronized (lifecycle) {
      if (started) {
        throw new IllegalStateException("already started");
      }
      started = true;
      grpc.start();
      http.start();
      health.serving();
    }
    Ports p = ports();
    log.info(
        "gateway: gRPC on port {}, HTTP on port {} (playground http://localhost:{}/), router {},"
            + " models {}, {}",
        p.grpc(),
        p.http(),
        p.http(),
        config.router(),
        config.servedModels().stream().map(GatewayConfig.ModelSpec::id).toList(),
        config.apiKeys().isEmpty()
            ? "NO API KEYS (anonymous access)"
            : config.apiKeys().size() + " API keys");
    return p;
  }

  /** The bound ports. */
  public Ports ports() {
    return new Ports(grpc.getPort(), http.port());
  }

  /** HTTP completion requests admitted and not finished (served and waiting). */
  public int httpInFlight() {
    return admission.inFlight();
  }

  public GatewayConfig config() {
    return config;
  }

  /** Blocks until the gRPC server has terminated (after {@link #close()}, from another thread). */
  public void awaitTermination() throws InterruptedException {
    grpc.awaitTermination();
  }

  /** Drains and stops: see the class comment. Idempotent. */
  @Override
  public void close() {
    synchronized (lifecycle) {
      if (closed) {
        return;
      }
      closed = true;
    }
    health.terminal();
    grpc.shutdown();
    long graceMs = config.drainGrace().toMillis();
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMs);
    // New HTTP requests get 503 (and no new connection is accepted); running ones get the grace
    // period. Then every connection is closed: a stream still running sees its client gone, which
    // cancels its router call.
    httpApi.drain();
    http.stopAccepting();
    while (httpApi.active() > 0 && System.nanoTime() < deadline) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    http.close();
    // The rest of the grace for gRPC calls (shutdown again is a no-op: it stopped accepting above).
    Drain.stop(grpc, Duration.ofNanos(Math.max(0, deadline - System.nanoTime())), () -> {});
    routerChannel.shutdownNow(); // cancels router calls still open (HTTP streams cut by stop)
    httpExecutor.shutdownNow();
    scheduler.shutdownNow();
    try {
      routerChannel.awaitTermination(5, TimeUnit.SECONDS);
      httpExecutor.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static ThreadFactory daemonThreads(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }
}
