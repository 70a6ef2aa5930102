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

  /** Rows of a chunk that {@link KvRows#scores4}/{@link KvRows#values4} take together. */
  static final int GROUP_ROWS = 4;

  /**
   * Rows taken together at most: five, when they are what is left of a chunk (a 4-token verify), by
   * {@link KvRows#scores5}/{@link KvRows#values5}, so that each key and value is read once.
   */
  static final int MAX_GROUP_ROWS = 5;

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
   * @param scores scratch of {@link #MAX_GROUP_ROWS} x max context floats, one per thread
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
    int stride = scores.length / MAX_GROUP_ROWS;
    int[] q = new int[MAX_GROUP_ROWS];
    int[] o = new int[MAX_GROUP_ROWS];
    float[] inv = new float[MAX_GROUP_ROWS];
    for (int u = from; u < to; u++) {
      int h = u % heads;
      int headBase = h / group * slots;
      int t = chunkStart[u / heads];
      int end = chunkStart[u / heads + 1];
      // Four rows of a chunk at a time, five when five are left: they attend over the same slots
      // (a chain's rows), so a kernel can load each key and value once for all of them; keys past
      // a row's own length are scored and left out of its softmax, and weigh zero in its values.
      while (end - t >= GROUP_ROWS) {
        int n = end - t == MAX_GROUP_ROWS ? MAX_GROUP_ROWS : GROUP_ROWS;
        int[] slot = rowSlots[t];
        int len = 0;
        for (int r = 0; r < n; r++) {
          q[r] = (t + r) * qkvDim + h * headDim;
          o[r] = (t + r) * width + h * headDim;
          len = Math.max(len, rowPos[t + r] + 1);
        }
        if (n == MAX_GROUP_ROWS) {
          kv.scores5(qkv, q, slot, headBase, keys, len, scores, stride);
        } else {
          kv.scores4(qkv, q, slot, headBase, keys, len, scores, stride);
        }
        for (int r = 0; r < n; r++) {
          int own = rowPos[t + r] + 1;
          int off = r * stride;
          inv[r] = 1f / expAndSum(scores, off, own, max(scores, off, own));
          java.util.Arrays.fill(scores, off + own, off + len, 0f);
        }
        if (n == MAX_GROUP_ROWS) {
          kv.values5(scores, stride, inv, len, slot, headBase, values, out, o);
        } else {
          kv.values4(scores, stride, inv, len, slot, headBase, values, out, o);
        }
        for (int r = 0; r < n; r++) {
          capture(
              capture,
              captureRow,
              captureRows,
              t + r,
              h,
              slot,
              scores,
              r * stride,
              inv[r],
              rowPos[t + r] + 1);
        }
        t += n;
      }
      for (; t < end; t++) {
        int len = rowPos[t] + 1;
        int[] slot = rowSlots[t];
        kv.scores(qkv, t * qkvDim + h * headDim, slot, headBase, keys, len, scores, 0);
        float rowInv = 1f / expAndSum(scores, 0, len, max(scores, 0, len));
        kv.values(scores, 0, rowInv, len, slot, headBase, values, out, t * width + h * headDim);
        capture(capture, captureRow, captureRows, t, h, slot, scores, 0, rowInv, len);
      }
    }
  }

  /** Row t's probabilities over its {@code len} keys, head h, into its capture (if any). */
  private static void capture(
      float[][] capture,
      int[] captureRow,
      int[] captureRows,
      int t,
      int h,
      int[] slot,
      float[] scores,
      int off,
      float inv,
      int len) {
    float[] cap = capture == null ? null : capture[t];
    if (cap != null) {
      int base = (h * captureRows[t] + captureRow[t]) * slot.length;
      for (int j = 0; j < len; j++) {
        cap[base + j] = scores[off + j] * inv;
      }
    }
  }

  /** The largest of scores[off .. off + len). */
  private static float max(float[] scores, int off, int len) {
    int bound = S.loopBound(len);
    FloatVector acc = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int j = 0;
    for (; j < bound; j += S.length()) {
      acc = acc.max(FloatVector.fromArray(S, scores, off + j));
    }
    float max = acc.reduceLanes(VectorOperators.MAX);
    for (; j < len; j++) {
      max = Math.max(max, scores[off + j]);
    }
    return max;
  }

  /** scores[off + j] = e^(scores[off + j] - max) for j < len; returns their sum. */
  private static float expAndSum(float[] scores, int off, int len, float max) {
    int bound = S.loopBound(len);
    FloatVector acc = FloatVector.zero(S);
    int j = 0;
    for (; j < bound; j += S.length()) {
      FloatVector e =
          FloatVector.fromArray(S, scores, off + j).sub(max).lanewise(VectorOperators.EXP);
      e.intoArray(scores, off + j);
      acc = acc.add(e);
    }
    float sum = acc.reduceLanes(VectorOperators.ADD);
    for (; j < len; j++) {
      float e = (float) Math.exp(scores[off + j] - max);
      scores[off + j] = e;
      sum += e;
    }
    return sum;
  }
}
