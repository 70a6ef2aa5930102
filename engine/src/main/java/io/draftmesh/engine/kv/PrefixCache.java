package io.draftmesh.engine.kv;

import io.draftmesh.kvkeys.BlockKeys;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Automatic prefix caching (vLLM's): the full blocks of a {@link KvBlockPool} are named by the
 * chained hash of {@link BlockKeys} over their token ids, so a sequence that starts with a prefix
 * another sequence (live or recently closed) computed takes those blocks instead of computing them.
 *
 * <p>A cached block is immutable: every table holding it counts in its reference count, and a table
 * that must write into one (a truncation into the middle of a shared block) first gets a private
 * copy ({@link #makeWritable}). A cached block no table holds is idle: it keeps its KV for the next
 * sequence with that prefix but is reclaimed, least recently used first, as soon as the pool has no
 * free block, so the cache never refuses a session the pool could have served. Tables release their
 * blocks last to first, so a chain's tail is reclaimed before its head.
 *
 * <p>Keys are seeded by {@link #seed}: a fixed engine-local value until the worker sets the model
 * fingerprint of kvcache.proto ({@link #reseed}), after which local keys are the service's keys.
 * Every method takes the pool's lock (allocation and caching are one piece of bookkeeping).
 */
public final class PrefixCache {
  /** Told about every block the cache starts holding, on the thread that stored it. */
  public interface Listener {
    /**
     * A full block became cached: its key, its parent's key (the seed for a chain's first block)
     * and its token ids. Must return quickly (the scheduler thread calls it after a step).
     */
    void stored(byte[] parent, byte[] key, int[] tokenIds);

    /**
     * A block left the cache (reclaimed, dropped, or made private to be written). Called under the
     * pool's lock: must only hand the key on, never call back into the pool or the cache.
     */
    default void dropped(byte[] key) {}
  }

  /** Counts since the pool was made, and the cache's size now. */
  public record Stats(
      int cachedBlocks,
      int idleBlocks,
      long storedBlocks,
      long hitBlocks,
      long importedBlocks,
      long reclaimedBlocks) {}

  private static final byte[] LOCAL_SEED =
      BlockKeys.sha256()
          .digest("draftmesh.engine.prefix-cache.v1".getBytes(StandardCharsets.US_ASCII));

  private final KvBlockPool pool; // also the lock
  private final Map<Key, Integer> byKey = new HashMap<>();
  private final byte[][] keyOf; // per block: its key while cached, else null
  private final int[] refs; // per cached block: tables holding it
  private final LinkedHashSet<Integer> idle = new LinkedHashSet<>(); // refs == 0, LRU first
  private byte[] seed = LOCAL_SEED;
  private volatile Listener listener;
  private long stored;
  private long hits;
  private long imported;
  private long reclaimed;

  PrefixCache(KvBlockPool pool, int numBlocks) {
    this.pool = pool;
    this.keyOf = new byte[numBlocks][];
    this.refs = new int[numBlocks];
  }

  /** The first parent of every chain. */
  public byte[] seed() {
    synchronized (pool) {
      return seed;
    }
  }

  /**
   * Seeds keys with {@code fingerprint} from now on, dropping every cached block; refused while a
   * table holds a cached block (its keys would mix two seeds).
   */
  public void reseed(byte[] fingerprint) {
    if (fingerprint.length != BlockKeys.KEY_BYTES) {
      throw new IllegalArgumentException(
          "fingerprint: " + fingerprint.length + " bytes (expected: " + BlockKeys.KEY_BYTES + ")");
    }
    synchronized (pool) {
      if (byKey.size() != idle.size()) {
        throw new IllegalStateException(
            "prefix cache: " + (byKey.size() - idle.size()) + " cached blocks are in use");
      }
      dropIdle();
      seed = fingerprint.clone();
    }
  }

  public void listener(Listener l) {
    this.listener = l;
  }

  /** The keys of the first {@code blocks} full blocks of {@code tokens} under this seed. */
  public List<byte[]> keys(int[] tokens, int blocks) {
    return BlockKeys.chain(seed(), pool.blockSize(), tokens, blocks);
  }

  /** How many leading blocks of the chain {@code keys} are cached; takes nothing. */
  public int cachedPrefix(List<byte[]> keys) {
    synchronized (pool) {
      int n = 0;
      while (n < keys.size() && byKey.containsKey(new Key(keys.get(n)))) {
        n++;
      }
      return n;
    }
  }

  /**
   * Takes the longest cached prefix of the chain {@code keys}: its blocks, each now held once more
   * (the caller's table releases them).
   */
  int[] acquire(List<byte[]> keys) {
    synchronized (pool) {
      int[] out = new int[keys.size()];
      int n = 0;
      for (byte[] k : keys) {
        Integer b = byKey.get(new Key(k));
        if (b == null) {
          break;
        }
        hold(b);
        out[n++] = b;
      }
      hits += n;
      return Arrays.copyOf(out, n);
    }
  }

  /**
   * Caches {@code block}, which the calling table holds and whose KV is complete, under {@code
   * key}; nothing happens if the key is cached already (two sequences computed the same prefix) or
   * the block is.
   */
  void register(byte[] key, int block, byte[] parent, int[] tokens, int from) {
    synchronized (pool) {
      Key k = new Key(key);
      if (keyOf[block] != null || byKey.containsKey(k)) {
        return;
      }
      byKey.put(k, block);
      keyOf[block] = key;
      refs[block] = 1;
      stored++;
    }
    Listener l = listener;
    if (l != null) {
      l.stored(parent, key, Arrays.copyOfRange(tokens, from, from + pool.blockSize()));
    }
  }

  /**
   * Copies {@code payload} (one block in {@link KvBlockPool#LAYOUT}) into a new idle cached block
   * named {@code key}. False when the pool has no block to spare (every one is held); true also
   * when the key is cached already.
   */
  public boolean importBlock(byte[] key, ByteBuffer payload) {
    if (payload.remaining() != pool.blockBytes()) {
      throw new IllegalArgumentException(
          "payload: "
              + payload.remaining()
              + " bytes (expected: "
              + pool.blockBytes()
              + ", one block in "
              + KvBlockPool.LAYOUT
              + ")");
    }
    synchronized (pool) {
      Key k = new Key(key);
      if (byKey.containsKey(k)) {
        return true;
      }
      int block = pool.tryAllocateLocked();
      if (block < 0) {
        return false;
      }
      pool.writeBlock(block, payload);
      byKey.put(k, block);
      keyOf[block] = key.clone();
      refs[block] = 0;
      idle.add(block);
      imported++;
      return true;
    }
  }

  /**
   * Copies the cached block {@code key} into {@code dst} in {@link KvBlockPool#LAYOUT}; false if it
   * is not cached (any more). Holds the block while it copies, outside the lock.
   */
  public boolean exportBlock(byte[] key, ByteBuffer dst) {
    int block;
    synchronized (pool) {
      Integer b = byKey.get(new Key(key));
      if (b == null) {
        return false;
      }
      block = b;
      hold(block);
    }
    try {
      pool.readBlock(block, dst);
    } finally {
      synchronized (pool) {
        releaseLocked(block);
      }
    }
    return true;
  }

  /**
   * The block a table may write its tokens from {@code validTokens} on into, in place of {@code
   * block}: the block itself when it is not cached, or cached but held by this table alone (it
   * leaves the cache); else a private copy of its first {@code validTokens} tokens. Throws
   * RESOURCE_EXHAUSTED when a copy is needed and no block is free.
   */
  int makeWritable(int block, int validTokens) {
    synchronized (pool) {
      if (keyOf[block] == null) {
        return block;
      }
      if (refs[block] == 1) {
        forget(block);
        refs[block] = 0;
        return block;
      }
      int copy = pool.allocateLocked();
      pool.copyTokens(block, copy, validTokens);
      refs[block]--;
      return copy;
    }
  }

  /** Drops every idle block (a cold start for benchmarks; never needed for correctness). */
  public void clear() {
    synchronized (pool) {
      dropIdle();
    }
  }

  public Stats stats() {
    synchronized (pool) {
      return new Stats(byKey.size(), idle.size(), stored, hits, imported, reclaimed);
    }
  }

  // ---- under the pool's lock ----

  int idleLocked() {
    return idle.size();
  }

  /** One table fewer holds {@code block}: true if the cache keeps it (cached), false to free it. */
  boolean releaseLocked(int block) {
    if (keyOf[block] == null) {
      return false;
    }
    if (--refs[block] == 0) {
      idle.add(block);
    }
    return true;
  }

  /** The least recently used idle block, out of the cache and handed to the caller; or -1. */
  int reclaimLocked() {
    Iterator<Integer> it = idle.iterator();
    if (!it.hasNext()) {
      return -1;
    }
    int block = it.next();
    it.remove();
    forget(block);
    reclaimed++;
    return block;
  }

  private void hold(int block) {
    if (refs[block]++ == 0) {
      idle.remove(block);
    }
  }

  private void dropIdle() {
    for (int block : idle) {
      forget(block);
      pool.freeLocked(block);
    }
    idle.clear();
  }

  private void forget(int block) {
    byte[] key = keyOf[block];
    byKey.remove(new Key(key));
    keyOf[block] = null;
    Listener l = listener;
    if (l != null) {
      l.dropped(key);
    }
  }

  /** A block key with value equality. */
  private record Key(byte[] bytes) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Key k && Arrays.equals(bytes, k.bytes);
    }

    @Override
    public int hashCode() {
      // SHA-256 bytes are uniform: the first four are as good a hash as any.
      return (bytes[0] & 0xFF) | (bytes[1] & 0xFF) << 8 | (bytes[2] & 0xFF) << 16 | bytes[3] << 24;
    }

    @Override
    public String toString() {
      return BlockKeys.shortHex(bytes);
    }
  }
}
