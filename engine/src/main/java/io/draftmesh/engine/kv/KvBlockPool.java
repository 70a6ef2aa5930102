package io.draftmesh.engine.kv;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.draftmesh.engine.runtime.EngineException;
import java.util.BitSet;

/**
 * The KV memory of one worker: a fixed pool of blocks of {@code blockSize} token slots,
 * preallocated once and shared by every session (vLLM's paged attention layout). A session owns a
 * {@link BlockTable} of block ids; slot {@code b * blockSize + i} holds the keys/values of the i-th
 * token of block b.
 *
 * <p>Allocation is bookkeeping in Java; the tensors never move. Thread-safe.
 */
public final class KvBlockPool implements AutoCloseable {
  private final int blockSize;
  private final int numBlocks;
  private final NDManager manager;
  // Heads outermost: a gather of a sequence's slots along axis 1 yields (kvHeads, B * length,
  // headDim), which reshapes for free into the (kvHeads, B, length, headDim) batch attention needs.
  private final NDArray[] keys; // per layer: (numKvHeads, numBlocks * blockSize, headDim)
  private final NDArray[] values; // per layer: (numKvHeads, numBlocks * blockSize, headDim)
  private final BitSet free = new BitSet(); // set bit = free block
  private int freeCount;

  private KvBlockPool(
      NDManager parent, int layers, int kvHeads, int headDim, int blockSize, int numBlocks) {
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.manager = parent.newSubManager();
    this.keys = new NDArray[layers];
    this.values = new NDArray[layers];
    Shape shape = new Shape(kvHeads, (long) numBlocks * blockSize, headDim);
    for (int l = 0; l < layers; l++) {
      keys[l] = manager.zeros(shape, DataType.FLOAT32);
      values[l] = manager.zeros(shape, DataType.FLOAT32);
    }
    free.set(0, numBlocks);
    freeCount = numBlocks;
  }

  /** Bytes one block takes across all layers, keys and values, fp32. */
  public static long bytesPerBlock(int layers, int kvHeads, int headDim, int blockSize) {
    return 2L * layers * blockSize * kvHeads * headDim * Float.BYTES;
  }

  /** Sizes the pool to fit {@code budgetBytes}; fails if not even one block fits. */
  public static KvBlockPool withBudget(
      NDManager parent, int layers, int kvHeads, int headDim, int blockSize, long budgetBytes) {
    if (blockSize < 1) {
      throw EngineException.invalid("kv block size: " + blockSize + " (expected: >= 1)");
    }
    long perBlock = bytesPerBlock(layers, kvHeads, headDim, blockSize);
    long blocks = budgetBytes / perBlock;
    if (blocks < 1) {
      throw EngineException.invalid(
          "kv memory budget: "
              + budgetBytes
              + " bytes (expected: at least one block of "
              + perBlock
              + " bytes)");
    }
    if (blocks * blockSize > Integer.MAX_VALUE) {
      blocks = Integer.MAX_VALUE / blockSize;
    }
    return new KvBlockPool(parent, layers, kvHeads, headDim, blockSize, (int) blocks);
  }

  public int blockSize() {
    return blockSize;
  }

  public int totalBlocks() {
    return numBlocks;
  }

  public synchronized int freeBlocks() {
    return freeCount;
  }

  /** Keys of one layer, (numKvHeads, slots, headDim). Written in place by the model. */
  public NDArray keys(int layer) {
    return keys[layer];
  }

  /** Values of one layer, (numKvHeads, slots, headDim). Written in place by the model. */
  public NDArray values(int layer) {
    return values[layer];
  }

  /**
   * Takes {@code preferred} if it is free (so a growing sequence's blocks stay contiguous and its
   * history can be read as a few slices), else the lowest free block.
   */
  synchronized int allocate(int preferred) {
    int block =
        preferred >= 0 && preferred < numBlocks && free.get(preferred)
            ? preferred
            : free.nextSetBit(0);
    if (block < 0) {
      throw EngineException.exhausted(
          "kv cache full: all " + numBlocks + " blocks of " + blockSize + " tokens are in use");
    }
    free.clear(block);
    freeCount--;
    return block;
  }

  synchronized void release(int block) {
    free.set(block);
    freeCount++;
  }

  @Override
  public void close() {
    manager.close();
  }
}
