package io.draftmesh.engine.model.cpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal GQA attention over the paged KV pool, in place: keys and values are read from the pool's
 * off-heap buffers (layout (kvHeads, slots, headDim) float32, native order) slot by slot through
 * each sequence's block table, with no copy of the history. One unit of work is one query row of
 * one head; units are independent, so a step's units are split across threads.
 */
final class PagedAttention {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> S128 = FloatVector.SPECIES_128;
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();

  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int group;
  private final float scale;
  private final boolean wide; // headDim is a multiple of the preferred species' lanes
  private final boolean narrow; // else a multiple of 4 lanes

  PagedAttention(int heads, int kvHeads, int headDim) {
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.group = heads / kvHeads;
    this.scale = (float) (1.0 / Math.sqrt(headDim));
    this.wide = headDim % S.length() == 0;
    this.narrow = !wide && headDim % S128.length() == 0;
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
   * Computes units {@code [from, to)} of a step; unit u is query row {@code u / heads}, head {@code
   * u % heads}.
   *
   * @param qkv (rows, qkvDim) roped queries at column 0
   * @param rowPos position of each row in its sequence: it attends to keys 0..rowPos
   * @param rowSlots per row, its sequence's slot of every position (shared by its rows)
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
      int t = u / heads;
      int h = u % heads;
      int kh = h / group;
      int len = rowPos[t] + 1;
      int[] slot = rowSlots[t];
      int q = t * qkvDim + h * headDim;
      int headBase = kh * slots;
      float max = Float.NEGATIVE_INFINITY;
      for (int j = 0; j < len; j++) {
        int k = (headBase + slot[j]) * headDim * Float.BYTES;
        float s = dot(qkv, q, keys, k) * scale;
        scores[j] = s;
        max = Math.max(max, s);
      }
      float sum = expAndSum(scores, len, max);
      float inv = 1f / sum;
      int o = t * width + h * headDim;
      weightedValues(scores, inv, len, slot, headBase, values, out, o);
      float[] cap = capture == null ? null : capture[t];
      if (cap != null) {
        int base = (h * captureRows[t] + captureRow[t]) * slotsLength(rowSlots[t]);
        for (int j = 0; j < len; j++) {
          cap[base + j] = scores[j] * inv;
        }
      }
    }
  }

  /** A sequence's length: its slot array holds exactly one slot per position. */
  private static int slotsLength(int[] slots) {
    return slots.length;
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
