package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A float32 weight matrix on the heap. Kernels by shape: one activation row (decode) takes four
 * weight rows at a time, so one load of x feeds four accumulators; several rows (verify, batches,
 * prefill) take a tile of two weight rows by four activation rows, eight accumulators, with the
 * activations blocked so a block stays in L1 while the weight tile streams past it.
 */
final class F32Matrix implements Matrix {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L1_BLOCK_BYTES = 16 << 10; // activations kept hot per block
  private static final int ROW_TILE = 64; // weight rows per tile: 64 * cols * 4 bytes in L2

  private final float[] w; // (rows, cols)
  private final int rows;
  private final int cols;

  F32Matrix(float[] w, int rows, int cols) {
    if ((long) rows * cols != w.length) {
      throw new IllegalArgumentException(
          "matrix of " + w.length + " floats (expected: " + rows + " x " + cols + ")");
    }
    this.w = w;
    this.rows = rows;
    this.cols = cols;
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
    return (long) w.length * Float.BYTES;
  }

  @Override
  public String dtype() {
    return "float32";
  }

  @Override
  public void row(int r, float[] dst, int off) {
    System.arraycopy(w, r * cols, dst, off, cols);
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
        store(out, o, accumulate, dot(w, o * cols, x, 0));
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
            dot2x1(x, r, out, outStride, accumulate, o);
          }
        }
        for (; o < tileEnd; o++) {
          for (int r = r0; r < r1; r++) {
            store(out, r * outStride + o, accumulate, dot(w, o * cols, x, r * cols));
          }
        }
      }
    }
  }

  private static void store(float[] out, int index, boolean accumulate, float value) {
    out[index] = accumulate ? out[index] + value : value;
  }

  private float dot(float[] a, int aOff, float[] b, int bOff) {
    int bound = S.loopBound(cols);
    FloatVector acc0 = FloatVector.zero(S);
    FloatVector acc1 = FloatVector.zero(S);
    int i = 0;
    int step = S.length();
    for (; i + 2 * step <= bound; i += 2 * step) {
      acc0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc0);
      acc1 =
          FloatVector.fromArray(S, a, aOff + i + step)
              .fma(FloatVector.fromArray(S, b, bOff + i + step), acc1);
    }
    for (; i < bound; i += step) {
      acc0 = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc0);
    }
    float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    for (; i < cols; i++) {
      sum += a[aOff + i] * b[bOff + i];
    }
    return sum;
  }

  /** Weight rows o..o+3 against the single activation row. */
  private void dot4x1(float[] x, float[] out, boolean accumulate, int o) {
    int w0 = o * cols;
    int w1 = w0 + cols;
    int w2 = w1 + cols;
    int w3 = w2 + cols;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    FloatVector a2 = FloatVector.zero(S);
    FloatVector a3 = FloatVector.zero(S);
    int bound = S.loopBound(cols);
    int i = 0;
    for (; i < bound; i += S.length()) {
      FloatVector v = FloatVector.fromArray(S, x, i);
      a0 = FloatVector.fromArray(S, w, w0 + i).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, w1 + i).fma(v, a1);
      a2 = FloatVector.fromArray(S, w, w2 + i).fma(v, a2);
      a3 = FloatVector.fromArray(S, w, w3 + i).fma(v, a3);
    }
    float s0 = a0.reduceLanes(VectorOperators.ADD);
    float s1 = a1.reduceLanes(VectorOperators.ADD);
    float s2 = a2.reduceLanes(VectorOperators.ADD);
    float s3 = a3.reduceLanes(VectorOperators.ADD);
    for (; i < cols; i++) {
      float v = x[i];
      s0 += w[w0 + i] * v;
      s1 += w[w1 + i] * v;
      s2 += w[w2 + i] * v;
      s3 += w[w3 + i] * v;
    }
    store(out, o, accumulate, s0);
    store(out, o + 1, accumulate, s1);
    store(out, o + 2, accumulate, s2);
    store(out, o + 3, accumulate, s3);
  }

  /** Weight rows o, o+1 against activation row r. */
  private void dot2x1(float[] x, int r, float[] out, int outStride, boolean accumulate, int o) {
    int w0 = o * cols;
    int w1 = w0 + cols;
    int x0 = r * cols;
    FloatVector a0 = FloatVector.zero(S);
    FloatVector a1 = FloatVector.zero(S);
    int bound = S.loopBound(cols);
    int i = 0;
    for (; i < bound; i += S.length()) {
      FloatVector v = FloatVector.fromArray(S, x, x0 + i);
      a0 = FloatVector.fromArray(S, w, w0 + i).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, w1 + i).fma(v, a1);
    }
    float s0 = a0.reduceLanes(VectorOperators.ADD);
    float s1 = a1.reduceLanes(VectorOperators.ADD);
    for (; i < cols; i++) {
      float v = x[x0 + i];
      s0 += w[w0 + i] * v;
      s1 += w[w1 + i] * v;
    }
    int base = r * outStride + o;
    store(out, base, accumulate, s0);
    store(out, base + 1, accumulate, s1);
  }

  /** Weight rows o, o+1 against activation rows r..r+3: eight accumulators. */
  private void dot2x4(float[] x, int r, float[] out, int outStride, boolean accumulate, int o) {
    int w0 = o * cols;
    int w1 = w0 + cols;
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
    int bound = S.loopBound(cols);
    int i = 0;
    for (; i < bound; i += S.length()) {
      FloatVector wa = FloatVector.fromArray(S, w, w0 + i);
      FloatVector wb = FloatVector.fromArray(S, w, w1 + i);
      FloatVector v = FloatVector.fromArray(S, x, x0 + i);
      a00 = wa.fma(v, a00);
      a10 = wb.fma(v, a10);
      v = FloatVector.fromArray(S, x, x1 + i);
      a01 = wa.fma(v, a01);
      a11 = wb.fma(v, a11);
      v = FloatVector.fromArray(S, x, x2 + i);
      a02 = wa.fma(v, a02);
      a12 = wb.fma(v, a12);
      v = FloatVector.fromArray(S, x, x3 + i);
      a03 = wa.fma(v, a03);
      a13 = wb.fma(v, a13);
    }
    float s00 = a00.reduceLanes(VectorOperators.ADD);
    float s01 = a01.reduceLanes(VectorOperators.ADD);
    float s02 = a02.reduceLanes(VectorOperators.ADD);
    float s03 = a03.reduceLanes(VectorOperators.ADD);
    float s10 = a10.reduceLanes(VectorOperators.ADD);
    float s11 = a11.reduceLanes(VectorOperators.ADD);
    float s12 = a12.reduceLanes(VectorOperators.ADD);
    float s13 = a13.reduceLanes(VectorOperators.ADD);
    for (; i < cols; i++) {
      float p = w[w0 + i];
      float q = w[w1 + i];
      s00 += p * x[x0 + i];
      s01 += p * x[x1 + i];
      s02 += p * x[x2 + i];
      s03 += p * x[x3 + i];
      s10 += q * x[x0 + i];
      s11 += q * x[x1 + i];
      s12 += q * x[x2 + i];
      s13 += q * x[x3 + i];
    }
    int b0 = r * outStride + o;
    store(out, b0, accumulate, s00);
    store(out, b0 + 1, accumulate, s10);
    store(out, b0 + outStride, accumulate, s01);
    store(out, b0 + outStride + 1, accumulate, s11);
    store(out, b0 + 2 * outStride, accumulate, s02);
    store(out, b0 + 2 * outStride + 1, accumulate, s12);
    store(out, b0 + 3 * outStride, accumulate, s03);
    store(out, b0 + 3 * outStride + 1, accumulate, s13);
  }
}
