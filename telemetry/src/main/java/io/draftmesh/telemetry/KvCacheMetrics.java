package io.draftmesh.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.BatchCallback;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.ObservableLongMeasurement;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

/**
 * kvcache-service's metrics, read from the store at each collection: blocks, bytes and budget per
 * tier (what an operator sizes the memory and disk by), the tiers' hits, evictions and corrupt
 * blocks dropped, and the service's lookups (blocks hit and missed: the hit rate users watch for
 * silent zero-hit key mismatches), puts and gets (blocks and payload bytes), leases and the routing
 * index's size. Tier series carry {@code tier="memory"|"disk"}.
 */
public final class KvCacheMetrics implements AutoCloseable {
  static final String SCOPE = "io.draftmesh.kvcache";
  static final AttributeKey<String> LABEL_TIER = AttributeKey.stringKey("tier");

  /** One tier at one collection. */
  public record Tier(
      long blocks, long bytes, long budgetBytes, long hits, long evictions, long corrupt) {}

  /** The service at one collection; counters are totals since start. */
  public record Snapshot(
      Tier memory,
      Tier disk,
      long lookups,
      long lookupBlocksHit,
      long lookupBlocksMissed,
      long putsStored,
      long putsDuplicate,
      long putsIdleFailed,
      long getsServed,
      long putBytesStored,
      long getBytesServed,
      long leasesActive,
      long pinnedBlocks,
      long indexEntries) {}

  private final BatchCallback callback;

  private KvCacheMetrics(BatchCallback callback) {
    this.callback = callback;
  }

  /** Starts reporting what {@code snapshot} returns at each collection. */
  public static KvCacheMetrics register(OpenTelemetry otel, Supplier<Snapshot> snapshot) {
    Meter meter = otel.getMeter(SCOPE);
    ObservableLongMeasurement blocks = gauge(meter, "draftmesh.kvcache.blocks", "Blocks stored");
    ObservableLongMeasurement bytes = gauge(meter, "draftmesh.kvcache.bytes", "Bytes stored");
    ObservableLongMeasurement budget =
        gauge(meter, "draftmesh.kvcache.budget_bytes", "Byte budget of the tier");
    ObservableLongMeasurement tierHits =
        counter(meter, "draftmesh.kvcache.tier_hits", "Blocks served from the tier");
    ObservableLongMeasurement evictions =
        counter(meter, "draftmesh.kvcache.evictions", "Blocks evicted from the tier");
    ObservableLongMeasurement corrupt =
        counter(
            meter,
            "draftmesh.kvcache.corrupt_dropped",
            "Blocks whose checksum failed, dropped instead of served");
    ObservableLongMeasurement lookups =
        counter(meter, "draftmesh.kvcache.lookups", "Lookup calls answered");
    ObservableLongMeasurement hit =
        counter(meter, "draftmesh.kvcache.lookup_blocks_hit", "Prompt blocks found by lookups");
    ObservableLongMeasurement missed =
        counter(
            meter, "draftmesh.kvcache.lookup_blocks_missed", "Prompt blocks lookups did not find");
    ObservableLongMeasurement stored =
        counter(meter, "draftmesh.kvcache.puts_stored", "Blocks stored by Put");
    ObservableLongMeasurement duplicate =
        counter(
            meter, "draftmesh.kvcache.puts_duplicate", "Blocks Put again that were already held");
    ObservableLongMeasurement idleFailed =
        counter(
            meter,
            "draftmesh.kvcache.puts_idle_failed",
            "Put streams failed for sending nothing mid-block for --put-idle-ms");
    ObservableLongMeasurement served =
        counter(meter, "draftmesh.kvcache.gets_served", "Blocks streamed by Get");
    ObservableLongMeasurement putBytes =
        counter(meter, "draftmesh.kvcache.put_bytes", "Payload bytes of the blocks Put stored");
    ObservableLongMeasurement getBytes =
        counter(meter, "draftmesh.kvcache.get_bytes", "Payload bytes of the blocks Get streamed");
    ObservableLongMeasurement leases =
        gauge(meter, "draftmesh.kvcache.leases_active", "Pin leases not yet expired or released");
    ObservableLongMeasurement pinned =
        gauge(meter, "draftmesh.kvcache.pinned_blocks", "Blocks held by a pin");
    ObservableLongMeasurement index =
        gauge(
            meter,
            "draftmesh.kvcache.index_entries",
            "(replica, block) pairs in the KV-aware routing index");
    Attributes memory = Attributes.of(LABEL_TIER, "memory");
    Attributes disk = Attributes.of(LABEL_TIER, "disk");
    BiConsumer<Tier, Attributes> recordTier =
        (tier, a) -> {
          blocks.record(tier.blocks(), a);
          bytes.record(tier.bytes(), a);
          budget.record(tier.budgetBytes(), a);
          tierHits.record(tier.hits(), a);
          evictions.record(tier.evictions(), a);
          corrupt.record(tier.corrupt(), a);
        };
    BatchCallback cb =
        meter.batchCallback(
            () -> {
              Snapshot s = snapshot.get();
              recordTier.accept(s.memory(), memory);
              recordTier.accept(s.disk(), disk);
              lookups.record(s.lookups());
              hit.record(s.lookupBlocksHit());
              missed.record(s.lookupBlocksMissed());
              stored.record(s.putsStored());
              duplicate.record(s.putsDuplicate());
              idleFailed.record(s.putsIdleFailed());
              served.record(s.getsServed());
              putBytes.record(s.putBytesStored());
              getBytes.record(s.getBytesServed());
              leases.record(s.leasesActive());
              pinned.record(s.pinnedBlocks());
              index.record(s.indexEntries());
            },
            blocks,
            bytes,
            budget,
            tierHits,
            evictions,
            corrupt,
            lookups,
            hit,
            missed,
            stored,
            duplicate,
            idleFailed,
            served,
            putBytes,
            getBytes,
            leases,
            pinned,
            index);
    return new KvCacheMetrics(cb);
  }

  private static ObservableLongMeasurement gauge(Meter meter, String name, String description) {
    return meter.gaugeBuilder(name).ofLongs().setDescription(description).buildObserver();
  }

  private static ObservableLongMeasurement counter(Meter meter, String name, String description) {
    return meter.counterBuilder(name).setDescription(description).buildObserver();
  }

  @Override
  public void close() {
    callback.close();
  }
}
