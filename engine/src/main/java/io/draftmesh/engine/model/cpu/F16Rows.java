package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.FloatBits;
import io.draftmesh.engine.kv.KvDtype;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link KvRows} of float16 elements in native order: half the bytes of {@link F32Rows} for every
 * key and value a step reads. A row is loaded as int vectors of packed pairs and widened in
 * registers ({@link Half}): lane l of a row's c-th int vector holds elements {@code 2(cL + l)} (low
 * half) and {@code 2(cL + l) + 1} (high half), so each query row is split once into its even and
 * odd elements, and the value accumulators likewise, joined when stored. The widening skips the
 * 2^112 multiply ({@link Half#lowScaled}); the queries and the probabilities carry it instead.
 *
 * <p>Writes round to nearest, ties to even, in vector lanes (the same halves as {@link
 * FloatBits#floatToF16}). A key or value beyond ±{@link KvDtype#FLOAT16_MAX}, or NaN, fails the
 * step: a float16 pool cannot hold it, and the widening assumes finite halves.
 */
final class F16Rows implements KvRows {
  private static final VectorSpecies<Float> S = Half.S;
  private static final VectorSpecies<Integer> IS = Half.IS;
  private static final int L = S.length();
  private static final VectorSpecies<Short> HALVES =
      VectorSpecies.of(short.class, VectorShape.forBitSize(L * Short.SIZE));
  private static final ByteOrder ORDER = ByteOrder.nativeOrder();

  /** float32 bits of |x| above this are beyond float16's largest finite value (or NaN). */
  private static final int MAX_BITS = Float.floatToRawIntBits(KvDtype.FLOAT16_MAX);

  /** Below float16's smallest normal, 2^-14, a value becomes a float16 subnormal. */
  private static final int MIN_NORMAL_BITS = 0x38800000;

  /** Queries scaled this far stay below float32's 2^128 when multiplied by {@link Half#SCALE}. */
  private static final float MAX_SCALED_QUERY = 0x1p15f;

  private static final ThreadLocal<float[]> SCRATCH =
      ThreadLocal.withInitial(() -> new float[0]); // (headDim): a split query, then joined values

  private final int headDim;
  private final float scale;
  private final int vectors; // int vectors per row; 0 when headDim is no multiple of 2L (scalar)
  private final boolean vectorStore; // headDim is a multiple of L
  private final boolean two4; // four rows of a two-int-vector head fit AVX-512's 32 registers

  F16Rows(int headDim, float scale) {
    this.headDim = headDim;
    this.scale = scale;
    this.vectors = headDim % (2 * L) == 0 && IS.length() == L ? headDim / (2 * L) : 0;
    this.vectorStore = headDim % L == 0;
    this.two4 = vectors == 2 && L >= 16;
  }

  @Override
  public int rowBytes() {
    return headDim * Short.BYTES;
  }

  @Override
  public void store(float[] src, int off, ByteBuffer dst, int rowByte) {
    int i = 0;
    if (vectorStore) {
      for (; i < headDim; i += L) {
        IntVector bits = FloatVector.fromArray(S, src, off + i).reinterpretAsInts();
        IntVector abs = bits.and(0x7FFFFFFF);
        if (abs.compare(VectorOperators.GT, MAX_BITS).anyTrue()) {
          throw outOfRange(src, off);
        }
        // Normal halves: rebias the exponent, round the 13 dropped bits to nearest even.
        IntVector normal =
            abs.add(0x0FFF)
                .add(abs.lanewise(VectorOperators.LSHR, 13).and(1))
                .sub(0x38000000)
                .lanewise(VectorOperators.LSHR, 13);
        // Subnormal halves: adding 0.5 leaves the half's mantissa, rounded, in the low bits.
        IntVector subnormal =
            abs.reinterpretAsFloats().add(0.5f).reinterpretAsInts().sub(0x3F000000);
        IntVector half =
            normal
                .blend(subnormal, abs.compare(VectorOperators.LT, MIN_NORMAL_BITS))
                .or(bits.lanewise(VectorOperators.LSHR, 16).and(0x8000));
        ((ShortVector) half.convertShape(VectorOperators.I2S, HALVES, 0))
            .intoByteBuffer(dst, rowByte + i * Short.BYTES, ORDER);
      }
    }
    for (; i < headDim; i++) {
      if (!(Math.abs(src[off + i]) <= KvDtype.FLOAT16_MAX)) {
        throw outOfRange(src, off);
      }
      dst.putShort(rowByte + i * Short.BYTES, FloatBits.floatToF16(src[off + i]));
    }
  }

  private IllegalStateException outOfRange(float[] src, int off) {
    float worst = 0;
    for (int i = 0; i < headDim && !Float.isNaN(worst); i++) {
      float x = src[off + i];
      if (Float.isNaN(x) || Math.abs(x) > Math.abs(worst)) {
        worst = x;
      }
    }
    return KvDtype.outOfRange(worst);
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
    float[] split = vectors == 0 ? null : split(qkv, q);
    if (split == null) {
      for (int j = 0; j < len; j++) {
        int k = (headBase + slot[j]) * rowBytes();
        float sum = 0;
        for (int i = 0; i < headDim; i++) {
          sum += qkv[q + i] * FloatBits.f16ToFloat(keys.getShort(k + i * Short.BYTES));
        }
        scores[off + j] = sum * scale;
      }
    } else if (vectors == 2) {
      scoresTwo(split, slot, headBase, keys, len, scores, off);
    } else if (vectors == 1) {
      scoresOne(split, slot, headBase, keys, len, scores, off);
    } else {
      scoresAny(split, slot, headBase, keys, len, scores, off);
    }
  }

  /**
   * The query times scale times {@link Half#SCALE}, its even elements then its odd ones per int
   * vector of a row, in this thread's scratch; null when an element is too large to scale (far
   * beyond what a model produces), and the scalar loop takes the row.
   */
  private float[] split(float[] qkv, int q) {
    float[] split = scratch(1);
    return split(qkv, q, split, 0) ? split : null;
  }

  /** {@link #split} into {@code split[at ..]}; false when an element is too large to scale. */
  private boolean split(float[] qkv, int q, float[] split, int at) {
    for (int c = 0; c < vectors; c++) {
      int from = q + 2 * c * L;
      int to = at + 2 * c * L;
      for (int l = 0; l < L; l++) {
        float even = qkv[from + 2 * l] * scale;
        float odd = qkv[from + 2 * l + 1] * scale;
        if (!(Math.abs(even) < MAX_SCALED_QUERY && Math.abs(odd) < MAX_SCALED_QUERY)) {
          return false;
        }
        split[to + l] = even * Half.SCALE; // a power of two: exact
        split[to + L + l] = odd * Half.SCALE;
      }
    }
    return true;
  }

  /** This thread's scratch of {@code rows} x headDim floats. */
  private float[] scratch(int rows) {
    float[] s = SCRATCH.get();
    if (s.length < rows * headDim) {
      s = new float[PagedAttention.GROUP_ROWS * headDim];
      SCRATCH.set(s);
    }
    return s;
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
    float[] split = two4 ? scratch(4) : null;
    if (split == null
        || !(split(qkv, q[0], split, 0)
            && split(qkv, q[1], split, headDim)
            && split(qkv, q[2], split, 2 * headDim)
            && split(qkv, q[3], split, 3 * headDim))) {
      KvRows.super.scores4(qkv, q, slot, headBase, keys, len, scores, stride);
      return;
    }
    FloatVector ae0 = FloatVector.fromArray(S, split, 0);
    FloatVector ao0 = FloatVector.fromArray(S, split, L);
    FloatVector ae1 = FloatVector.fromArray(S, split, 2 * L);
    FloatVector ao1 = FloatVector.fromArray(S, split, 3 * L);
    FloatVector be0 = FloatVector.fromArray(S, split, headDim);
    FloatVector bo0 = FloatVector.fromArray(S, split, headDim + L);
    FloatVector be1 = FloatVector.fromArray(S, split, headDim + 2 * L);
    FloatVector bo1 = FloatVector.fromArray(S, split, headDim + 3 * L);
    FloatVector ce0 = FloatVector.fromArray(S, split, 2 * headDim);
    FloatVector co0 = FloatVector.fromArray(S, split, 2 * headDim + L);
    FloatVector ce1 = FloatVector.fromArray(S, split, 2 * headDim + 2 * L);
    FloatVector co1 = FloatVector.fromArray(S, split, 2 * headDim + 3 * L);
    FloatVector de0 = FloatVector.fromArray(S, split, 3 * headDim);
    FloatVector do0 = FloatVector.fromArray(S, split, 3 * headDim + L);
    FloatVector de1 = FloatVector.fromArray(S, split, 3 * headDim + 2 * L);
    FloatVector do1 = FloatVector.fromArray(S, split, 3 * headDim + 3 * L);
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    float[] part = LaneSums.block();
    int rowPart = LaneSums.KEYS * L; // one query row's partials in the block
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        IntVector p0 = IntVector.fromByteBuffer(IS, keys, k, ORDER);
        IntVector p1 = IntVector.fromByteBuffer(IS, keys, k + vecBytes, ORDER);
        FloatVector e0 = Half.lowScaled(p0);
        FloatVector o0 = Half.highScaled(p0);
        FloatVector e1 = Half.lowScaled(p1);
        FloatVector o1 = Half.highScaled(p1);
        int at = j * L;
        ae1.fma(e1, ae0.mul(e0)).add(ao1.fma(o1, ao0.mul(o0))).intoArray(part, at);
        be1.fma(e1, be0.mul(e0)).add(bo1.fma(o1, bo0.mul(o0))).intoArray(part, rowPart + at);
        ce1.fma(e1, ce0.mul(e0)).add(co1.fma(o1, co0.mul(o0))).intoArray(part, 2 * rowPart + at);
        de1.fma(e1, de0.mul(e0)).add(do1.fma(o1, do0.mul(o0))).intoArray(part, 3 * rowPart + at);
      }
      for (int r = 0; r < 4; r++) {
        LaneSums.sum(part, r * rowPart, n, scores, r * stride + j0);
      }
    }
  }

  /**
   * {@link #values} for four rows of a two-int-vector head (AVX-512): each key's two int vectors
   * widen once into the four vectors all four rows' sixteen accumulators take (one row after
   * another, a 64-wide head's key cost 14-18 ns against 6-8 for float32's four-row kernel).
   */
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
    if (!two4) {
      KvRows.super.values4(scores, stride, inv, len, slot, headBase, values, out, o);
      return;
    }
    // Probabilities times inv are at most 1, so times 2^112 they stay finite.
    float wa = inv[0] * Half.SCALE;
    float wb = inv[1] * Half.SCALE;
    float wc = inv[2] * Half.SCALE;
    float wd = inv[3] * Half.SCALE;
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    FloatVector ae0 = FloatVector.zero(S);
    FloatVector ao0 = ae0;
    FloatVector ae1 = ae0;
    FloatVector ao1 = ae0;
    FloatVector be0 = ae0;
    FloatVector bo0 = ae0;
    FloatVector be1 = ae0;
    FloatVector bo1 = ae0;
    FloatVector ce0 = ae0;
    FloatVector co0 = ae0;
    FloatVector ce1 = ae0;
    FloatVector co1 = ae0;
    FloatVector de0 = ae0;
    FloatVector do0 = ae0;
    FloatVector de1 = ae0;
    FloatVector do1 = ae0;
    for (int j = 0; j < len; j++) {
      int v = (headBase + slot[j]) * rowBytes;
      IntVector x0 = IntVector.fromByteBuffer(IS, values, v, ORDER);
      IntVector x1 = IntVector.fromByteBuffer(IS, values, v + vecBytes, ORDER);
      FloatVector e0 = Half.lowScaled(x0);
      FloatVector o0 = Half.highScaled(x0);
      FloatVector e1 = Half.lowScaled(x1);
      FloatVector o1 = Half.highScaled(x1);
      FloatVector w = FloatVector.broadcast(S, scores[j] * wa);
      ae0 = e0.fma(w, ae0);
      ao0 = o0.fma(w, ao0);
      ae1 = e1.fma(w, ae1);
      ao1 = o1.fma(w, ao1);
      w = FloatVector.broadcast(S, scores[stride + j] * wb);
      be0 = e0.fma(w, be0);
      bo0 = o0.fma(w, bo0);
      be1 = e1.fma(w, be1);
      bo1 = o1.fma(w, bo1);
      w = FloatVector.broadcast(S, scores[2 * stride + j] * wc);
      ce0 = e0.fma(w, ce0);
      co0 = o0.fma(w, co0);
      ce1 = e1.fma(w, ce1);
      co1 = o1.fma(w, co1);
      w = FloatVector.broadcast(S, scores[3 * stride + j] * wd);
      de0 = e0.fma(w, de0);
      do0 = o0.fma(w, do0);
      de1 = e1.fma(w, de1);
      do1 = o1.fma(w, do1);
    }
    float[] joined = scratch(4);
    ae0.intoArray(joined, 0);
    ao0.intoArray(joined, L);
    ae1.intoArray(joined, 2 * L);
    ao1.intoArray(joined, 3 * L);
    be0.intoArray(joined, headDim);
    bo0.intoArray(joined, headDim + L);
    be1.intoArray(joined, headDim + 2 * L);
    bo1.intoArray(joined, headDim + 3 * L);
    ce0.intoArray(joined, 2 * headDim);
    co0.intoArray(joined, 2 * headDim + L);
    ce1.intoArray(joined, 2 * headDim + 2 * L);
    co1.intoArray(joined, 2 * headDim + 3 * L);
    de0.intoArray(joined, 3 * headDim);
    do0.intoArray(joined, 3 * headDim + L);
    de1.intoArray(joined, 3 * headDim + 2 * L);
    do1.intoArray(joined, 3 * headDim + 3 * L);
    for (int r = 0; r < 4; r++) {
      join(joined, r * headDim, out, o[r]);
    }
  }

  /** A row of two int vectors (a 64-wide head on AVX-512): the split query stays in registers. */
  private void scoresTwo(
      float[] split, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores, int off) {
    FloatVector e0 = FloatVector.fromArray(S, split, 0);
    FloatVector o0 = FloatVector.fromArray(S, split, L);
    FloatVector e1 = FloatVector.fromArray(S, split, 2 * L);
    FloatVector o1 = FloatVector.fromArray(S, split, 3 * L);
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        IntVector p0 = IntVector.fromByteBuffer(IS, keys, k, ORDER);
        IntVector p1 = IntVector.fromByteBuffer(IS, keys, k + vecBytes, ORDER);
        FloatVector a = e0.mul(Half.lowScaled(p0));
        FloatVector b = o0.mul(Half.highScaled(p0));
        a = e1.fma(Half.lowScaled(p1), a);
        b = o1.fma(Half.highScaled(p1), b);
        a.add(b).intoArray(part, j * L);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
    }
  }

  /** {@link #scoresTwo} for a row of one int vector (a 32-wide head on AVX-512). */
  private void scoresOne(
      float[] split, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores, int off) {
    FloatVector e0 = FloatVector.fromArray(S, split, 0);
    FloatVector o0 = FloatVector.fromArray(S, split, L);
    int rowBytes = rowBytes();
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        IntVector p0 =
            IntVector.fromByteBuffer(IS, keys, (headBase + slot[j0 + j]) * rowBytes, ORDER);
        FloatVector a = e0.mul(Half.lowScaled(p0));
        a = o0.fma(Half.highScaled(p0), a);
        a.intoArray(part, j * L);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
    }
  }

  /**
   * Any number of int vectors per row, the split query reloaded per key. At four (a 64-wide head on
   * AVX2) this beat keeping the split query in eight registers: 20-24 against 34-36 ns a key, the
   * widening's temporaries and constants then spilling the 16.
   */
  private void scoresAny(
      float[] split, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores, int off) {
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    float[] part = LaneSums.block();
    for (int j0 = 0; j0 < len; j0 += LaneSums.KEYS) {
      int n = Math.min(LaneSums.KEYS, len - j0);
      for (int j = 0; j < n; j++) {
        int k = (headBase + slot[j0 + j]) * rowBytes;
        FloatVector a = FloatVector.zero(S);
        FloatVector b = a;
        for (int c = 0; c < vectors; c++) {
          IntVector p = IntVector.fromByteBuffer(IS, keys, k + c * vecBytes, ORDER);
          a = FloatVector.fromArray(S, split, 2 * c * L).fma(Half.lowScaled(p), a);
          b = FloatVector.fromArray(S, split, 2 * c * L + L).fma(Half.highScaled(p), b);
        }
        a.add(b).intoArray(part, j * L);
      }
      LaneSums.sum(part, 0, n, scores, off + j0);
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
    if (vectors == 0) {
      java.util.Arrays.fill(out, o, o + headDim, 0f);
      for (int j = 0; j < len; j++) {
        int v = (headBase + slot[j]) * rowBytes();
        float p = scores[off + j] * inv;
        for (int i = 0; i < headDim; i++) {
          out[o + i] += p * FloatBits.f16ToFloat(values.getShort(v + i * Short.BYTES));
        }
      }
      return;
    }
    // Probabilities times inv are at most 1, so times 2^112 they stay finite.
    float weight = inv * Half.SCALE;
    float[] joined = scratch(1);
    if (vectors == 2) {
      valuesTwo(scores, off, weight, len, slot, headBase, values, joined);
    } else if (vectors == 4) {
      valuesFour(scores, off, weight, len, slot, headBase, values, joined);
    } else {
      for (int c = 0; c < vectors; c++) {
        valuesOf(c, scores, off, weight, len, slot, headBase, values, joined);
      }
    }
    join(joined, 0, out, o);
  }

  /** Interleaves a row's even and odd elements, {@link #split}'s order at {@code at}, into out. */
  private void join(float[] split, int at, float[] out, int o) {
    for (int c = 0; c < vectors; c++) {
      for (int l = 0; l < L; l++) {
        out[o + 2 * (c * L + l)] = split[at + 2 * c * L + l];
        out[o + 2 * (c * L + l) + 1] = split[at + 2 * c * L + L + l];
      }
    }
  }

  /**
   * A row of two int vectors: the four accumulators of the output (two sets, alternate keys) stay
   * in registers while the values stream; into {@code split} as {@link #split} orders a query.
   */
  private void valuesTwo(
      float[] scores,
      int off,
      float weight,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] split) {
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    FloatVector e0 = FloatVector.zero(S);
    FloatVector o0 = e0;
    FloatVector e1 = e0;
    FloatVector o1 = e0;
    FloatVector f0 = e0;
    FloatVector p0 = e0;
    FloatVector f1 = e0;
    FloatVector p1 = e0;
    int j = 0;
    for (; j + 2 <= len; j += 2) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector w = FloatVector.broadcast(S, scores[off + j] * weight);
      IntVector x0 = IntVector.fromByteBuffer(IS, values, v, ORDER);
      IntVector x1 = IntVector.fromByteBuffer(IS, values, v + vecBytes, ORDER);
      e0 = Half.lowScaled(x0).fma(w, e0);
      o0 = Half.highScaled(x0).fma(w, o0);
      e1 = Half.lowScaled(x1).fma(w, e1);
      o1 = Half.highScaled(x1).fma(w, o1);
      int u = (headBase + slot[j + 1]) * rowBytes;
      FloatVector z = FloatVector.broadcast(S, scores[off + j + 1] * weight);
      IntVector y0 = IntVector.fromByteBuffer(IS, values, u, ORDER);
      IntVector y1 = IntVector.fromByteBuffer(IS, values, u + vecBytes, ORDER);
      f0 = Half.lowScaled(y0).fma(z, f0);
      p0 = Half.highScaled(y0).fma(z, p0);
      f1 = Half.lowScaled(y1).fma(z, f1);
      p1 = Half.highScaled(y1).fma(z, p1);
    }
    if (j < len) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector w = FloatVector.broadcast(S, scores[off + j] * weight);
      IntVector x0 = IntVector.fromByteBuffer(IS, values, v, ORDER);
      IntVector x1 = IntVector.fromByteBuffer(IS, values, v + vecBytes, ORDER);
      e0 = Half.lowScaled(x0).fma(w, e0);
      o0 = Half.highScaled(x0).fma(w, o0);
      e1 = Half.lowScaled(x1).fma(w, e1);
      o1 = Half.highScaled(x1).fma(w, o1);
    }
    e0.add(f0).intoArray(split, 0);
    o0.add(p0).intoArray(split, L);
    e1.add(f1).intoArray(split, 2 * L);
    o1.add(p1).intoArray(split, 3 * L);
  }

  /**
   * A row of four int vectors: the output's eight accumulators are eight independent FMA chains
   * (one set: two would spill AVX2's 16 registers), in registers while the values stream.
   */
  private void valuesFour(
      float[] scores,
      int off,
      float weight,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] split) {
    int rowBytes = rowBytes();
    int vecBytes = L * Integer.BYTES;
    FloatVector e0 = FloatVector.zero(S);
    FloatVector o0 = e0;
    FloatVector e1 = e0;
    FloatVector o1 = e0;
    FloatVector e2 = e0;
    FloatVector o2 = e0;
    FloatVector e3 = e0;
    FloatVector o3 = e0;
    for (int j = 0; j < len; j++) {
      int v = (headBase + slot[j]) * rowBytes;
      FloatVector w = FloatVector.broadcast(S, scores[off + j] * weight);
      IntVector x0 = IntVector.fromByteBuffer(IS, values, v, ORDER);
      IntVector x1 = IntVector.fromByteBuffer(IS, values, v + vecBytes, ORDER);
      IntVector x2 = IntVector.fromByteBuffer(IS, values, v + 2 * vecBytes, ORDER);
      IntVector x3 = IntVector.fromByteBuffer(IS, values, v + 3 * vecBytes, ORDER);
      e0 = Half.lowScaled(x0).fma(w, e0);
      o0 = Half.highScaled(x0).fma(w, o0);
      e1 = Half.lowScaled(x1).fma(w, e1);
      o1 = Half.highScaled(x1).fma(w, o1);
      e2 = Half.lowScaled(x2).fma(w, e2);
      o2 = Half.highScaled(x2).fma(w, o2);
      e3 = Half.lowScaled(x3).fma(w, e3);
      o3 = Half.highScaled(x3).fma(w, o3);
    }
    e0.intoArray(split, 0);
    o0.intoArray(split, L);
    e1.intoArray(split, 2 * L);
    o1.intoArray(split, 3 * L);
    e2.intoArray(split, 4 * L);
    o2.intoArray(split, 5 * L);
    e3.intoArray(split, 6 * L);
    o3.intoArray(split, 7 * L);
  }

  /** The c-th int vector of the output row, over every key (two accumulator sets). */
  private void valuesOf(
      int c,
      float[] scores,
      int off,
      float weight,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] split) {
    int rowBytes = rowBytes();
    int cb = c * L * Integer.BYTES;
    FloatVector e = FloatVector.zero(S);
    FloatVector o = e;
    FloatVector f = e;
    FloatVector p = e;
    int j = 0;
    for (; j + 2 <= len; j += 2) {
      FloatVector w = FloatVector.broadcast(S, scores[off + j] * weight);
      IntVector x =
          IntVector.fromByteBuffer(IS, values, (headBase + slot[j]) * rowBytes + cb, ORDER);
      e = Half.lowScaled(x).fma(w, e);
      o = Half.highScaled(x).fma(w, o);
      FloatVector z = FloatVector.broadcast(S, scores[off + j + 1] * weight);
      IntVector y =
          IntVector.fromByteBuffer(IS, values, (headBase + slot[j + 1]) * rowBytes + cb, ORDER);
      f = Half.lowScaled(y).fma(z, f);
      p = Half.highScaled(y).fma(z, p);
    }
    if (j < len) {
      FloatVector w = FloatVector.broadcast(S, scores[off + j] * weight);
      IntVector x =
          IntVector.fromByteBuffer(IS, values, (headBase + slot[j]) * rowBytes + cb, ORDER);
      e = Half.lowScaled(x).fma(w, e);
      o = Half.highScaled(x).fma(w, o);
    }
    e.add(f).intoArray(split, 2 * c * L);
    o.add(p).intoArray(split, 2 * c * L + L);
  }
}
