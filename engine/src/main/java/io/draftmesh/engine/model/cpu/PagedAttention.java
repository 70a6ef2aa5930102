package io.draftmesh.engine.model.cpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal GQA attention over the paged KV pool, in place: keys and values are read from the pool's
 * off-heap buffers (layout (kvHeads, slots, headDim) float32, native order) slot by slot through
 * each sequence's block table, with no copy of the history. One unit of work is one head of a chunk
 * of up to {@link #CHUNK_ROWS} rows of one sequence; units are independent, so a step's units are
 * split across threads.
 */
final class PagedAttention {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> S128 = FloatVector.SPECIES_128;
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();

  /**
   * Rows of one sequence a unit of work takes at most: enough to share a head's keys in L2, few
   * enough that a prefill still splits into many units.
   */
  static final int CHUNK_ROWS = 8;

  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int group;
  private final float scale;
  private final boolean wide; // headDim is a multiple of the preferred species' lanes
  private final boolean narrow; // else a multiple of 4 lanes
  private final boolean quad; // headDim is exactly four vectors: one row of q in registers
  private final boolean pair; // headDim is exactly two vectors: likewise

  PagedAttention(int heads, int kvHeads, int headDim) {
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.group = heads / kvHeads;
    this.scale = (float) (1.0 / Math.sqrt(headDim));
    this.wide = headDim % S.length() == 0;
    this.narrow = !wide && headDim % S128.length() == 0;
    this.quad = headDim == 4 * S.length();
    this.pair = headDim == 2 * S.length();
  }

  /**
   * Writes rows' keys and values (already roped) into their slots: qkv rows are (q | k | v) with k
   * at {@code heads * headDim}.
   */
  void writeKv(
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
        int dst = ((kh * slots) + rowSlot[t]) * headDim * Float.BYTES;
        int src = t * qkvDim + kh * headDim;
        store(qkv, src + kOff, keys, dst);
        store(qkv, src + vOff, values, dst);
      }
    }
  }

  private void store(float[] src, int off, ByteBuffer dst, int byteOff) {
    int i = 0;
    if (wide) {
      for (; i < headDim; i += S.length()) {
        FloatVector.fromArray(S, src, off + i).intoByteBuffer(dst, byteOff + i * 4, ORDER);
      }
    } else if (narrow) {
      for (; i < headDim; i += S128.length()) {
        FloatVector.fromArray(S128, src, off + i).intoByteBuffer(dst, byteOff + i * 4, ORDER);
      }
    }
    for (; i < headDim; i++) {
      dst.putFloat(byteOff + i * 4, src[off + i]);
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
        if (quad) {
          scoresQuad(qkv, q, slot, headBase, keys, len, scores);
        } else if (pair) {
          scoresPair(qkv, q, slot, headBase, keys, len, scores);
        } else {
          for (int j = 0; j < len; j++) {
            scores[j] = dot(qkv, q, keys, (headBase + slot[j]) * headDim * Float.BYTES) * scale;
          }
        }
        float inv = 1f / expAndSum(scores, len, max(scores, len));
        int o = t * width + h * headDim;
        if (quad) {
          valuesQuad(scores, inv, len, slot, headBase, values, out, o);
        } else if (pair) {
          valuesPair(scores, inv, len, slot, headBase, values, out, o);
        } else {
          weightedValues(scores, inv, len, slot, headBase, values, out, o);
        }
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

  /**
   * One row's scores over keys {@code [0, len)} when a head is four vectors: the query stays in
   * registers and each key is four FMAs and one lane reduction (with the query reloaded per key, as
   * the general {@link #dot} does, a key cost about twice as much).
   */
  private void scoresQuad(
      float[] qkv, int q, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores) {
    int step = S.length();
    FloatVector q0 = FloatVector.fromArray(S, qkv, q).mul(scale);
    FloatVector q1 = FloatVector.fromArray(S, qkv, q + step).mul(scale);
    FloatVector q2 = FloatVector.fromArray(S, qkv, q + 2 * step).mul(scale);
    FloatVector q3 = FloatVector.fromArray(S, qkv, q + 3 * step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    for (int j = 0; j < len; j++) {
      int k = (headBase + slot[j]) * rowBytes;
      FloatVector a = q0.mul(FloatVector.fromByteBuffer(S, keys, k, ORDER));
      FloatVector b = q1.mul(FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER));
      a = q2.fma(FloatVector.fromByteBuffer(S, keys, k + 2 * vecBytes, ORDER), a);
      b = q3.fma(FloatVector.fromByteBuffer(S, keys, k + 3 * vecBytes, ORDER), b);
      scores[j] = a.add(b).reduceLanes(VectorOperators.ADD);
    }
  }

  /**
   * {@code out[o ..] = inv * sum_j scores[off + j] * value row of slot[j]} when a head is four
   * vectors: the output's four vectors stay in registers (two sets, alternate keys) while the keys
   * stream.
   */
  private void valuesQuad(
      float[] scores,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o) {
    int step = S.length();
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = a0;
    FloatVector a2 = a0;
    FloatVector a3 = a0;
    FloatVector b0 = a0;
    FloatVector b1 = a0;
    FloatVector b2 = a0;
    FloatVector b3 = a0;
    int j = 0;
    for (; j + 2 <= len; j += 2) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      a2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER).fma(p, a2);
      a3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER).fma(p, a3);
      int w = (headBase + slot[j + 1]) * rowBytes;
      FloatVector u = FloatVector.broadcast(S, scores[j + 1]);
      b0 = FloatVector.fromByteBuffer(S, values, w, ORDER).fma(u, b0);
      b1 = FloatVector.fromByteBuffer(S, values, w + vecBytes, ORDER).fma(u, b1);
      b2 = FloatVector.fromByteBuffer(S, values, w + 2 * vecBytes, ORDER).fma(u, b2);
      b3 = FloatVector.fromByteBuffer(S, values, w + 3 * vecBytes, ORDER).fma(u, b3);
    }
    if (j < len) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      a2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER).fma(p, a2);
      a3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER).fma(p, a3);
    }
    a0.add(b0).mul(inv).intoArray(out, o);
    a1.add(b1).mul(inv).intoArray(out, o + step);
    a2.add(b2).mul(inv).intoArray(out, o + 2 * step);
    a3.add(b3).mul(inv).intoArray(out, o + 3 * step);
  }

  /** {@link #scoresQuad} for a head of two vectors. */
  private void scoresPair(
      float[] qkv, int q, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores) {
    int step = S.length();
    FloatVector q0 = FloatVector.fromArray(S, qkv, q).mul(scale);
    FloatVector q1 = FloatVector.fromArray(S, qkv, q + step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    for (int j = 0; j < len; j++) {
      int k = (headBase + slot[j]) * rowBytes;
      FloatVector a = q0.mul(FloatVector.fromByteBuffer(S, keys, k, ORDER));
      a = q1.fma(FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER), a);
      scores[j] = a.reduceLanes(VectorOperators.ADD);
    }
  }

  /** {@link #valuesQuad} for a head of two vectors. */
  private void valuesPair(
      float[] scores,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o) {
    int step = S.length();
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = a0;
    FloatVector b0 = a0;
    FloatVector b1 = a0;
    int j = 0;
    for (; j + 2 <= len; j += 2) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      int w = (headBase + slot[j + 1]) * rowBytes;
      FloatVector u = FloatVector.broadcast(S, scores[j + 1]);
      b0 = FloatVector.fromByteBuffer(S, values, w, ORDER).fma(u, b0);
      b1 = FloatVector.fromByteBuffer(S, values, w + vecBytes, ORDER).fma(u, b1);
    }
    if (j < len) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
    }
    a0.add(b0).mul(inv).intoArray(out, o);
    a1.add(b1).mul(inv).intoArray(out, o + step);
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

  private float dot(float[] q, int qOff, ByteBuffer keys, int kByte) {
    int i = 0;
    float sum = 0;
    if (wide) {
      FloatVector acc = FloatVector.zero(S);
      FloatVector acc1 = acc; // two chains: a 64-wide head is four dependent FMAs otherwise
      int step = S.length();
      for (; i + 2 * step <= headDim; i += 2 * step) {
        acc =
            FloatVector.fromArray(S, q, qOff + i)
                .fma(FloatVector.fromByteBuffer(S, keys, kByte + i * 4, ORDER), acc);
        acc1 =
            FloatVector.fromArray(S, q, qOff + i + step)
                .fma(FloatVector.fromByteBuffer(S, keys, kByte + (i + step) * 4, ORDER), acc1);
      }
      if (i < headDim) {
        acc =
            FloatVector.fromArray(S, q, qOff + i)
                .fma(FloatVector.fromByteBuffer(S, keys, kByte + i * 4, ORDER), acc);
        i += step;
      }
      sum = acc.add(acc1).reduceLanes(VectorOperators.ADD);
    } else if (narrow) {
      FloatVector acc = FloatVector.zero(S128);
      for (; i < headDim; i += S128.length()) {
        acc =
            FloatVector.fromArray(S128, q, qOff + i)
                .fma(FloatVector.fromByteBuffer(S128, keys, kByte + i * 4, ORDER), acc);
      }
      sum = acc.reduceLanes(VectorOperators.ADD);
    }
    for (; i < headDim; i++) {
      sum += q[qOff + i] * keys.getFloat(kByte + i * 4);
    }
    return sum;
  }

  /**
   * {@code out[o ..] = inv * sum_j scores[j] * value row of slot[j]}. Wide heads keep a vector of
   * the output in registers while walking all keys (two accumulators, alternate keys), one vector
   * of dimensions at a time: no load/store of the output per key, and each value row's cache lines
   * are still read once.
   */
  private void weightedValues(
      float[] scores,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o) {
    if (!wide) {
      java.util.Arrays.fill(out, o, o + headDim, 0f);
      for (int j = 0; j < len; j++) {
        axpy(scores[j] * inv, values, (headBase + slot[j]) * headDim * Float.BYTES, out, o);
      }
      return;
    }
    int rowBytes = headDim * Float.BYTES;
    for (int c = 0; c < headDim; c += S.length()) {
      int cb = c * Float.BYTES;
      FloatVector a0 = FloatVector.zero(S);
      FloatVector a1 = a0;
      int j = 0;
      for (; j + 2 <= len; j += 2) {
        int v0 = (headBase + slot[j]) * rowBytes + cb;
        int v1 = (headBase + slot[j + 1]) * rowBytes + cb;
        a0 =
            FloatVector.fromByteBuffer(S, values, v0, ORDER)
                .fma(FloatVector.broadcast(S, scores[j]), a0);
        a1 =
            FloatVector.fromByteBuffer(S, values, v1, ORDER)
                .fma(FloatVector.broadcast(S, scores[j + 1]), a1);
      }
      if (j < len) {
        int v0 = (headBase + slot[j]) * rowBytes + cb;
        a0 =
            FloatVector.fromByteBuffer(S, values, v0, ORDER)
                .fma(FloatVector.broadcast(S, scores[j]), a0);
      }
      a0.add(a1).mul(inv).intoArray(out, o + c);
    }
  }

  /** out[o ..] += p * value row. */
  private void axpy(float p, ByteBuffer values, int vByte, float[] out, int o) {
    int i = 0;
    if (wide) {
      FloatVector pv = FloatVector.broadcast(S, p);
      for (; i < headDim; i += S.length()) {
        FloatVector.fromByteBuffer(S, values, vByte + i * 4, ORDER)
            .fma(pv, FloatVector.fromArray(S, out, o + i))
            .intoArray(out, o + i);
      }
    } else if (narrow) {
      FloatVector pv = FloatVector.broadcast(S128, p);
      for (; i < headDim; i += S128.length()) {
        FloatVector.fromByteBuffer(S128, values, vByte + i * 4, ORDER)
            .fma(pv, FloatVector.fromArray(S128, out, o + i))
            .intoArray(out, o + i);
      }
    }
    for (; i < headDim; i++) {
      out[o + i] += p * values.getFloat(vByte + i * 4);
    }
  }
}
