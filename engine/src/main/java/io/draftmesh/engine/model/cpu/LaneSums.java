package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The lane sums of many vectors at once, for attention scores: a kernel stores each key's vector of
 * partial dot products into a per-thread block ({@link #block}) instead of reducing it, and {@link
 * #sum} turns every {@link #L} of them into one vector of L sums by a transposing tree: at half h
 * of a level, rows m and m + h merge into one whose lanes with bit h clear sum row m's lane pairs
 * (l, l ^ h) and whose lanes with bit h set sum row m + h's, so after log2(L) levels lane l holds
 * row l's sum. That is 15 merges of two blends, one permute and one add for 16 keys, where {@code
 * reduceLanes} reduced each key alone: on a Xeon with AVX-512, 2.3 ns a key against 4.6 (each
 * alone, in a harness); a float16 64-wide key's score went 8.8 to 6.8 ns, four rows' 29 to 17.
 */
final class LaneSums {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final int L = S.length();

  /** Keys a block holds: 64 vectors, 4 KiB of float32 on AVX-512, so a block stays in L1. */
  static final int KEYS = 4 * L;

  // One mask (lanes with bit h set) and one permute (lane l from l ^ h) per level; L is a power
  // of two (8 or 16 on x86), so levels h = L/2 .. 1; the unused ones of a narrower species stay
  // null.
  private static final VectorMask<Float> M8 = L > 8 ? mask(8) : null;
  private static final VectorMask<Float> M4 = L > 4 ? mask(4) : null;
  private static final VectorMask<Float> M2 = mask(2);
  private static final VectorMask<Float> M1 = mask(1);
  private static final VectorShuffle<Float> X8 = L > 8 ? swap(8) : null;
  private static final VectorShuffle<Float> X4 = L > 4 ? swap(4) : null;
  private static final VectorShuffle<Float> X2 = swap(2);
  private static final VectorShuffle<Float> X1 = swap(1);

  private static final ThreadLocal<float[]> BLOCK = // (MAX_GROUP_ROWS, KEYS, L) partials
      ThreadLocal.withInitial(() -> new float[PagedAttention.MAX_GROUP_ROWS * KEYS * L]);

  private LaneSums() {}

  private static VectorMask<Float> mask(int h) {
    boolean[] bits = new boolean[L];
    for (int l = 0; l < L; l++) {
      bits[l] = (l & h) != 0;
    }
    return VectorMask.fromArray(S, bits, 0);
  }

  private static VectorShuffle<Float> swap(int h) {
    return VectorShuffle.fromOp(S, l -> l ^ h);
  }

  /**
   * This thread's block: room for {@link PagedAttention#MAX_GROUP_ROWS} query rows' {@link #KEYS}
   * partial vectors each.
   */
  static float[] block() {
    return BLOCK.get();
  }

  /**
   * {@code out[off + j] = sum of the L floats at part[at + j * L]} for {@code j < keys} ({@code
   * keys <= KEYS}), overwriting the block. Rows past {@code keys} in the last group of L are summed
   * into lanes that are not stored: each row's sum stays in its own lane.
   */
  static void sum(float[] part, int at, int keys, float[] out, int off) {
    for (int b = 0; b < keys; b += L) {
      int row = at + b * L;
      if (L > 8) {
        level(part, row, 8, M8, X8);
      }
      if (L > 4) {
        level(part, row, 4, M4, X4);
      }
      level(part, row, 2, M2, X2);
      level(part, row, 1, M1, X1);
      FloatVector sums = FloatVector.fromArray(S, part, row);
      if (b + L <= keys) {
        sums.intoArray(out, off + b);
      } else {
        sums.intoArray(out, off + b, S.indexInRange(0, keys - b));
      }
    }
  }

  /** One level of the tree over the block's first 2h rows at {@code row}: row m merges m + h. */
  private static void level(
      float[] part, int row, int h, VectorMask<Float> high, VectorShuffle<Float> swap) {
    for (int m = 0; m < h; m++) {
      FloatVector x = FloatVector.fromArray(S, part, row + m * L);
      FloatVector y = FloatVector.fromArray(S, part, row + (m + h) * L);
      FloatVector kept = x.blend(y, high);
      FloatVector moved = y.blend(x, high).rearrange(swap);
      kept.add(moved).intoArray(part, row + m * L);
    }
  }
}
