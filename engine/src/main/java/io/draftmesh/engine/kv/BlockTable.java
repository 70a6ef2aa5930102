package io.draftmesh.engine.kv;

import java.util.Arrays;

/**
 * The blocks one sequence holds in a {@link KvBlockPool}, in token order. Growing takes blocks from
 * the pool; truncating and releasing give them back. Not thread-safe: a sequence is driven by one
 * thread.
 */
public final class BlockTable implements AutoCloseable {
  private final KvBlockPool pool;
  private int[] blocks = new int[4];
  private int count;

  public BlockTable(KvBlockPool pool) {
    this.pool = pool;
  }

  /** Makes room for {@code tokens} tokens; on RESOURCE_EXHAUSTED nothing is kept from this call. */
  public void reserve(int tokens) {
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

  /** Keeps only the blocks needed for the first {@code tokens} tokens. */
  public void truncate(int tokens) {
    shrinkTo(blocksFor(tokens));
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
    return java.util.Arrays.copyOf(runs, n);
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
  }
}
