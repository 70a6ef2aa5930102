package io.draftmesh.engine.model.cpu;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** {@link KvRows} of float32 elements in native order, read and written with vector loads. */
final class F32Rows implements KvRows {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> S128 = FloatVector.SPECIES_128;
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();

  private final int headDim;
  private final float scale;
  private final boolean wide; // headDim is a multiple of the preferred species' lanes
  private final boolean narrow; // else a multiple of 4 lanes
  private final boolean quad; // headDim is exactly four vectors: one row of q in registers
  private final boolean pair; // headDim is exactly two vectors: likewise

  F32Rows(int headDim, float scale) {
    this.headDim = headDim;
    this.scale = scale;
    this.wide = headDim % S.length() == 0;
    this.narrow = !wide && headDim % S128.length() == 0;
    this.quad = headDim == 4 * S.length();
    this.pair = headDim == 2 * S.length();
  }

  @Override
  public int rowBytes() {
    return headDim * Float.BYTES;
  }

  @Override
  public void store(float[] src, int off, ByteBuffer dst, int rowByte) {
    storeRow(src, off, dst, rowByte);
  }

  @Override
  public void scores(
      float[] qkv, int q, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores) {
    if (quad) {
      scoresQuad(qkv, q, slot, headBase, keys, len, scores);
    } else if (pair) {
      scoresPair(qkv, q, slot, headBase, keys, len, scores);
    } else {
      for (int j = 0; j < len; j++) {
        scores[j] = dot(qkv, q, keys, (headBase + slot[j]) * headDim * Float.BYTES) * scale;
      }
    }
  }

  @Override
  public void values(
      float[] scores,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o) {
    if (quad) {
      valuesQuad(scores, inv, len, slot, headBase, values, out, o);
    } else if (pair) {
      valuesPair(scores, inv, len, slot, headBase, values, out, o);
    } else {
      weightedValues(scores, inv, len, slot, headBase, values, out, o);
    }
  }

  private void storeRow(float[] src, int off, ByteBuffer dst, int byteOff) {
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
