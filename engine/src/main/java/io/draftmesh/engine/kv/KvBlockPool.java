package io.draftmesh.engine.kv;

import io.draftmesh.engine.runtime.EngineException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;

/**
 * The KV memory of one worker: a fixed pool of blocks of {@code blockSize} token slots,
 * preallocated once and shared by every session (vLLM's paged attention layout). A session owns a
 * {@link BlockTable} of block ids; slot {@code b * blockSize + i} holds the keys/values of the i-th
 * token of block b.
 *
 * <p>The storage is off-heap: per layer one direct buffer of keys and one of values, elements of
 * the pool's {@link KvDtype} (float32 or float16) in native byte order, laid out (kvHeads, slots,
 * headDim). Every backend works on these bytes where they are: the DJL backend wraps them zero-copy
 * as NDArrays, the Vector backend reads and writes them with vector loads, and KV import/export or
 * compaction can copy blocks without a detour through heap arrays. Allocation is bookkeeping in
 * Java; the bytes never move. Thread-safe.
 *
 * <p>Full blocks are shared between sequences by content through the pool's {@link PrefixCache};
 * its idle blocks count as free, since any allocation takes one when no block is unused.
 */
public final class KvBlockPool implements AutoCloseable {
  private final int blockSize;
  private final int numBlocks;
  private final int kvHeads;
  private final int headDim;
  private final KvDtype dtype;
  private final int rowBytes; // one slot of one KV head: headDim elements
  // Heads outermost: a sequence's slots of one head are a run of rows, and the DJL backend's
  // slice of (kvHeads, runs, headDim) reshapes for free into the batch its attention needs.
  private final ByteBuffer[] keys; // per layer: (kvHeads, numBlocks * blockSize, headDim) dtype
  private final ByteBuffer[] values; // per layer: (kvHeads, numBlocks * blockSize, headDim) dtype
  private final ByteBuffer[] roots; // what allocateDirect returned, for close to free
  private final BitSet free = new BitSet(); // set bit = free block
  private int freeCount;
  private final PrefixCache cache;
  private volatile boolean closed;

  private KvBlockPool(
      int layers, int kvHeads, int headDim, int blockSize, int numBlocks, KvDtype dtype) {
    this.blockSize = blockSize;
    this.numBlocks = numBlocks;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.dtype = dtype;
    this.rowBytes = headDim * dtype.bytes();
    this.keys = new ByteBuffer[layers];
    this.values = new ByteBuffer[layers];
    this.roots = new ByteBuffer[2 * layers];
    int bytes = Math.toIntExact((long) kvHeads * numBlocks * blockSize * headDim * dtype.bytes());
    for (int l = 0; l < layers; l++) {
      // allocateDirect zeroes the memory; 64-byte aligned so every head row starts on a line.
      roots[2 * l] = ByteBuffer.allocateDirect(bytes + 64);
      roots[2 * l + 1] = ByteBuffer.allocateDirect(bytes + 64);
      keys[l] = aligned(roots[2 * l], bytes);
      values[l] = aligned(roots[2 * l + 1], bytes);
    }
    free.set(0, numBlocks);
    freeCount = numBlocks;
    cache = new PrefixCache(this, numBlocks);
  }

  private static ByteBuffer aligned(ByteBuffer root, int bytes) {
    return root.alignedSlice(64).limit(bytes).slice().order(ByteOrder.nativeOrder());
  }

  /** Bytes one block takes across all layers, keys and values, elements of {@code dtype}. */
  public static long bytesPerBlock(
      int layers, int kvHeads, int headDim, int blockSize, KvDtype dtype) {
    return 2L * layers * blockSize * kvHeads * headDim * dtype.bytes();
  }

  /**
   * Sizes the pool to fit {@code budgetBytes}; fails if not even one block fits. One layer's keys
   * are one buffer, so a pool holds at most 2 GiB per layer and K or V; a larger budget is capped.
   */
  public static KvBlockPool withBudget(
      int layers, int kvHeads, int headDim, int blockSize, long budgetBytes, KvDtype dtype) {
    if (blockSize < 1) {
      throw EngineException.invalid("kv block size: " + blockSize + " (expected: >= 1)");
    }
    long perBlock = bytesPerBlock(layers, kvHeads, headDim, blockSize, dtype);
    long blocks = budgetBytes / perBlock;
    if (blocks < 1) {
      throw EngineException.invalid(
          "kv memory budget: "
              + budgetBytes
              + " bytes (expected: at least one block of "
              + perBlock
              + " bytes)");
    }
    long perLayerBlock = (long) kvHeads * blockSize * headDim * dtype.bytes();
    long maxBlocks = (Integer.MAX_VALUE - 64) / perLayerBlock;
    blocks = Math.min(blocks, maxBlocks);
    return new KvBlockPool(layers, kvHeads, headDim, blockSize, (int) blocks, dtype);
  }

  /** The element type of keys and values. */
  public KvDtype dtype() {
    return dtype;
  }

  /** Bytes of one slot of one KV head in {@link #keys}/{@link #values}: headDim elements. */
  public int rowBytes() {
    return rowBytes;
  }

  public int blockSize() {
    return blockSize;
  }

  public int totalBlocks() {
    return numBlocks;
  }

  /** Token slots per layer: totalBlocks × blockSize. */
  public int slots() {
    return numBlocks * blockSize;
  }

  public int kvHeads() {
    return kvHeads;
  }

  public int headDim() {
    return headDim;
  }

  public int layers() {
    return keys.length;
  }

  /** Off-heap bytes the pool holds: keys and values of every layer. */
  public long bytes() {
    return 2L * keys.length * keys[0].capacity();
  }

  /** Blocks an allocation can take now: unused ones and idle cached ones. */
  public synchronized int freeBlocks() {
    return freeCount + cache.idleLocked();
  }

  /** The pool's prefix cache. */
  public PrefixCache prefixCache() {
    return cache;
  }

  /**
   * The byte layout of one block outside the pool (kvcache payloads, {@code ModelSpec.kv_layout}):
   * per layer, its keys then its values, each (kvHeads, blockSize, headDim) elements of the pool's
   * {@link #dtype} little-endian ({@code ModelSpec.dtype} names it).
   */
  public static final String LAYOUT = "paged-v1";

  /** Bytes of one block in {@link #LAYOUT}. */
  public long blockBytes() {
    return bytesPerBlock(keys.length, kvHeads, headDim, blockSize, dtype);
  }

  /**
   * Keys of one layer, (kvHeads, slots, headDim) of {@link #dtype} in native order; byte offset of
   * (h, slot) is {@code ((h * slots) + slot) * rowBytes()}. Written in place by the models; the
   * buffer is the pool's own (position 0, limit = capacity), so callers use absolute access only.
   */
  public ByteBuffer keys(int layer) {
    requireOpen();
    return keys[layer];
  }

  /** Values of one layer, laid out as {@link #keys}. */
  public ByteBuffer values(int layer) {
    requireOpen();
    return values[layer];
  }

  public boolean isClosed() {
    return closed;
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("kv pool is closed");
    }
  }

  /**
   * Takes {@code preferred} if it is free (so a growing sequence's blocks stay contiguous and its
   * history can be read as a few slices), else the lowest free block, else the least recently used
   * idle cached block.
   */
  synchronized int allocate(int preferred) {
    if (preferred >= 0 && preferred < numBlocks && free.get(preferred)) {
      free.clear(preferred);
      freeCount--;
      return preferred;
    }
    return allocateLocked();
  }

  /** A block, or RESOURCE_EXHAUSTED; the caller holds the lock. */
  int allocateLocked() {
    int block = tryAllocateLocked();
    if (block < 0) {
      throw EngineException.exhausted(
          "kv cache full: all " + numBlocks + " blocks of " + blockSize + " tokens are in use");
    }
    return block;
  }

  /** A block, or -1 when every one is held; the caller holds the lock. */
  int tryAllocateLocked() {
    int block = free.nextSetBit(0);
    if (block >= 0) {
      free.clear(block);
      freeCount--;
      return block;
    }
    return cache.reclaimLocked();
  }

  /** One table fewer holds {@code block}: the prefix cache keeps it if cached, else it is free. */
  synchronized void release(int block) {
    if (!cache.releaseLocked(block)) {
      freeLocked(block);
    }
  }

  void freeLocked(int block) {
    free.set(block);
    freeCount++;
  }

  /**
   * Copies the first {@code tokens} slots of block {@code src} to block {@code dst}, every layer.
   */
  void copyTokens(int src, int dst, int tokens) {
    int run = tokens * rowBytes;
    for (int l = 0; l < keys.length; l++) {
      for (int h = 0; h < kvHeads; h++) {
        keys[l].put(offset(h, dst), keys[l], offset(h, src), run);
        values[l].put(offset(h, dst), values[l], offset(h, src), run);
      }
    }
  }

  /** Writes block {@code block} from {@code src} ({@link #LAYOUT}), consuming it. */
  void writeBlock(int block, ByteBuffer src) {
    requireOpen();
    int run = blockSize * rowBytes;
    ByteBuffer in = src.slice().order(ByteOrder.LITTLE_ENDIAN);
    int at = 0;
    for (int l = 0; l < keys.length; l++) {
      for (ByteBuffer part : new ByteBuffer[] {keys[l], values[l]}) {
        for (int h = 0; h < kvHeads; h++) {
          copy(in, at, part, offset(h, block), run, dtype);
          at += run;
        }
      }
    }
    src.position(src.position() + at);
  }

  /** Appends block {@code block} to {@code dst} in {@link #LAYOUT}. */
  void readBlock(int block, ByteBuffer dst) {
    requireOpen();
    int run = blockSize * rowBytes;
    ByteBuffer out = dst.slice().order(ByteOrder.LITTLE_ENDIAN);
    int at = 0;
    for (int l = 0; l < keys.length; l++) {
      for (ByteBuffer part : new ByteBuffer[] {keys[l], values[l]}) {
        for (int h = 0; h < kvHeads; h++) {
          copy(part, offset(h, block), out, at, run, dtype);
          at += run;
        }
      }
    }
    dst.position(dst.position() + at);
  }

  /** Byte offset of the first slot of {@code block} for head {@code h} in a layer's buffer. */
  private int offset(int h, int block) {
    return ((h * numBlocks + block) * blockSize) * rowBytes;
  }

  /**
   * Copies {@code bytes} of {@code dtype} elements from {@code src} at {@code from} to {@code dst}
   * at {@code to}, converting between the buffers' byte orders (the pool's is native, payloads are
   * little-endian); a raw byte copy when they agree, as on x86 and ARM.
   */
  public static void copy(
      ByteBuffer src, int from, ByteBuffer dst, int to, int bytes, KvDtype dtype) {
    if (src.order() == dst.order()) {
      dst.put(to, src, from, bytes);
      return;
    }
    for (int i = 0; i < bytes; i += dtype.bytes()) {
      if (dtype == KvDtype.FLOAT16) {
        dst.putShort(to + i, src.getShort(from + i));
      } else {
        dst.putInt(to + i, src.getInt(from + i));
      }
    }
  }

  /**
   * Frees the off-heap memory now rather than when the GC finds the buffers (a worker's pool is
   * gigabytes, and tests open many engines). Callers must not use views of the buffers afterwards;
   * {@link #keys}/{@link #values} refuse.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (ByteBuffer root : roots) {
      Cleaner.free(root);
    }
  }

  /** {@code sun.misc.Unsafe.invokeCleaner} (module jdk.unsupported), reached reflectively. */
  private static final class Cleaner {
    private static final Object UNSAFE;
    private static final Method INVOKE_CLEANER;

    static {
      Object unsafe = null;
      Method invoke = null;
      try {
        Class<?> c = Class.forName("sun.misc.Unsafe");
        Field f = c.getDeclaredField("theUnsafe");
        f.setAccessible(true);
        unsafe = f.get(null);
        invoke = c.getMethod("invokeCleaner", ByteBuffer.class);
      } catch (ReflectiveOperationException | RuntimeException e) {
        // Without it the GC frees the buffers; nothing else changes.
      }
      UNSAFE = unsafe;
      INVOKE_CLEANER = invoke;
    }

    /** Frees a buffer returned by allocateDirect (not a slice of one). */
    static void free(ByteBuffer root) {
      if (INVOKE_CLEANER == null) {
        return;
      }
      try {
        INVOKE_CLEANER.invoke(UNSAFE, root);
      } catch (ReflectiveOperationException | RuntimeException e) {
        // Left to the GC.
      }
    }
  }
}
