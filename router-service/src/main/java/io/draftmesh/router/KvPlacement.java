package io.draftmesh.router;

import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.proto.v1.ModelInfo;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * KV-aware placement (Dynamo / llm-d style): a request goes to the replica of its target pool with
 * the lowest {@code w × blocks_to_prefill + load}, where blocks_to_prefill is the request's full
 * prompt blocks minus the leading ones the replica holds (from kvcache-service's replica index,
 * which workers keep up to date) and load is the requests this router has running there. When the
 * index cannot answer (service down, slow, no fingerprint) the pool's round-robin decides:
 * placement is an accelerator like the cache itself. A {@code dns:///} pool places the same way:
 * its backends are the addresses its name resolves to now.
 */
final class KvPlacement implements AutoCloseable {
  private static final java.time.Duration INFO_TIMEOUT = java.time.Duration.ofSeconds(1);

  private final KvCacheClient client;
  private final double weight;
  private final AtomicLong placed = new AtomicLong();
  private final AtomicLong fallbacks = new AtomicLong();
  private final AtomicInteger tie = new AtomicInteger();

  KvPlacement(KvCacheClient client, double weight) {
    this.client = client;
    this.weight = weight;
  }

  /**
   * The backend of {@code pool} for {@code prompt}, scored from the index; {@code roundRobin} (the
   * pool's own pick for this request) when the pool has one backend or the index is unavailable.
   * {@code info} is any backend's model info (a pool serves one model): its fingerprint and block
   * size name the chain.
   */
  WorkerPool.Backend choose(
      WorkerPool pool, int[] prompt, ModelInfo info, WorkerPool.Backend roundRobin) {
    List<WorkerPool.Backend> backends = pool.backends();
    if (backends.size() < 2) {
      return roundRobin;
    }
    byte[] fingerprint = info.getKvFingerprint().toByteArray();
    int bs = info.getKvBlockSize();
    if (fingerprint.length == 0 || bs < 1) {
      fallbacks.incrementAndGet();
      return roundRobin;
    }
    int full = prompt.length / bs;
    Map<String, Integer> held =
        client
            .lookup(fingerprint, bs, Arrays.copyOf(prompt, full * bs), 0)
            .map(KvCacheClient.Prefix::replicas)
            .orElse(null);
    if (held == null) {
      fallbacks.incrementAndGet();
      return roundRobin;
    }
    // Ties (e.g. nothing cached anywhere, no load) rotate, as round-robin would.
    int start = Math.floorMod(tie.getAndIncrement(), backends.size());
    WorkerPool.Backend best = null;
    double bestScore = Double.MAX_VALUE;
    for (int i = 0; i < backends.size(); i++) {
      WorkerPool.Backend b = backends.get((start + i) % backends.size());
      if (!b.connectable()) {
        continue; // its connection failed: gone, or not yet reachable
      }
      ModelInfo bi;
      try {
        bi = b.info(INFO_TIMEOUT); // cached for WorkerPool.INFO_TTL
      } catch (io.grpc.StatusRuntimeException unreachable) {
        continue; // never place on a replica that does not answer
      }
      String replica = bi.getKvReplica();
      int blocks = replica.isEmpty() ? 0 : Math.min(full, held.getOrDefault(replica, 0));
      double score = weight * (full - blocks) + b.load();
      if (score < bestScore) {
        bestScore = score;
        best = b;
      }
    }
    if (best == null) {
      fallbacks.incrementAndGet();
      return roundRobin;
    }
    placed.incrementAndGet();
    return best;
  }

  /** Requests placed from the index, and those left to round-robin. */
  long placed() {
    return placed.get();
  }

  long fallbacks() {
    return fallbacks.get();
  }

  @Override
  public void close() {
    client.close();
  }
}
