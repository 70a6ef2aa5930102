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
 * <p>Kernels: one activation row takes one weight row with two accumulators (kernels holding more
 * widened rows at once compiled far worse on JDK 17); several rows take one weight row by four
 * activation rows, which spreads each widening over four products.
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
      for (int o = from; o < to; o++) {
        store(out, o, accumulate, dot1x1(x, 0, o));
      }
      return;
    }
    int block = Math.max(4, (L1_BLOCK_BYTES / (cols * Float.BYTES)) & ~3);
    for (int tile = from; tile < to; tile += ROW_TILE) {
      int tileEnd = Math.min(to, tile + ROW_TILE);
      for (int r0 = 0; r0 < n; r0 += block) {
        int r1 = Math.min(n, r0 + block);
        for (int o = tile; o < tileEnd; o++) {
          int r = r0;
          for (; r + 4 <= r1; r += 4) {
            dot1x4(x, r, out, outStride, accumulate, o);
          }
          for (; r < r1; r++) {
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

  /** Weight row o against activation rows r..r+3: each widening feeds four products. */
  private void dot1x4(float[] x, int r, float[] out, int outStride, boolean accumulate, int o) {
    int wb = o * stride;
    int x0 = r * cols;
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector a2 = FloatVector.zero(S);
    FloatVector a3 = FloatVector.zero(S);
    FloatVector b0 = FloatVector.zero(S);
    FloatVector b1 = FloatVector.zero(S);
    FloatVector b2 = FloatVector.zero(S);
    FloatVector b3 = FloatVector.zero(S);
    for (int c = 0; c < packedCols; c += 2 * L) {
      IntVector p = IntVector.fromArray(IS, w, wb + c / 2);
      FloatVector lo = Half.low(p);
      FloatVector hi = Half.high(p);
      a0 = lo.fma(FloatVector.fromArray(S, x, x0 + c), a0);
      b0 = hi.fma(FloatVector.fromArray(S, x, x0 + c + L), b0);
      a1 = lo.fma(FloatVector.fromArray(S, x, x1 + c), a1);
      b1 = hi.fma(FloatVector.fromArray(S, x, x1 + c + L), b1);
      a2 = lo.fma(FloatVector.fromArray(S, x, x2 + c), a2);
      b2 = hi.fma(FloatVector.fromArray(S, x, x2 + c + L), b2);
      a3 = lo.fma(FloatVector.fromArray(S, x, x3 + c), a3);
      b3 = hi.fma(FloatVector.fromArray(S, x, x3 + c + L), b3);
    }
    int base = r * outStride + o;
    store(out, base, accumulate, a0.add(b0).reduceLanes(VectorOperators.ADD) + tail(x, r, o));
    base += outStride;
    store(out, base, accumulate, a1.add(b1).reduceLanes(VectorOperators.ADD) + tail(x, r + 1, o));
    base += outStride;
    store(out, base, accumulate, a2.add(b2).reduceLanes(VectorOperators.ADD) + tail(x, r + 2, o));
    base += outStride;
    store(out, base, accumulate, a3.add(b3).reduceLanes(VectorOperators.ADD) + tail(x, r + 3, o));
  }
}
