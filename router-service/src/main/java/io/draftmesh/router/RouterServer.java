package io.draftmesh.router;

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
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The router's lifecycle: worker pools (one channel per worker address, static or resolved from a
 * {@code dns:///} name), the gRPC server (Router, health, reflection, tracing), and graceful drain.
 *
 * <p>Health is SERVING once started: the router holds no model, and an unreachable worker is a
 * per-request UNAVAILABLE, not a router fault. {@link #close()} turns health NOT_SERVING, refuses
 * new calls, gives running requests the drain grace, then cancels them (which closes their worker
 * sessions) and closes the channels.
 *
 * <p>Takes a {@link ServerBuilder} so tests can run it in-process; {@link #onPort} builds the
 * production (Netty) one.
 */
public final class RouterServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RouterServer.class);

  /** The service name health is reported under, besides the overall "" service. */
  public static final String SERVICE_NAME = "draftmesh.v1.Router";

  private final RouterConfig config;
  private final Server server;
  private final ServiceHealth health = new ServiceHealth(SERVICE_NAME);
  private final Map<String, WorkerPool> pools;
  private final RouterService service;
  private final KvPlacement placement; // null without --kvcache
  private boolean closed; // guarded by this

  /** A router whose worker channels are plaintext gRPC (Netty), traced with {@code otel}. */
  public RouterServer(ServerBuilder<?> builder, RouterConfig config, OpenTelemetry otel) {
    this(builder, config, otel, channelFactory(otel, config.keepalive()));
  }

  /**
   * @param channels builds the channel for one worker target string (tests map names to in-process
   *     channels)
   */
  public RouterServer(
      ServerBuilder<?> builder,
      RouterConfig config,
      OpenTelemetry otel,
      Function<String, ManagedChannel> channels) {
    this.config = config;
    Map<String, WorkerPool> p = new LinkedHashMap<>();
    config
        .pools()
        .forEach(
            (name, spec) ->
                p.put(name, WorkerPool.fromSpec(name, spec, channels, config.resolveInterval())));
    this.pools = p;
    this.placement =
        config.kvcache() == null
            ? null
            : new KvPlacement(
                io.draftmesh.kvcache.client.KvCacheClient.connect(
                    config.kvcache(), config.kvcacheDeadline(), 1 << 20, otel),
                config.kvRouteWeight());
    this.service =
        new RouterService(config, pools, placement, Tokenizers.scan(config.tokenizers()), otel);
    this.server =
        builder
            .addService(service)
            .addServices(health.services()) // health, reflection v1 and v1alpha
            .intercept(GrpcTelemetry.create(otel).createServerInterceptor())
            .build();
  }

  /** A router for {@code config} on a real (Netty) port. */
  public static RouterServer onPort(RouterConfig config, OpenTelemetry otel) {
    // A caller (the gateway) that vanished without closing its connection is noticed by an
    // unanswered ping; its generations are cancelled, which closes their worker sessions.
    return new RouterServer(
        Keepalives.server(
            Grpc.newServerBuilderForPort(config.port(), InsecureServerCredentials.create()),
            config.keepalive()),
        config,
        otel);
  }

  /**
   * Plaintext channels: {@code host:port} is one worker (a {@code dns:///} pool resolves its name
   * itself and asks for one channel per address); another target URI with a scheme balances
   * round-robin over every address gRPC resolves it to.
   */
  static Function<String, ManagedChannel> channelFactory(OpenTelemetry otel, Keepalive keepalive) {
    GrpcTelemetry telemetry = GrpcTelemetry.create(otel);
    return target -> {
      // A worker that vanished mid-session (no RST) fails the session's stream after an
      // unanswered ping, so the request falls back (draft) or fails UNAVAILABLE (target) instead
      // of waiting for the op deadline.
      ManagedChannelBuilder<?> b =
          Keepalives.channel(
              Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()), keepalive);
      b.intercept(telemetry.createClientInterceptor());
      // Worker responses only complete the futures a decoding thread waits on (WorkerSession):
      // completing them on the transport thread saves a wake-up of an executor thread per op.
      b.directExecutor();
      if (target.contains("://")) {
        b.defaultLoadBalancingPolicy("round_robin");
      }
      return b.build();
    };
  }

  /** Binds the server; health turns SERVING. */
  public RouterServer start() throws IOException {
    server.start();
    health.serving();
    log.info(
        "router on port {}: pools {}, default target {}, default draft {}",
        server.getPort(),
        config.pools(),
        config.defaultTarget(),
        config.defaultDraft());
    return this;
  }

  /** The port the server listens on (-1 for in-process servers). */
  public int port() {
    return server.getPort();
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /** Drains and stops: see the class comment. Idempotent. */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    health.terminal();
    Drain.stop(
        server,
        config.drainGrace(),
        () ->
            log.info(
                "drain grace of {} over; cancelling {} requests",
                config.drainGrace(),
                service.inFlight()));
    service.close();
    if (placement != null) {
      placement.close();
    }
    for (WorkerPool p : pools.values()) {
      p.close();
    }
  }
}
