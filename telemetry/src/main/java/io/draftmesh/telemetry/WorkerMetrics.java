package io.draftmesh.telemetry;

import static io.draftmesh.telemetry.MeshAttributes.LABEL_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.LABEL_ROLE;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.BatchCallback;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.ObservableLongMeasurement;
import java.util.function.Supplier;

/**
 * A model worker's metrics, read from the engine at each collection: sessions, KV blocks used and
 * free (vLLM's KV usage is used / (used + free)), forward steps; and the prefix-cache counters
 * ({@code draftmesh_prefix_cache_queries_total} and {@code _hits_total}, in tokens, as vLLM's),
 * which whatever reuses KV blocks across requests adds to; and, for a worker linked to
 * kvcache-service, what the link did ({@code draftmesh_kvcache_link_*}: blocks fetched and
 * published, fetches that found nothing, garbage, dropped and failed publishes, calls that failed
 * open; compacted prefix caches restored, missed, refused as garbage and stored). Every series
 * carries the worker's {@code role} and {@code model}.
 */
public final class WorkerMetrics implements AutoCloseable {
  static final String SCOPE = "io.draftmesh.worker";

  /**
   * What the engine reports at one collection.
   *
   * @param kvcache the kvcache link's counters, or null for a worker without a link
   */
  public record Snapshot(
      String model,
      long sessions,
      long kvBlocksUsed,
      long kvBlocksFree,
      long steps,
      KvCacheLink kvcache) {}

  /**
   * The kvcache link's totals since the worker started (a block is one KV block of the pool, so
   * bytes are blocks times the model's KV block bytes).
   *
   * @param fetchedBlocks blocks fetched from the service and imported into the prefix cache
   * @param fetchMisses opens whose fetch imported nothing (the service had no more than the local
   *     cache, was down, slow or refused, or the fetch queue was full)
   * @param garbageBlocks fetched blocks that did not fit the pool's layout, never used
   * @param publishedBlocks blocks the service confirmed stored
   * @param publishDropped blocks not published because the publish queue was full
   * @param failedPutBlocks blocks whose put failed (retried with the chain's next block), and
   *     compacted caches whose put failed
   * @param clientFailures calls to the service that failed open (errors, deadlines, garbage)
   * @param restoredCompacted compacted prefix caches fetched, checked and restored instead of
   *     compacting
   * @param compactedMisses compacted-prefix lookups that restored nothing (not stored, service down
   *     or slow, fetch queue full), garbage excluded
   * @param garbageCompacted fetched compacted caches that failed a check (not this key, method,
   *     parameters, prefix or model shape), never used
   * @param storedCompacted compacted caches the service confirmed stored
   */
  public record KvCacheLink(
      long fetchedBlocks,
      long fetchMisses,
      long garbageBlocks,
      long publishedBlocks,
      long publishDropped,
      long failedPutBlocks,
      long clientFailures,
      long restoredCompacted,
      long compactedMisses,
      long garbageCompacted,
      long storedCompacted) {}

  private final BatchCallback callback;
  private final LongCounter prefixQueries;
  private final LongCounter prefixHits;
  private final Attributes roleOnly;

  private WorkerMetrics(
      BatchCallback callback, LongCounter prefixQueries, LongCounter prefixHits, String role) {
    this.callback = callback;
    this.prefixQueries = prefixQueries;
    this.prefixHits = prefixHits;
    this.roleOnly = Attributes.of(LABEL_ROLE, role);
  }

  /**
   * Starts reporting a worker of {@code role}; {@code snapshot} returns null while no engine is
   * loaded (nothing is reported then).
   */
  public static WorkerMetrics register(
      OpenTelemetry otel, String role, Supplier<Snapshot> snapshot) {
    Meter meter = otel.getMeter(SCOPE);
    ObservableLongMeasurement sessions =
        meter
            .gaugeBuilder("draftmesh.sessions_active")
            .ofLongs()
            .setDescription("Open sequence sessions")
            .buildObserver();
    ObservableLongMeasurement used =
        meter
            .gaugeBuilder("draftmesh.kv_blocks_used")
            .ofLongs()
            .setDescription("KV cache blocks holding a sequence's keys and values")
            .buildObserver();
    ObservableLongMeasurement free =
        meter
            .gaugeBuilder("draftmesh.kv_blocks_free")
            .ofLongs()
            .setDescription("KV cache blocks free in the preallocated pool")
            .buildObserver();
    ObservableLongMeasurement steps =
        meter
            .counterBuilder("draftmesh.engine.steps")
            .setDescription("Forward steps run (a batched step counts once)")
            .buildObserver();
    ObservableLongMeasurement fetched =
        linkCounter(
            meter, "fetched_blocks", "Blocks fetched from kvcache-service into the prefix cache");
    ObservableLongMeasurement misses =
        linkCounter(meter, "fetch_misses", "Opens whose kvcache fetch imported nothing");
    ObservableLongMeasurement garbage =
        linkCounter(meter, "garbage_blocks", "Fetched blocks that did not fit the KV layout");
    ObservableLongMeasurement published =
        linkCounter(meter, "published_blocks", "Blocks kvcache-service confirmed stored");
    ObservableLongMeasurement dropped =
        linkCounter(meter, "publish_dropped", "Blocks not published: the publish queue was full");
    ObservableLongMeasurement failedPuts =
        linkCounter(meter, "failed_put_blocks", "Blocks whose put to kvcache-service failed");
    ObservableLongMeasurement clientFailures =
        linkCounter(meter, "client_failures", "Calls to kvcache-service that failed open");
    ObservableLongMeasurement restoredCompacted =
        linkCounter(
            meter, "restored_compacted", "Compacted prefix caches restored from kvcache-service");
    ObservableLongMeasurement compactedMisses =
        linkCounter(meter, "compacted_misses", "Compacted-prefix lookups that restored nothing");
    ObservableLongMeasurement garbageCompacted =
        linkCounter(
            meter, "garbage_compacted", "Fetched compacted caches that failed a check, never used");
    ObservableLongMeasurement storedCompacted =
        linkCounter(meter, "stored_compacted", "Compacted caches kvcache-service confirmed stored");
    BatchCallback cb =
        meter.batchCallback(
            () -> {
              Snapshot s = snapshot.get();
              if (s == null) {
                return;
              }
              Attributes a = Attributes.of(LABEL_ROLE, role, LABEL_MODEL, s.model());
              sessions.record(s.sessions(), a);
              used.record(s.kvBlocksUsed(), a);
              free.record(s.kvBlocksFree(), a);
              steps.record(s.steps(), a);
              KvCacheLink k = s.kvcache();
              if (k != null) {
                fetched.record(k.fetchedBlocks(), a);
                misses.record(k.fetchMisses(), a);
                garbage.record(k.garbageBlocks(), a);
                published.record(k.publishedBlocks(), a);
                dropped.record(k.publishDropped(), a);
                failedPuts.record(k.failedPutBlocks(), a);
                clientFailures.record(k.clientFailures(), a);
                restoredCompacted.record(k.restoredCompacted(), a);
                compactedMisses.record(k.compactedMisses(), a);
                garbageCompacted.record(k.garbageCompacted(), a);
                storedCompacted.record(k.storedCompacted(), a);
              }
            },
            sessions,
            used,
            free,
            steps,
            fetched,
            misses,
            garbage,
            published,
            dropped,
            failedPuts,
            clientFailures,
            restoredCompacted,
            compactedMisses,
            garbageCompacted,
            storedCompacted);
    LongCounter queries =
        meter
            .counterBuilder("draftmesh.prefix_cache.queries")
            .setDescription("Prompt tokens looked up in the prefix cache")
            .build();
    LongCounter hits =
        meter
            .counterBuilder("draftmesh.prefix_cache.hits")
            .setDescription("Prompt tokens found in the prefix cache")
            .build();
    WorkerMetrics m = new WorkerMetrics(cb, queries, hits, role);
    // A series that exists at 0 tells "no reuse yet" from "not reported".
    m.prefixCacheQueried(0, 0);
    return m;
  }

  /** A counter of the kvcache link, {@code draftmesh_kvcache_link_<name>_total} in Prometheus. */
  private static ObservableLongMeasurement linkCounter(
      Meter meter, String name, String description) {
    return meter
        .counterBuilder("draftmesh.kvcache_link." + name)
        .setDescription(description)
        .buildObserver();
  }

  /** A prefix lookup over {@code queried} prompt tokens found {@code hit} of them cached. */
  public void prefixCacheQueried(long queried, long hit) {
    prefixQueries.add(queried, roleOnly);
    prefixHits.add(hit, roleOnly);
  }

  /** Stops reporting the engine's gauges. */
  @Override
  public void close() {
    callback.close();
  }
}
