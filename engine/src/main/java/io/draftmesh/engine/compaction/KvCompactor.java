package io.draftmesh.engine.compaction;

import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The one compaction mechanism every policy shares: applies a {@link KvSelection} to a sequence's
 * cache in place. Per layer and KV head, the kept positions' keys and values move, in order, into
 * the sequence's first {@code count} slots; the blocks past them go back to the pool.
 *
 * <p>Keys were stored after RoPE, so a moved key keeps its original position; the caller feeds the
 * next tokens at their original positions with {@code SeqStep.positionShift} = positions dropped.
 * Heads keep different positions but the same count, so one block table still serves them all.
 *
 * <p>In place is safe because kept positions ascend: the i-th kept position p_i is at least i, so
 * writing slot i never overwrites a source still to be read. The sequence's blocks must be its own
 * (a block shared with another sequence would change under it).
 */
public final class KvCompactor {
  private KvCompactor() {}

  /** What a compaction did, per KV head, for reports. */
  public record Outcome(int keptSlots, int droppedSlots, int freedBlocks) {}

  /**
   * Compacts the first {@code cached} slots of {@code table} to the selection's kept positions and
   * frees the blocks past them.
   *
   * @param cached slots of the sequence holding KV now; every kept position must be below it
   */
  public static Outcome apply(
      KvBlockPool pool, BlockTable table, KvSelection selection, int cached) {
    int[][][] kept = selection.kept();
    if (kept.length != pool.layers()) {
      throw new IllegalArgumentException(
          "selection of " + kept.length + " layers (expected: the pool's " + pool.layers() + ")");
    }
    int count = selection.keptPerHead();
    for (int l = 0; l < kept.length; l++) {
      if (kept[l].length != pool.kvHeads()) {
        throw new IllegalArgumentException(
            "selection layer "
                + l
                + ": "
                + kept[l].length
                + " kv heads (expected: "
                + pool.kvHeads()
                + ")");
      }
      for (int h = 0; h < kept[l].length; h++) {
        checkHead(l, h, kept[l][h], count, cached);
      }
    }
    table.ownForRewrite(cached); // cached blocks are shared and immutable: rewrite private ones
    int slots = pool.slots();
    int rowBytes = pool.rowBytes();
    long[] slot = new long[cached];
    for (int p = 0; p < cached; p++) {
      slot[p] = table.slot(p);
    }
    for (int l = 0; l < kept.length; l++) {
      ByteBuffer keys = pool.keys(l);
      ByteBuffer values = pool.values(l);
      ByteBuffer keySrc = keys.duplicate();
      ByteBuffer valueSrc = values.duplicate();
      for (int h = 0; h < kept[l].length; h++) {
        long headBase = (long) h * slots;
        int[] positions = kept[l][h];
        for (int i = 0; i < count; i++) {
          int p = positions[i];
          if (p == i) {
            continue; // already in place
          }
          int src = Math.toIntExact((headBase + slot[p]) * rowBytes);
          int dst = Math.toIntExact((headBase + slot[i]) * rowBytes);
          keys.put(dst, keySrc, src, rowBytes);
          values.put(dst, valueSrc, src, rowBytes);
        }
      }
    }
    int before = table.blockCount();
    table.truncate(count);
    return new Outcome(count, cached - count, before - table.blockCount());
  }

  /**
   * The first {@code count} slots of {@code table}, every layer and KV head, in {@link
   * CompactedCache}'s layout: per layer keys then values, each (kvHeads, count, headDim) elements
   * of the pool's dtype, little-endian.
   */
  public static byte[] export(KvBlockPool pool, BlockTable table, int count) {
    int rowBytes = pool.rowBytes();
    byte[] out = new byte[Math.toIntExact(2L * pool.layers() * pool.kvHeads() * count * rowBytes)];
    ByteBuffer dst = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    int at = 0;
    for (int l = 0; l < pool.layers(); l++) {
      for (ByteBuffer part : new ByteBuffer[] {pool.keys(l), pool.values(l)}) {
        for (int h = 0; h < pool.kvHeads(); h++) {
          long headBase = (long) h * pool.slots();
          for (int i = 0; i < count; i++) {
            KvBlockPool.copy(
                part,
                Math.toIntExact((headBase + table.slot(i)) * rowBytes),
                dst,
                at,
                rowBytes,
                pool.dtype());
            at += rowBytes;
          }
        }
      }
    }
    return out;
  }

  /**
   * Writes {@code kv} ({@link #export}'s layout, {@code count} slots) into the first {@code count}
   * slots of {@code table}, which must be reserved and the table's own.
   */
  public static void restore(KvBlockPool pool, BlockTable table, int count, byte[] kv) {
    int rowBytes = pool.rowBytes();
    long expected = 2L * pool.layers() * pool.kvHeads() * count * rowBytes;
    if (kv.length != expected) {
      throw new IllegalArgumentException(
          "compacted kv: " + kv.length + " bytes (expected: " + expected + ")");
    }
    ByteBuffer src = ByteBuffer.wrap(kv).order(ByteOrder.LITTLE_ENDIAN);
    int at = 0;
    for (int l = 0; l < pool.layers(); l++) {
      for (ByteBuffer part : new ByteBuffer[] {pool.keys(l), pool.values(l)}) {
        for (int h = 0; h < pool.kvHeads(); h++) {
          long headBase = (long) h * pool.slots();
          for (int i = 0; i < count; i++) {
            KvBlockPool.copy(
                src,
                at,
                part,
                Math.toIntExact((headBase + table.slot(i)) * rowBytes),
                rowBytes,
                pool.dtype());
            at += rowBytes;
          }
        }
      }
    }
  }

  private static void checkHead(int layer, int head, int[] positions, int count, int cached) {
    if (positions.length != count) {
      throw new IllegalArgumentException(
          "selection layer "
              + layer
              + " head "
              + head
              + ": "
              + positions.length
              + " positions (expected: "
              + count
              + ", the same for every head)");
    }
    for (int i = 0; i < positions.length; i++) {
      int p = positions[i];
      if (p < 0 || p >= cached || (i > 0 && p <= positions[i - 1])) {
        throw new IllegalArgumentException(
            "selection layer "
                + layer
                + " head "
                + head
                + ": position "
                + p
                + " at "
                + i
                + " (expected: ascending, in 0.."
                + (cached - 1)
                + ")");
      }
    }
  }
}
