package io.draftmesh.engine.kv;

import io.draftmesh.kvkeys.BlockKeys;
import java.util.Arrays;
import java.util.List;

/**
 * The blocks one sequence holds in a {@link KvBlockPool}, in token order. Growing takes blocks from
 * the pool; truncating and releasing give them back. Not thread-safe: a sequence is driven by one
 * thread.
 *
 * <p>Its leading full blocks may be shared with other tables through the pool's {@link
 * PrefixCache}: {@link #adopt} starts a table on cached blocks, {@link #publish} caches the blocks
 * that became full, and a write into a shared block first takes a private copy (copy-on-write), so
 * a table never changes KV another table reads.
 */
public final class BlockTable implements AutoCloseable {
  private final KvBlockPool pool;
  private int[] blocks = new int[4];
  private int count;
  private byte[][] keys = new byte[4][]; // keys[i]: the chain key of full block i, i < hashed
  private int hashed;
  private int writeBlock = -1; // a block a truncation cut into: made writable before it is written
  private int writeValid; // tokens kept in it
  private boolean rewritten; // KV rewritten in place (compaction): never keyed or cached again

  public BlockTable(KvBlockPool pool) {
    this.pool = pool;
  }

  /**
   * Starts an empty table on the longest cached prefix of the chain {@code chain} (keys of full
   * blocks, in order) and returns the tokens it covers.
   */
  public int adopt(List<byte[]> chain) {
    if (count != 0) {
      throw new IllegalStateException("adopt: the table holds " + count + " blocks");
    }
    int[] ids = pool.prefixCache().acquire(chain);
    blocks = Arrays.copyOf(ids, Math.max(4, ids.length * 2));
    keys = new byte[blocks.length][];
    for (int i = 0; i < ids.length; i++) {
      keys[i] = chain.get(i);
    }
    count = ids.length;
    hashed = ids.length;
    return ids.length * pool.blockSize();
  }

  /**
   * Caches every block that is now full: {@code kvTokens} tokens of {@code tokens} have KV in this
   * table.
   */
  public void publish(int[] tokens, int kvTokens) {
    if (rewritten) {
      return;
    }
    int bs = pool.blockSize();
    PrefixCache cache = pool.prefixCache();
    while (hashed < count && (hashed + 1) * bs <= kvTokens) {
      byte[] parent = hashed == 0 ? cache.seed() : keys[hashed - 1];
      byte[] key = BlockKeys.blockKey(parent, tokens, hashed * bs, bs);
      if (hashed == keys.length) {
        keys = Arrays.copyOf(keys, keys.length * 2);
      }
      keys[hashed] = key;
      cache.register(key, blocks[hashed], parent, tokens, hashed * bs);
      hashed++;
    }
  }

  /** Makes room for {@code tokens} tokens; on RESOURCE_EXHAUSTED nothing is kept from this call. */
  public void reserve(int tokens) {
    if (writeBlock >= 0 && writeBlock < count) {
      blocks[writeBlock] = pool.prefixCache().makeWritable(blocks[writeBlock], writeValid);
    }
    writeBlock = -1;
    int needed = blocksFor(tokens);
    int before = count;
    try {
      while (count < needed) {
        if (count == blocks.length) {
          blocks = Arrays.copyOf(blocks, blocks.length * 2);
        }
        blocks[count] = pool.allocate(count > 0 ? blocks[count - 1] + 1 : -1);
        count++;
      }
    } catch (RuntimeException e) {
      shrinkTo(before);
      throw e;
    }
  }

  /**
   * Keeps only the blocks needed for the first {@code tokens} tokens. The next write goes to token
   * {@code tokens}: if that is inside a kept block, the next {@link #reserve} makes it writable.
   */
  public void truncate(int tokens) {
    shrinkTo(blocksFor(tokens));
    int bs = pool.blockSize();
    hashed = Math.min(hashed, tokens / bs);
    writeBlock = tokens % bs != 0 ? tokens / bs : -1;
    writeValid = tokens % bs;
  }

  /**
   * Makes the blocks holding the first {@code tokens} slots this table's own, to be rewritten in
   * place (KV compaction): each leaves the prefix cache, or is replaced by a private copy when
   * other tables hold it, and none is keyed again, since its KV will no longer be that of the
   * tokens its key names. Throws RESOURCE_EXHAUSTED when a copy is needed and no block is free.
   */
  public void ownForRewrite(int tokens) {
    int bs = pool.blockSize();
    for (int i = 0; i < blocksFor(tokens); i++) {
      blocks[i] = pool.prefixCache().makeWritable(blocks[i], bs);
    }
    rewritten = true;
  }

  /** The pool slot of the token at {@code position}; the position must be reserved. */
  public long slot(int position) {
    int bs = pool.blockSize();
    return (long) blocks[position / bs] * bs + position % bs;
  }

  /**
   * The slot ranges holding the first {@code tokens} tokens, in order, as runs of consecutive
   * slots: {@code [start0, end0, start1, end1, ...]} (end exclusive).
   */
  public long[] slotRuns(int tokens) {
    int bs = pool.blockSize();
    int used = (tokens + bs - 1) / bs;
    long[] runs = new long[2 * used];
    int n = 0;
    for (int i = 0; i < used; i++) {
      long start = (long) blocks[i] * bs;
      long end = start + Math.min(bs, tokens - (long) i * bs);
      if (n > 0 && runs[n - 1] == start) {
        runs[n - 1] = end; // continues the previous run
      } else {
        runs[n++] = start;
        runs[n++] = end;
      }
    }
    return Arrays.copyOf(runs, n);
  }

  public int blockCount() {
    return count;
  }

  public int capacityTokens() {
    return count * pool.blockSize();
  }

  @Override
  public void close() {
    shrinkTo(0);
  }

  private int blocksFor(int tokens) {
    return (tokens + pool.blockSize() - 1) / pool.blockSize();
  }

  private void shrinkTo(int keep) {
    while (count > keep) {
      count--;
      pool.release(blocks[count]);
    }
    hashed = Math.min(hashed, count);
  }
}
