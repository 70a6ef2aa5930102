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
        blocks[count] = pool.allocate();
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
