package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.kv.KvDtype;
import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal GQA attention over the paged KV pool, in place: keys and values are read from the pool's
 * off-heap buffers (layout (kvHeads, slots, headDim), float32 or float16 in native order: {@link
 * KvRows}) slot by slot through each sequence's block table, with no copy of the history. One unit
 * of work is one head of a chunk of up to {@link #CHUNK_ROWS} rows of one sequence; units are
 * independent, so a step's units are split across threads.
 */
final class PagedAttention {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  /**
   * Rows of one sequence a unit of work takes at most: enough to share a head's keys in L2, few
   * enough that a prefill still splits into many units.
   */
  static final int CHUNK_ROWS = 8;

  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int group;
  private final KvRows f32;
  private final KvRows f16;

  PagedAttention(int heads, int kvHeads, int headDim) {
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.group = heads / kvHeads;
    float scale = (float) (1.0 / Math.sqrt(headDim));
    this.f32 = new F32Rows(headDim, scale);
    this.f16 = new F16Rows(headDim, scale);
  }

  /** How rows of a pool of {@code dtype} are read and written. */
  KvRows rows(KvDtype dtype) {
    return dtype == KvDtype.FLOAT16 ? f16 : f32;
  }

  /**
   * Writes rows' keys and values (already roped) into their slots: qkv rows are (q | k | v) with k
   * at {@code heads * headDim}.
   */
  void writeKv(
      KvRows kv,
      float[] qkv,
      int qkvDim,
      int rows,
      int[] rowSlot,
      ByteBuffer keys,
      ByteBuffer values,
      int slots) {
    int kOff = heads * headDim;
    int vOff = kOff + kvHeads * headDim;
    for (int t = 0; t < rows; t++) {
      for (int kh = 0; kh < kvHeads; kh++) {
        int dst = ((kh * slots) + rowSlot[t]) * kv.rowBytes();
        int src = t * qkvDim + kh * headDim;
        kv.store(qkv, src + kOff, keys, dst);
        kv.store(qkv, src + vOff, values, dst);
      }
    }
  }

  /**
   * Splits a step's rows into attention chunks: consecutive rows that attend over the same slot
   * array (one sequence's chain rows; every tree row has its own), at most {@link #CHUNK_ROWS} to a
   * chunk. Returns the chunk boundaries, (chunks + 1) row indices.
   */
  static int[] chunks(int[][] rowSlots, int rows) {
    int[] bounds = new int[rows + 1];
    int c = 0;
    for (int t = 0; t < rows; t++) {
      if (t == 0 || rowSlots[t] != rowSlots[t - 1] || t - bounds[c - 1] == CHUNK_ROWS) {
        bounds[c++] = t;
      }
    }
    bounds[c] = rows;
    return java.util.Arrays.copyOf(bounds, c + 1);
  }

  /**
   * Computes units {@code [from, to)} of a step; unit u is chunk {@code u / heads} ({@link
   * #chunks}), head {@code u % heads}. A chunk's rows run one after another on one thread, so the
   * head's keys and values, read from memory for the first row (a verify's k + 1 rows, a prefill
   * tile), are still in L2 for the others.
   *
   * @param kv how the pool's rows are read ({@link #rows})
   * @param qkv (rows, qkvDim) roped queries at column 0
   * @param rowPos position of each row in its sequence: it attends to keys 0..rowPos
   * @param rowSlots per row, its sequence's slot of every position (shared by its rows)
   * @param chunkStart chunk boundaries from {@link #chunks}
   * @param out (rows, heads * headDim)
   * @param capture per row, where its probabilities go (or null): (heads, n, length) of its
   *     sequence, with {@code captureRow[t]} its index among the sequence's new rows
   * @param scores scratch of at least max context floats, one per thread
   */
  void attend(
      KvRows kv,
      float[] qkv,
      int qkvDim,
      int[] rowPos,
      int[][] rowSlots,
      int[] chunkStart,
      ByteBuffer keys,
      ByteBuffer values,
      int slots,
      float[] out,
      float[][] capture,
      int[] captureRow,
      int[] captureRows,
      float[] scores,
      int from,
      int to) {
    int width = heads * headDim;
    for (int u = from; u < to; u++) {
      int h = u % heads;
      int headBase = h / group * slots;
      for (int t = chunkStart[u / heads], end = chunkStart[u / heads + 1]; t < end; t++) {
        int len = rowPos[t] + 1;
        int[] slot = rowSlots[t];
        int q = t * qkvDim + h * headDim;
        kv.scores(qkv, q, slot, headBase, keys, len, scores);
        float inv = 1f / expAndSum(scores, len, max(scores, len));
        kv.values(scores, inv, len, slot, headBase, values, out, t * width + h * headDim);
        float[] cap = capture == null ? null : capture[t];
        if (cap != null) {
          int base = (h * captureRows[t] + captureRow[t]) * slot.length;
          for (int j = 0; j < len; j++) {
            cap[base + j] = scores[j] * inv;
          }
        }
      }
    }
  }

  /** The largest of scores[0 .. len). */
  private static float max(float[] scores, int len) {
    int bound = S.loopBound(len);
    FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int j = 0;
    for (; j < bound; j += S.length()) {
      acc = acc.max(FloatVector.fromArray(S, scores, j));
    }
    float max = acc.reduceLanes(VectorOperators.MAX);
    for (; j < len; j++) {
      max = Math.max(max, scores[j]);
    }
    return max;
  }

  /** scores[j] = e^(scores[j] - max) for j < len; returns their sum. */
  private static float expAndSum(float[] scores, int len, float max) {
    int bound = S.loopBound(len);
    FloatVector acc = FloatVector.zero(S);
    int j = 0;
    for (; j < bound; j += S.length()) {
      FloatVector e = FloatVector.fromArray(S, scores, j).sub(max).lanewise(VectorOperators.EXP);
      e.intoArray(scores, j);
      acc = acc.add(e);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; j < len; j++) {
      float e = (float) Math.exp(scores[j] - max);
      scores[j] = e;
      sum += e;
    }
    return sum;
  }
}
