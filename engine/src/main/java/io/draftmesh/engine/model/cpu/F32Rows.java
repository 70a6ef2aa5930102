package io.draftmesh.engine.model.cpu;

import static jdk.incubator.vector.VectorOperators.ADD;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
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
  private final boolean oct; // headDim is exactly eight vectors (64 wide on AVX2): likewise
  private final boolean quad4; // four rows of a four-vector head fit AVX-512's 32 registers

  F32Rows(int headDim, float scale) {
    this.headDim = headDim;
    this.scale = scale;
    this.wide = headDim % S.length() == 0;
    this.narrow = !wide && headDim % S128.length() == 0;
    this.quad = headDim == 4 * S.length();
    this.pair = headDim == 2 * S.length();
    this.oct = headDim == 8 * S.length();
    this.quad4 = quad && S.length() >= 16;
  }

  @Override
  public int rowBytes() {
    return headDim * Float.BYTES;
  }

  @Override
  public void store(float[] src, int off, ByteBuffer dst, int byteOff) {
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

  @Override
  public void scores(
      float[] qkv,
      int q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int off) {
    if (quad) {
      scoresQuad(qkv, q, slot, headBase, keys, len, scores, off);
    } else if (pair) {
      scoresPair(qkv, q, slot, headBase, keys, len, scores, off);
    } else if (oct) {
      scoresOct(qkv, q, slot, headBase, keys, len, scores, off);
    } else {
      for (int j = 0; j < len; j++) {
        scores[off + j] = dot(qkv, q, keys, (headBase + slot[j]) * headDim * Float.BYTES) * scale;
      }
    }
  }

  @Override
  public void values(
      float[] scores,
      int off,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o) {
    if (quad) {
      valuesQuad(scores, off, inv, len, slot, headBase, values, out, o);
    } else if (pair) {
      valuesPair(scores, off, inv, len, slot, headBase, values, out, o);
    } else if (oct) {
      valuesOct(scores, off, inv, len, slot, headBase, values, out, o);
    } else {
      weightedValues(scores, off, inv, len, slot, headBase, values, out, o);
    }
  }

  @Override
  public void scores4(
      float[] qkv,
      int[] q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int stride) {
    if (!quad4) {
      KvRows.super.scores4(qkv, q, slot, headBase, keys, len, scores, stride);
      return;
    }
    int step = S.length();
    FloatVector a0 = FloatVector.fromArray(S, qkv, q[0]).mul(scale);
    FloatVector a1 = FloatVector.fromArray(S, qkv, q[0] + step).mul(scale);
    FloatVector a2 = FloatVector.fromArray(S, qkv, q[0] + 2 * step).mul(scale);
    FloatVector a3 = FloatVector.fromArray(S, qkv, q[0] + 3 * step).mul(scale);
    FloatVector b0 = FloatVector.fromArray(S, qkv, q[1]).mul(scale);
    FloatVector b1 = FloatVector.fromArray(S, qkv, q[1] + step).mul(scale);
    FloatVector b2 = FloatVector.fromArray(S, qkv, q[1] + 2 * step).mul(scale);
    FloatVector b3 = FloatVector.fromArray(S, qkv, q[1] + 3 * step).mul(scale);
    FloatVector c0 = FloatVector.fromArray(S, qkv, q[2]).mul(scale);
    FloatVector c1 = FloatVector.fromArray(S, qkv, q[2] + step).mul(scale);
    FloatVector c2 = FloatVector.fromArray(S, qkv, q[2] + 2 * step).mul(scale);
    FloatVector c3 = FloatVector.fromArray(S, qkv, q[2] + 3 * step).mul(scale);
    FloatVector d0 = FloatVector.fromArray(S, qkv, q[3]).mul(scale);
    FloatVector d1 = FloatVector.fromArray(S, qkv, q[3] + step).mul(scale);
    FloatVector d2 = FloatVector.fromArray(S, qkv, q[3] + 2 * step).mul(scale);
    FloatVector d3 = FloatVector.fromArray(S, qkv, q[3] + 3 * step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    float[] part = LaneSums.block();
    int rowPart = LaneSums.KEYS * step; // one query row's partials in the block
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector k0 = FloatVector.fromByteBuffer(S, keys, k, ORDER);
        FloatVector k1 = FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER);
        FloatVector k2 = FloatVector.fromByteBuffer(S, keys, k + 2 * vecBytes, ORDER);
        FloatVector k3 = FloatVector.fromByteBuffer(S, keys, k + 3 * vecBytes, ORDER);
        int at = j * step;
        a2.fma(k2, a0.mul(k0)).add(a3.fma(k3, a1.mul(k1))).intoArray(part, at);
        b2.fma(k2, b0.mul(k0)).add(b3.fma(k3, b1.mul(k1))).intoArray(part, rowPart + at);
        c2.fma(k2, c0.mul(k0)).add(c3.fma(k3, c1.mul(k1))).intoArray(part, 2 * rowPart + at);
        d2.fma(k2, d0.mul(k0)).add(d3.fma(k3, d1.mul(k1))).intoArray(part, 3 * rowPart + at);
      }
      for (int r = 0; r < 4; r++) {
        LaneSums.sum(part, r * rowPart, n, scores, r * stride + j0);
      }
    }
  }

  @Override
  public void values4(
      float[] scores,
      int stride,
      float[] inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int[] o) {
    if (!quad4) {
      KvRows.super.values4(scores, stride, inv, len, slot, headBase, values, out, o);
      return;
    }
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
    FloatVector c0 = a0;
    FloatVector c1 = a0;
    FloatVector c2 = a0;
    FloatVector c3 = a0;
    FloatVector d0 = a0;
    FloatVector d1 = a0;
    FloatVector d2 = a0;
    FloatVector d3 = a0;
    for (int j = 0; j < len; j++) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector v0 = FloatVector.fromByteBuffer(S, values, v, ORDER);
      FloatVector v1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER);
      FloatVector v2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER);
      FloatVector v3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER);
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = v0.fma(p, a0);
      a1 = v1.fma(p, a1);
      a2 = v2.fma(p, a2);
      a3 = v3.fma(p, a3);
      p = FloatVector.broadcast(S, scores[stride + j]);
      b0 = v0.fma(p, b0);
      b1 = v1.fma(p, b1);
      b2 = v2.fma(p, b2);
      b3 = v3.fma(p, b3);
      p = FloatVector.broadcast(S, scores[2 * stride + j]);
      c0 = v0.fma(p, c0);
      c1 = v1.fma(p, c1);
      c2 = v2.fma(p, c2);
      c3 = v3.fma(p, c3);
      p = FloatVector.broadcast(S, scores[3 * stride + j]);
      d0 = v0.fma(p, d0);
      d1 = v1.fma(p, d1);
      d2 = v2.fma(p, d2);
      d3 = v3.fma(p, d3);
    }
    a0.mul(inv[0]).intoArray(out, o[0]);
    a1.mul(inv[0]).intoArray(out, o[0] + step);
    a2.mul(inv[0]).intoArray(out, o[0] + 2 * step);
    a3.mul(inv[0]).intoArray(out, o[0] + 3 * step);
    b0.mul(inv[1]).intoArray(out, o[1]);
    b1.mul(inv[1]).intoArray(out, o[1] + step);
    b2.mul(inv[1]).intoArray(out, o[1] + 2 * step);
    b3.mul(inv[1]).intoArray(out, o[1] + 3 * step);
    c0.mul(inv[2]).intoArray(out, o[2]);
    c1.mul(inv[2]).intoArray(out, o[2] + step);
    c2.mul(inv[2]).intoArray(out, o[2] + 2 * step);
    c3.mul(inv[2]).intoArray(out, o[2] + 3 * step);
    d0.mul(inv[3]).intoArray(out, o[3]);
    d1.mul(inv[3]).intoArray(out, o[3] + step);
    d2.mul(inv[3]).intoArray(out, o[3] + 2 * step);
    d3.mul(inv[3]).intoArray(out, o[3] + 3 * step);
  }

  @Override
  public void scores5(
      float[] qkv,
      int[] q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int stride) {
    if (!quad4) {
      KvRows.super.scores5(qkv, q, slot, headBase, keys, len, scores, stride);
      return;
    }
    int step = S.length();
    FloatVector a0 = FloatVector.fromArray(S, qkv, q[0]).mul(scale);
    FloatVector a1 = FloatVector.fromArray(S, qkv, q[0] + step).mul(scale);
    FloatVector a2 = FloatVector.fromArray(S, qkv, q[0] + 2 * step).mul(scale);
    FloatVector a3 = FloatVector.fromArray(S, qkv, q[0] + 3 * step).mul(scale);
    FloatVector b0 = FloatVector.fromArray(S, qkv, q[1]).mul(scale);
    FloatVector b1 = FloatVector.fromArray(S, qkv, q[1] + step).mul(scale);
    FloatVector b2 = FloatVector.fromArray(S, qkv, q[1] + 2 * step).mul(scale);
    FloatVector b3 = FloatVector.fromArray(S, qkv, q[1] + 3 * step).mul(scale);
    FloatVector c0 = FloatVector.fromArray(S, qkv, q[2]).mul(scale);
    FloatVector c1 = FloatVector.fromArray(S, qkv, q[2] + step).mul(scale);
    FloatVector c2 = FloatVector.fromArray(S, qkv, q[2] + 2 * step).mul(scale);
    FloatVector c3 = FloatVector.fromArray(S, qkv, q[2] + 3 * step).mul(scale);
    FloatVector d0 = FloatVector.fromArray(S, qkv, q[3]).mul(scale);
    FloatVector d1 = FloatVector.fromArray(S, qkv, q[3] + step).mul(scale);
    FloatVector d2 = FloatVector.fromArray(S, qkv, q[3] + 2 * step).mul(scale);
    FloatVector d3 = FloatVector.fromArray(S, qkv, q[3] + 3 * step).mul(scale);
    FloatVector e0 = FloatVector.fromArray(S, qkv, q[4]).mul(scale);
    FloatVector e1 = FloatVector.fromArray(S, qkv, q[4] + step).mul(scale);
    FloatVector e2 = FloatVector.fromArray(S, qkv, q[4] + 2 * step).mul(scale);
    FloatVector e3 = FloatVector.fromArray(S, qkv, q[4] + 3 * step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    float[] part = LaneSums.block();
    int rowPart = LaneSums.KEYS * step; // one query row's partials in the block
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector k0 = FloatVector.fromByteBuffer(S, keys, k, ORDER);
        FloatVector k1 = FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER);
        FloatVector k2 = FloatVector.fromByteBuffer(S, keys, k + 2 * vecBytes, ORDER);
        FloatVector k3 = FloatVector.fromByteBuffer(S, keys, k + 3 * vecBytes, ORDER);
        int at = j * step;
        a2.fma(k2, a0.mul(k0)).add(a3.fma(k3, a1.mul(k1))).intoArray(part, at);
        b2.fma(k2, b0.mul(k0)).add(b3.fma(k3, b1.mul(k1))).intoArray(part, rowPart + at);
        c2.fma(k2, c0.mul(k0)).add(c3.fma(k3, c1.mul(k1))).intoArray(part, 2 * rowPart + at);
        d2.fma(k2, d0.mul(k0)).add(d3.fma(k3, d1.mul(k1))).intoArray(part, 3 * rowPart + at);
        e2.fma(k2, e0.mul(k0)).add(e3.fma(k3, e1.mul(k1))).intoArray(part, 4 * rowPart + at);
      }
      for (int r = 0; r < 5; r++) {
        LaneSums.sum(part, r * rowPart, n, scores, r * stride + j0);
      }
    }
  }

  @Override
  public void values5(
      float[] scores,
      int stride,
      float[] inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int[] o) {
    if (!quad4) {
      KvRows.super.values5(scores, stride, inv, len, slot, headBase, values, out, o);
      return;
    }
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
    FloatVector c0 = a0;
    FloatVector c1 = a0;
    FloatVector c2 = a0;
    FloatVector c3 = a0;
    FloatVector d0 = a0;
    FloatVector d1 = a0;
    FloatVector d2 = a0;
    FloatVector d3 = a0;
    FloatVector e0 = a0;
    FloatVector e1 = a0;
    FloatVector e2 = a0;
    FloatVector e3 = a0;
    for (int j = 0; j < len; j++) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector v0 = FloatVector.fromByteBuffer(S, values, v, ORDER);
      FloatVector v1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER);
      FloatVector v2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER);
      FloatVector v3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER);
      FloatVector p = FloatVector.broadcast(S, scores[j]);
      a0 = v0.fma(p, a0);
      a1 = v1.fma(p, a1);
      a2 = v2.fma(p, a2);
      a3 = v3.fma(p, a3);
      p = FloatVector.broadcast(S, scores[stride + j]);
      b0 = v0.fma(p, b0);
      b1 = v1.fma(p, b1);
      b2 = v2.fma(p, b2);
      b3 = v3.fma(p, b3);
      p = FloatVector.broadcast(S, scores[2 * stride + j]);
      c0 = v0.fma(p, c0);
      c1 = v1.fma(p, c1);
      c2 = v2.fma(p, c2);
      c3 = v3.fma(p, c3);
      p = FloatVector.broadcast(S, scores[3 * stride + j]);
      d0 = v0.fma(p, d0);
      d1 = v1.fma(p, d1);
      d2 = v2.fma(p, d2);
      d3 = v3.fma(p, d3);
      p = FloatVector.broadcast(S, scores[4 * stride + j]);
      e0 = v0.fma(p, e0);
      e1 = v1.fma(p, e1);
      e2 = v2.fma(p, e2);
      e3 = v3.fma(p, e3);
    }
    a0.mul(inv[0]).intoArray(out, o[0]);
    a1.mul(inv[0]).intoArray(out, o[0] + step);
    a2.mul(inv[0]).intoArray(out, o[0] + 2 * step);
    a3.mul(inv[0]).intoArray(out, o[0] + 3 * step);
    b0.mul(inv[1]).intoArray(out, o[1]);
    b1.mul(inv[1]).intoArray(out, o[1] + step);
    b2.mul(inv[1]).intoArray(out, o[1] + 2 * step);
    b3.mul(inv[1]).intoArray(out, o[1] + 3 * step);
    c0.mul(inv[2]).intoArray(out, o[2]);
    c1.mul(inv[2]).intoArray(out, o[2] + step);
    c2.mul(inv[2]).intoArray(out, o[2] + 2 * step);
    c3.mul(inv[2]).intoArray(out, o[2] + 3 * step);
    d0.mul(inv[3]).intoArray(out, o[3]);
    d1.mul(inv[3]).intoArray(out, o[3] + step);
    d2.mul(inv[3]).intoArray(out, o[3] + 2 * step);
    d3.mul(inv[3]).intoArray(out, o[3] + 3 * step);
    e0.mul(inv[4]).intoArray(out, o[4]);
    e1.mul(inv[4]).intoArray(out, o[4] + step);
    e2.mul(inv[4]).intoArray(out, o[4] + 2 * step);
    e3.mul(inv[4]).intoArray(out, o[4] + 3 * step);
  }

  /**
   * One row's scores over keys {@code [0, len)} when a head is four vectors: the query stays in
   * registers and each key is four FMAs and one lane reduction (with the query reloaded per key, as
   * the general {@link #dot} does, a key cost about twice as much).
   */
  private void scoresQuad(
      float[] qkv,
      int q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int off) {
    int step = S.length();
    FloatVector q0 = FloatVector.fromArray(S, qkv, q).mul(scale);
    FloatVector q1 = FloatVector.fromArray(S, qkv, q + step).mul(scale);
    FloatVector q2 = FloatVector.fromArray(S, qkv, q + 2 * step).mul(scale);
    FloatVector q3 = FloatVector.fromArray(S, qkv, q + 3 * step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector a = q0.mul(FloatVector.fromByteBuffer(S, keys, k, ORDER));
        FloatVector b = q1.mul(FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER));
        a = q2.fma(FloatVector.fromByteBuffer(S, keys, k + 2 * vecBytes, ORDER), a);
        b = q3.fma(FloatVector.fromByteBuffer(S, keys, k + 3 * vecBytes, ORDER), b);
        a.add(b).intoArray(part, j * step);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
    }
  }

  /**
   * {@code out[o ..] = inv * sum_j scores[off + j] * value row of slot[j]} when a head is four
   * vectors: the output's four vectors stay in registers (two sets, alternate keys) while the keys
   * stream.
   */
  private void valuesQuad(
      float[] scores,
      int off,
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
      FloatVector p = FloatVector.broadcast(S, scores[off + j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      a2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER).fma(p, a2);
      a3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER).fma(p, a3);
      int w = (headBase + slot[j + 1]) * rowBytes;
      FloatVector u = FloatVector.broadcast(S, scores[off + j + 1]);
      b0 = FloatVector.fromByteBuffer(S, values, w, ORDER).fma(u, b0);
      b1 = FloatVector.fromByteBuffer(S, values, w + vecBytes, ORDER).fma(u, b1);
      b2 = FloatVector.fromByteBuffer(S, values, w + 2 * vecBytes, ORDER).fma(u, b2);
      b3 = FloatVector.fromByteBuffer(S, values, w + 3 * vecBytes, ORDER).fma(u, b3);
    }
    if (j < len) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[off + j]);
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
      float[] qkv,
      int q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int off) {
    int step = S.length();
    FloatVector q0 = FloatVector.fromArray(S, qkv, q).mul(scale);
    FloatVector q1 = FloatVector.fromArray(S, qkv, q + step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector a = q0.mul(FloatVector.fromByteBuffer(S, keys, k, ORDER));
        a = q1.fma(FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER), a);
        a.intoArray(part, j * step);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
    }
  }

  /** {@link #valuesQuad} for a head of two vectors. */
  private void valuesPair(
      float[] scores,
      int off,
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
      FloatVector p = FloatVector.broadcast(S, scores[off + j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      int w = (headBase + slot[j + 1]) * rowBytes;
      FloatVector u = FloatVector.broadcast(S, scores[off + j + 1]);
      b0 = FloatVector.fromByteBuffer(S, values, w, ORDER).fma(u, b0);
      b1 = FloatVector.fromByteBuffer(S, values, w + vecBytes, ORDER).fma(u, b1);
    }
    if (j < len) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[off + j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
    }
    a0.add(b0).mul(inv).intoArray(out, o);
    a1.add(b1).mul(inv).intoArray(out, o + step);
  }

  /**
   * {@link #scoresQuad} for a head of eight vectors (64 wide on AVX2, 128 on AVX-512): the query's
   * eight vectors and four partial sums fit AVX2's 16 registers. With the query reloaded per key
   * ({@link #dot}) a key of the zoo target's 64-wide head cost 20-24 ns on AVX2, 10-12 ns so.
   */
  private void scoresOct(
      float[] qkv,
      int q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int off) {
    int step = S.length();
    FloatVector q0 = FloatVector.fromArray(S, qkv, q).mul(scale);
    FloatVector q1 = FloatVector.fromArray(S, qkv, q + step).mul(scale);
    FloatVector q2 = FloatVector.fromArray(S, qkv, q + 2 * step).mul(scale);
    FloatVector q3 = FloatVector.fromArray(S, qkv, q + 3 * step).mul(scale);
    FloatVector q4 = FloatVector.fromArray(S, qkv, q + 4 * step).mul(scale);
    FloatVector q5 = FloatVector.fromArray(S, qkv, q + 5 * step).mul(scale);
    FloatVector q6 = FloatVector.fromArray(S, qkv, q + 6 * step).mul(scale);
    FloatVector q7 = FloatVector.fromArray(S, qkv, q + 7 * step).mul(scale);
    int rowBytes = headDim * Float.BYTES;
    int vecBytes = step * Float.BYTES;
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector a = q0.mul(FloatVector.fromByteBuffer(S, keys, k, ORDER));
        FloatVector b = q1.mul(FloatVector.fromByteBuffer(S, keys, k + vecBytes, ORDER));
        FloatVector c = q2.mul(FloatVector.fromByteBuffer(S, keys, k + 2 * vecBytes, ORDER));
        FloatVector d = q3.mul(FloatVector.fromByteBuffer(S, keys, k + 3 * vecBytes, ORDER));
        a = q4.fma(FloatVector.fromByteBuffer(S, keys, k + 4 * vecBytes, ORDER), a);
        b = q5.fma(FloatVector.fromByteBuffer(S, keys, k + 5 * vecBytes, ORDER), b);
        c = q6.fma(FloatVector.fromByteBuffer(S, keys, k + 6 * vecBytes, ORDER), c);
        d = q7.fma(FloatVector.fromByteBuffer(S, keys, k + 7 * vecBytes, ORDER), d);
        a.add(b).add(c.add(d)).intoArray(part, j * step);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
    }
  }

  /**
   * {@link #valuesQuad} for a head of eight vectors: the output's eight vectors are eight
   * independent FMA chains, enough to hide the FMA latency with one set (two would spill AVX2's 16
   * registers). Column by column ({@link #weightedValues}) a key cost 17-24 ns on AVX2, 10-13 ns
   * so.
   */
  private void valuesOct(
      float[] scores,
      int off,
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
    FloatVector a4 = a0;
    FloatVector a5 = a0;
    FloatVector a6 = a0;
    FloatVector a7 = a0;
    for (int j = 0; j < len; j++) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector p = FloatVector.broadcast(S, scores[off + j]);
      a0 = FloatVector.fromByteBuffer(S, values, v, ORDER).fma(p, a0);
      a1 = FloatVector.fromByteBuffer(S, values, v + vecBytes, ORDER).fma(p, a1);
      a2 = FloatVector.fromByteBuffer(S, values, v + 2 * vecBytes, ORDER).fma(p, a2);
      a3 = FloatVector.fromByteBuffer(S, values, v + 3 * vecBytes, ORDER).fma(p, a3);
      a4 = FloatVector.fromByteBuffer(S, values, v + 4 * vecBytes, ORDER).fma(p, a4);
      a5 = FloatVector.fromByteBuffer(S, values, v + 5 * vecBytes, ORDER).fma(p, a5);
      a6 = FloatVector.fromByteBuffer(S, values, v + 6 * vecBytes, ORDER).fma(p, a6);
      a7 = FloatVector.fromByteBuffer(S, values, v + 7 * vecBytes, ORDER).fma(p, a7);
    }
    a0.mul(inv).intoArray(out, o);
    a1.mul(inv).intoArray(out, o + step);
    a2.mul(inv).intoArray(out, o + 2 * step);
    a3.mul(inv).intoArray(out, o + 3 * step);
    a4.mul(inv).intoArray(out, o + 4 * step);
    a5.mul(inv).intoArray(out, o + 5 * step);
    a6.mul(inv).intoArray(out, o + 6 * step);
    a7.mul(inv).intoArray(out, o + 7 * step);
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
      sum = acc.add(acc1).reduceLanes(ADD);
    } else if (narrow) {
      FloatVector acc = FloatVector.zero(S128);
      for (; i < headDim; i += S128.length()) {
        acc =
            FloatVector.fromArray(S128, q, qOff + i)
                .fma(FloatVector.fromByteBuffer(S128, keys, kByte + i * 4, ORDER), acc);
      }
      sum = acc.reduceLanes(ADD);
    }
    for (; i < headDim; i++) {
      sum += q[qOff + i] * keys.getFloat(kByte + i * 4);
    }
    return sum;
  }

  /**
   * {@code out[o ..] = inv * sum_j scores[off + j] * value row of slot[j]}. Wide heads keep a
   * vector of the output in registers while walking all keys (two accumulators, alternate keys),
   * one vector of dimensions at a time: no load/store of the output per key, and each value row's
   * cache lines are still read once.
   */
  private void weightedValues(
      float[] scores,
      int off,
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
        axpy(scores[off + j] * inv, values, (headBase + slot[j]) * headDim * Float.BYTES, out, o);
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
                .fma(FloatVector.broadcast(S, scores[off + j]), a0);
        a1 =
            FloatVector.fromByteBuffer(S, values, v1, ORDER)
                .fma(FloatVector.broadcast(S, scores[off + j + 1]), a1);
      }
      if (j < len) {
        int v0 = (headBase + slot[j]) * rowBytes + cb;
        a0 =
            FloatVector.fromByteBuffer(S, values, v0, ORDER)
                .fma(FloatVector.broadcast(S, scores[off + j]), a0);
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
