package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.FloatBits;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A float16 weight matrix on the heap: half the bytes a step reads compared with {@link F32Matrix};
 * weights are widened in registers ({@link Half}) and every product accumulates in float32. Each
 * row is packed for the widening: per block of 2L columns (L float lanes), int lane l holds column
 * b + l in its low half and column b + L + l in its high half, so one int load yields two float
 * vectors that line up with two contiguous loads of the activations. Columns past the last whole
 * block are stored one per int.
 *
 * <p>Kernels by shape as F32Matrix: one activation row takes four weight rows at a time; several
 * rows take two weight rows by four activation rows, which also spreads each widening over four
 * products.
 */
final class F16Matrix implements Matrix {
  private static final VectorSpecies<Float> S = Half.S;
  private static final VectorSpecies<Integer> IS = Half.IS;
  private static final int L = S.length();
  private static final int L1_BLOCK_BYTES = 16 << 10;
  private static final int ROW_TILE = 64;

  private final int[] w; // (rows, stride) packed halves
  private final int rows;
  private final int cols;
  private final int packedCols; // columns in whole blocks of 2L
  private final int stride; // ints per row: packedCols / 2 + tail columns

  /** Packs {@code bits}, (rows, cols) binary16 patterns row-major. */
  F16Matrix(short[] bits, int rows, int cols) {
    if ((long) rows * cols != bits.length) {
      throw new IllegalArgumentException(
          "matrix of " + bits.length + " halves (expected: " + rows + " x " + cols + ")");
    }
    this.rows = rows;
    this.cols = cols;
    this.packedCols = cols / (2 * L) * (2 * L);
    this.stride = packedCols / 2 + (cols - packedCols);
    this.w = new int[Math.multiplyExact(rows, stride)];
    for (int r = 0; r < rows; r++) {
      int src = r * cols;
      int dst = r * stride;
      for (int b = 0; b < packedCols; b += 2 * L) {
        for (int l = 0; l < L; l++) {
          int lo = bits[src + b + l] & 0xFFFF;
          int hi = bits[src + b + L + l] & 0xFFFF;
          w[dst + b / 2 + l] = lo | (hi << 16);
        }
      }
      for (int c = packedCols; c < cols; c++) {
        w[dst + packedCols / 2 + (c - packedCols)] = bits[src + c] & 0xFFFF;
      }
    }
  }

  @Override
  public int rows() {
    return rows;
  }

  @Override
  public int cols() {
    return cols;
  }

  @Override
  public long bytes() {
    return (long) rows * cols * Short.BYTES;
  }

  @Override
  public String dtype() {
    return "float16";
  }

  /** Weight (r, c) as a float. */
  private float at(int r, int c) {
    int base = r * stride;
    int bits;
    if (c >= packedCols) {
      bits = w[base + packedCols / 2 + (c - packedCols)];
    } else {
      int block = c / (2 * L) * (2 * L);
      int within = c - block;
      int packed = w[base + block / 2 + within % L];
      bits = within < L ? packed & 0xFFFF : packed >>> 16;
    }
    return FloatBits.f16ToFloat((short) bits);
  }

  @Override
  public void row(int r, float[] dst, int off) {
    for (int c = 0; c < cols; c++) {
      dst[off + c] = at(r, c);
    }
  }

  @Override
  public void multiply(
      float[] x, int n, float[] out, int outStride, boolean accumulate, int from, int to) {
    if (n == 1) {
      int o = from;
      for (; o + 4 <= to; o += 4) {
        dot4x1(x, out, accumulate, o);
      }
      for (; o < to; o++) {
        store(out, o, accumulate, dot1x1(x, 0, o));
      }
      return;
    }
    int block = Math.max(4, (L1_BLOCK_BYTES / (cols * Float.BYTES)) & ~3);
    for (int tile = from; tile < to; tile += ROW_TILE) {
      int tileEnd = Math.min(to, tile + ROW_TILE);
      for (int r0 = 0; r0 < n; r0 += block) {
        int r1 = Math.min(n, r0 + block);
        int o = tile;
        for (; o + 2 <= tileEnd; o += 2) {
          int r = r0;
          for (; r + 4 <= r1; r += 4) {
            dot2x4(x, r, out, outStride, accumulate, o);
          }
          for (; r < r1; r++) {
            store(out, r * outStride + o, accumulate, dot1x1(x, r, o));
            store(out, r * outStride + o + 1, accumulate, dot1x1(x, r, o + 1));
          }
        }
        for (; o < tileEnd; o++) {
          for (int r = r0; r < r1; r++) {
            store(out, r * outStride + o, accumulate, dot1x1(x, r, o));
          }
        }
      }
    }
  }

  private static void store(float[] out, int index, boolean accumulate, float value) {
    out[index] = accumulate ? out[index] + value : value;
  }

  /** Scalar products of the unpacked tail columns of weight row o with activation row r. */
  private float tail(float[] x, int r, int o) {
    float sum = 0;
    int base = o * stride + packedCols / 2;
    int xb = r * cols;
    for (int c = packedCols; c < cols; c++) {
      sum += FloatBits.f16ToFloat((short) w[base + c - packedCols]) * x[xb + c];
    }
    return sum;
  }

  private float dot1x1(float[] x, int r, int o) {
    int wb = o * stride;
    int xb = r * cols;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    for (int c = 0; c < packedCols; c += 2 * L) {
      IntVector p = IntVector.fromArray(IS, w, wb + c / 2);
      a0 = Half.low(p).fma(FloatVector.fromArray(S, x, xb + c), a0);
      a1 = Half.high(p).fma(FloatVector.fromArray(S, x, xb + c + L), a1);
    }
    return a0.add(a1).reduceLanes(VectorOperators.ADD) + tail(x, r, o);
  }

  /** Weight rows o..o+3 against the single activation row. */
  private void dot4x1(float[] x, float[] out, boolean accumulate, int o) {
    int w0 = o * stride;
    int w1 = w0 + stride;
    int w2 = w1 + stride;
    int w3 = w2 + stride;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector a2 = FloatVector.zero(S);
    FloatVector a3 = FloatVector.zero(S);
    for (int c = 0; c < packedCols; c += 2 * L) {
      FloatVector lo = FloatVector.fromArray(S, x, c);
      FloatVector hi = FloatVector.fromArray(S, x, c + L);
      int k = c / 2;
      IntVector p0 = IntVector.fromArray(IS, w, w0 + k);
      IntVector p1 = IntVector.fromArray(IS, w, w1 + k);
      IntVector p2 = IntVector.fromArray(IS, w, w2 + k);
      IntVector p3 = IntVector.fromArray(IS, w, w3 + k);
      a0 = Half.high(p0).fma(hi, Half.low(p0).fma(lo, a0));
      a1 = Half.high(p1).fma(hi, Half.low(p1).fma(lo, a1));
      a2 = Half.high(p2).fma(hi, Half.low(p2).fma(lo, a2));
      a3 = Half.high(p3).fma(hi, Half.low(p3).fma(lo, a3));
    }
    store(out, o, accumulate, a0.reduceLanes(VectorOperators.ADD) + tail(x, 0, o));
    store(out, o + 1, accumulate, a1.reduceLanes(VectorOperators.ADD) + tail(x, 0, o + 1));
    store(out, o + 2, accumulate, a2.reduceLanes(VectorOperators.ADD) + tail(x, 0, o + 2));
    store(out, o + 3, accumulate, a3.reduceLanes(VectorOperators.ADD) + tail(x, 0, o + 3));
  }

  /** Weight rows o, o+1 against activation rows r..r+3: eight accumulators. */
  private void dot2x4(float[] x, int r, float[] out, int outStride, boolean accumulate, int o) {
    int w0 = o * stride;
    int w1 = w0 + stride;
    int x0 = r * cols;
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    FloatVector a00 = FloatVector.zero(S);
    FloatVector a01 = FloatVector.zero(S);
    FloatVector a02 = FloatVector.zero(S);
    FloatVector a03 = FloatVector.zero(S);
    FloatVector a10 = FloatVector.zero(S);
    FloatVector a11 = FloatVector.zero(S);
    FloatVector a12 = FloatVector.zero(S);
    FloatVector a13 = FloatVector.zero(S);
    for (int c = 0; c < packedCols; c += 2 * L) {
      int k = c / 2;
      IntVector p = IntVector.fromArray(IS, w, w0 + k);
      IntVector q = IntVector.fromArray(IS, w, w1 + k);
      for (int half = 0; half < 2; half++) {
        FloatVector wa = half == 0 ? Half.low(p) : Half.high(p);
        FloatVector wb = half == 0 ? Half.low(q) : Half.high(q);
        int cc = c + half * L;
        FloatVector v = FloatVector.fromArray(S, x, x0 + cc);
        a00 = wa.fma(v, a00);
        a10 = wb.fma(v, a10);
        v = FloatVector.fromArray(S, x, x1 + cc);
        a01 = wa.fma(v, a01);
        a11 = wb.fma(v, a11);
        v = FloatVector.fromArray(S, x, x2 + cc);
        a02 = wa.fma(v, a02);
        a12 = wb.fma(v, a12);
        v = FloatVector.fromArray(S, x, x3 + cc);
        a03 = wa.fma(v, a03);
        a13 = wb.fma(v, a13);
      }
    }
    int b0 = r * outStride + o;
    store(out, b0, accumulate, a00.reduceLanes(VectorOperators.ADD) + tail(x, r, o));
    store(out, b0 + 1, accumulate, a10.reduceLanes(VectorOperators.ADD) + tail(x, r, o + 1));
    int b1 = b0 + outStride;
    store(out, b1, accumulate, a01.reduceLanes(VectorOperators.ADD) + tail(x, r + 1, o));
    store(out, b1 + 1, accumulate, a11.reduceLanes(VectorOperators.ADD) + tail(x, r + 1, o + 1));
    int b2 = b1 + outStride;
    store(out, b2, accumulate, a02.reduceLanes(VectorOperators.ADD) + tail(x, r + 2, o));
    store(out, b2 + 1, accumulate, a12.reduceLanes(VectorOperators.ADD) + tail(x, r + 2, o + 1));
    int b3 = b2 + outStride;
    store(out, b3, accumulate, a03.reduceLanes(VectorOperators.ADD) + tail(x, r + 3, o));
    store(out, b3 + 1, accumulate, a13.reduceLanes(VectorOperators.ADD) + tail(x, r + 3, o + 1));
  }
}
