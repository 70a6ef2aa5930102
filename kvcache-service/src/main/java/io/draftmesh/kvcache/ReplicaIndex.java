package io.draftmesh.kvcache;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * Which worker replica holds which blocks in its own KV pool, from the replicas' reports: the input
 * of KV-aware routing ({@code w × blocks_to_prefill + load}). A replica that has not reported for
 * the TTL is forgotten, so a dead worker stops attracting requests; live workers report at least
 * that often (an empty report is a heartbeat). Bounded by a total entry count. Thread-safe (one
 * lock).
 */
final class ReplicaIndex {
  /** The index is full. */
  static final class FullException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    FullException(String message) {
      super(message);
    }
  }

  /** Leading blocks of a chain one replica holds. */
  record Prefix(String replica, int blocks) {}

  private static final class Replica {
    final Set<BlockKey> keys = new HashSet<>();
    long lastSeenMs;
  }

  private final long ttlMs;
  private final long maxEntries;
  private final LongSupplier clockMs;
  private final Map<String, Replica> replicas = new HashMap<>();
  private final Map<BlockKey, Set<String>> holders = new HashMap<>();
  private long entries;

  ReplicaIndex(long ttlMs, long maxEntries, LongSupplier clockMs) {
    this.ttlMs = ttlMs;
    this.maxEntries = maxEntries;
    this.clockMs = clockMs;
  }

  /** Applies one report; returns the replica's entry count after it. */
  synchronized long report(
      String replica, List<BlockKey> stored, List<BlockKey> evicted, boolean reset) {
    expire();
    Replica r = replicas.computeIfAbsent(replica, k -> new Replica());
    r.lastSeenMs = clockMs.getAsLong();
    if (reset) {
      for (BlockKey k : r.keys) {
        unhold(k, replica);
      }
      entries -= r.keys.size();
      r.keys.clear();
    }
    for (BlockKey k : evicted) {
      if (r.keys.remove(k)) {
        unhold(k, replica);
        entries--;
      }
    }
    long adding = 0;
    for (BlockKey k : stored) {
      if (!r.keys.contains(k)) {
        adding++;
      }
    }
    if (entries + adding > maxEntries) {
      throw new FullException(
          "stored: "
              + adding
              + " new entries (expected: at most "
              + (maxEntries - entries)
              + " more; the index holds "
              + entries
              + " of --max-index-entries "
              + maxEntries
              + ")");
    }
    for (BlockKey k : stored) {
      if (r.keys.add(k)) {
        holders.computeIfAbsent(k, x -> new HashSet<>(2)).add(replica);
        entries++;
      }
    }
    return r.keys.size();
  }

  /** For each replica holding {@code chain}'s first block: how many leading blocks; most first. */
  synchronized List<Prefix> prefixes(List<BlockKey> chain) {
    expire();
    Map<String, Integer> counts = new HashMap<>();
    if (!chain.isEmpty()) {
      Set<String> first = holders.get(chain.get(0));
      if (first != null) {
        for (String replica : first) {
          Replica r = replicas.get(replica);
          int n = 0;
          while (n < chain.size() && r.keys.contains(chain.get(n))) {
            n++;
          }
          counts.put(replica, n);
        }
      }
    }
    List<Prefix> out = new ArrayList<>();
    counts.forEach((k, v) -> out.add(new Prefix(k, v)));
    out.sort(
        (a, b) ->
            a.blocks() != b.blocks()
                ? b.blocks() - a.blocks()
                : a.replica().compareTo(b.replica()));
    return out;
  }

  synchronized int replicas() {
    expire();
    return replicas.size();
  }

  synchronized long entries() {
    expire();
    return entries;
  }

  private void unhold(BlockKey k, String replica) {
    Set<String> h = holders.get(k);
    if (h != null) {
      h.remove(replica);
      if (h.isEmpty()) {
        holders.remove(k);
      }
    }
  }

  private void expire() {
    long now = clockMs.getAsLong();
    Iterator<Map.Entry<String, Replica>> it = replicas.entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<String, Replica> e = it.next();
      if (now - e.getValue().lastSeenMs > ttlMs) {
        for (BlockKey k : e.getValue().keys) {
          unhold(k, e.getKey());
        }
        entries -= e.getValue().keys.size();
        it.remove();
      }
    }
  }
}
