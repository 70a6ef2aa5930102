package io.draftmesh.kvcache;

import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.proto.v1.StatsResponse;
import io.draftmesh.proto.v1.TierStats;
import io.draftmesh.serving.Drain;
import io.draftmesh.serving.ServiceHealth;
import io.draftmesh.telemetry.KvCacheMetrics;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * kvcache-service's lifecycle: opens the store (recovering the disk tier), serves {@code KvCache},
 * health, reflection (v1 and v1alpha) and tracing, and drains on close.
 *
 * <p>Health is NOT_SERVING until the disk tier has been recovered and the server is bound, then
 * SERVING. {@link #close()} turns it NOT_SERVING, refuses new calls (UNAVAILABLE), gives running
 * streams the drain grace, cancels the rest (which releases what they hold), then closes the store,
 * flushing the disk tier.
 *
 * <p>Takes a {@link ServerBuilder} so tests can run it in-process; {@link #onPort} builds the
 * production (Netty) one.
 */
public final class KvCacheServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KvCacheServer.class);

  /** The service name health is reported under, besides the overall "" service. */
  public static final String SERVICE_NAME = "draftmesh.v1.KvCache";

  private final KvCacheConfig config;
  private final ServiceHealth health = new ServiceHealth(SERVICE_NAME);
  private final BlockStore store;
  private final Server server;
  private final KvCacheMetrics metrics;
  private final KvCacheService service;
  private boolean closed; // guarded by this

  public KvCacheServer(ServerBuilder<?> builder, KvCacheConfig config, OpenTelemetry otel) {
    this.config = config;
    ModelRegistry models =
        new ModelRegistry(config.dataDir() == null ? null : config.dataDir().resolve("models"));
    try {
      this.store =
          new BlockStore(
              config.memoryBytes(),
              config.diskEnabled() ? config.dataDir().resolve("blocks") : null,
              config.diskBytes(),
              config.segmentBytes(),
              fp -> models.get(fp) != null,
              System::currentTimeMillis);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "kvcache: cannot open the disk tier in " + config.dataDir(), e);
    }
    ReplicaIndex index =
        new ReplicaIndex(
            config.replicaTtl().toMillis(), config.maxIndexEntries(), System::currentTimeMillis);
    KvCacheService service = new KvCacheService(config, store, models, index);
    this.service = service;
    this.metrics = KvCacheMetrics.register(otel, () -> snapshot(service.stats()));
    this.server =
        builder
            .addService(service.definition())
            .addServices(health.services()) // health, reflection v1 and v1alpha
            .intercept(GrpcTelemetry.create(otel).createServerInterceptor())
            // Up to twice the chunk limit reaches the service, which answers INVALID_ARGUMENT
            // naming the chunk; anything bigger is refused by the transport (RESOURCE_EXHAUSTED).
            .maxInboundMessageSize(2 * config.maxChunkBytes() + (64 << 10))
            .build();
  }

  /**
   * A server for {@code config} on a real (Netty) port. Its HTTP/2 flow-control window holds
   * several chunks, so a stream of blocks is not stalled waiting for a window update after each.
   * Calls run on the transport's threads (direct executor), as the worker's do: every handler only
   * validates, copies a chunk into its pages or hands one to the transport, under locks held for a
   * copy at most (a disk-tier put or a disk read is one page-cache write or read), so a hop to
   * another thread per message would cost more than it frees.
   */
  public static KvCacheServer onPort(KvCacheConfig config, OpenTelemetry otel) {
    return new KvCacheServer(
        NettyServerBuilder.forPort(config.port(), InsecureServerCredentials.create())
            .flowControlWindow(KvCacheClient.flowWindow(config.maxChunkBytes()))
            .directExecutor(),
        config,
        otel);
  }

  /** Binds the server; health turns SERVING. */
  public KvCacheServer start() throws IOException {
    server.start();
    health.serving();
    log.info(
        "kvcache on port {}: memory {} bytes, disk {}",
        server.getPort(),
        config.memoryBytes(),
        config.diskEnabled() ? config.diskBytes() + " bytes in " + config.dataDir() : "off");
    return this;
  }

  /** The port the server listens on (-1 for in-process servers). */
  public int port() {
    return server.getPort();
  }

  /** Put requests whose aliased receive buffers were not given back yet (a leak check). */
  int unreleasedPutRequests() {
    return service.unreleasedPutRequests();
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
                "drain grace of {} over; cancelling the remaining calls", config.drainGrace()));
    service.close();
    metrics.close();
    store.close();
  }

  private static KvCacheMetrics.Snapshot snapshot(StatsResponse s) {
    return new KvCacheMetrics.Snapshot(
        tier(s.getMemory()),
        tier(s.getDisk()),
        s.getLookups(),
        s.getLookupBlocksHit(),
        s.getLookupBlocksMissed(),
        s.getPutsStored(),
        s.getPutsDuplicate(),
        s.getPutsIdleFailed(),
        s.getGetsServed(),
        s.getPutBytesStored(),
        s.getGetBytesServed(),
        s.getLeasesActive(),
        s.getPinnedBlocks(),
        s.getIndexEntries());
  }

  private static KvCacheMetrics.Tier tier(TierStats t) {
    return new KvCacheMetrics.Tier(
        t.getBlocks(),
        t.getBytes(),
        t.getBudgetBytes(),
        t.getHits(),
        t.getEvictions(),
        t.getCorruptDropped());
  }
}
