package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 micro-kernels every matrix runs, over one panel of weights: {@link #WIDTH} output
 * features stored input-major, {@code panel[i * WIDTH + j] = w[o + j][i]}. Walking a panel reads
 * memory strictly in order (the prefetcher's best case), and each step broadcasts one activation
 * per row and multiplies it into two vectors of outputs: no horizontal reductions, no column tails.
 * One weight load feeds up to six activation rows (twelve accumulators, which with the two weight
 * vectors and a broadcast fill AVX2's 16 registers); a step of n rows runs the six-row kernel over
 * the panel while it is hot in L1/L2, then one of the 1..5-row kernels for the rest, so weights
 * come from memory once per step however many rows it has.
 */
final class Panels {
  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final int L = S.length();

  /** Output features per panel: two vectors. Matrices split work at multiples of it. */
  static final int WIDTH = 2 * L;

  private Panels() {}

  /** Panels needed for {@code rows} output features (the last one zero-padded). */
  static int count(int rows) {
    return (rows + WIDTH - 1) / WIDTH;
  }

  /**
   * For activation rows {@code r < n}: {@code out[r * outStride + o + j] (+)= sum_i x[r * xStride +
   * xOff + i] * panel[base + i * WIDTH + j]} for {@code j < valid}, i over {@code [0, depth)}.
   * Accumulators start from the outputs when accumulating.
   */
  static void multiply(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xStride,
      int xOff,
      int n,
      float[] out,
      int outStride,
      boolean accumulate,
      int o,
      int valid) {
    if (valid < WIDTH) {
      partial(w, base, depth, x, xStride, xOff, n, out, outStride, accumulate, o, valid);
      return;
    }
    int r = 0;
    for (; r + 6 <= n; r += 6) {
      rows6(
          w,
          base,
          depth,
          x,
          xStride,
          r * xStride + xOff,
          out,
          r * outStride + o,
          outStride,
          accumulate);
    }
    int x0 = r * xStride + xOff;
    int out0 = r * outStride + o;
    switch (n - r) {
      case 5 -> rows5(w, base, depth, x, xStride, x0, out, out0, outStride, accumulate);
      case 4 -> rows4(w, base, depth, x, xStride, x0, out, out0, outStride, accumulate);
      case 3 -> rows3(w, base, depth, x, xStride, x0, out, out0, outStride, accumulate);
      case 2 -> rows2(w, base, depth, x, xStride, x0, out, out0, outStride, accumulate);
      case 1 -> row1(w, base, depth, x, x0, out, out0, accumulate);
      default -> {}
    }
  }

  /**
   * A partial last panel: computed whole into a scratch of (n, WIDTH), its first {@code valid}
   * columns copied out. The kernels then always store whole vectors, inline: a helper taking
   * vectors that C2 leaves out of line (a call outside the hot loop) boxes them on every call.
   */
  private static void partial(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xStride,
      int xOff,
      int n,
      float[] out,
      int outStride,
      boolean accumulate,
      int o,
      int valid) {
    float[] tmp = PARTIAL.get();
    if (tmp.length < n * WIDTH) {
      tmp = new float[n * WIDTH];
      PARTIAL.set(tmp);
    }
    multiply(w, base, depth, x, xStride, xOff, n, tmp, WIDTH, false, 0, WIDTH);
    for (int r = 0; r < n; r++) {
      for (int j = 0; j < valid; j++) {
        int at = r * outStride + o + j;
        out[at] = (accumulate ? out[at] : 0) + tmp[r * WIDTH + j];
      }
    }
  }

  private static final ThreadLocal<float[]> PARTIAL = ThreadLocal.withInitial(() -> new float[0]);

  /** Zero, or the two output vectors at {@code at} when accumulating. */
  private static FloatVector start(float[] out, int at, boolean accumulate) {
    return accumulate ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
  }

  /** One row: two steps per iteration into four accumulators, so FMA latency is hidden. */
  private static void row1(
      float[] w, int base, int depth, float[] x, int x0, float[] out, int at, boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector c0 = FloatVector.zero(S);
    FloatVector c1 = c0;
    int i = 0;
    int wi = base;
    for (; i + 2 <= depth; i += 2, wi += 2 * WIDTH) {
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = FloatVector.fromArray(S, w, wi).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, wi + L).fma(v, a1);
      FloatVector u = FloatVector.broadcast(S, x[x0 + i + 1]);
      c0 = FloatVector.fromArray(S, w, wi + WIDTH).fma(u, c0);
      c1 = FloatVector.fromArray(S, w, wi + WIDTH + L).fma(u, c1);
    }
    if (i < depth) {
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = FloatVector.fromArray(S, w, wi).fma(v, a0);
      a1 = FloatVector.fromArray(S, w, wi + L).fma(v, a1);
    }
    a0.add(c0).intoArray(out, at);
    a1.add(c1).intoArray(out, at + L);
  }

  private static void rows2(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xs,
      int x0,
      float[] out,
      int at,
      int os,
      boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector b0 = start(out, at + os, acc);
    FloatVector b1 = start(out, at + os + L, acc);
    int x1 = x0 + xs;
    for (int i = 0, wi = base; i < depth; i++, wi += WIDTH) {
      FloatVector w0 = FloatVector.fromArray(S, w, wi);
      FloatVector w1 = FloatVector.fromArray(S, w, wi + L);
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[x1 + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
    }
    a0.intoArray(out, at);
    a1.intoArray(out, at + L);
    b0.intoArray(out, at + os);
    b1.intoArray(out, at + os + L);
  }

  private static void rows3(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xs,
      int x0,
      float[] out,
      int at,
      int os,
      boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector b0 = start(out, at + os, acc);
    FloatVector b1 = start(out, at + os + L, acc);
    FloatVector c0 = start(out, at + 2 * os, acc);
    FloatVector c1 = start(out, at + 2 * os + L, acc);
    int x1 = x0 + xs;
    int x2 = x1 + xs;
    for (int i = 0, wi = base; i < depth; i++, wi += WIDTH) {
      FloatVector w0 = FloatVector.fromArray(S, w, wi);
      FloatVector w1 = FloatVector.fromArray(S, w, wi + L);
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[x1 + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[x2 + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
    }
    a0.intoArray(out, at);
    a1.intoArray(out, at + L);
    b0.intoArray(out, at + os);
    b1.intoArray(out, at + os + L);
    c0.intoArray(out, at + 2 * os);
    c1.intoArray(out, at + 2 * os + L);
  }

  private static void rows4(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xs,
      int x0,
      float[] out,
      int at,
      int os,
      boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector b0 = start(out, at + os, acc);
    FloatVector b1 = start(out, at + os + L, acc);
    FloatVector c0 = start(out, at + 2 * os, acc);
    FloatVector c1 = start(out, at + 2 * os + L, acc);
    FloatVector d0 = start(out, at + 3 * os, acc);
    FloatVector d1 = start(out, at + 3 * os + L, acc);
    int x1 = x0 + xs;
    int x2 = x1 + xs;
    int x3 = x2 + xs;
    for (int i = 0, wi = base; i < depth; i++, wi += WIDTH) {
      FloatVector w0 = FloatVector.fromArray(S, w, wi);
      FloatVector w1 = FloatVector.fromArray(S, w, wi + L);
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[x1 + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[x2 + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[x3 + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
    }
    a0.intoArray(out, at);
    a1.intoArray(out, at + L);
    b0.intoArray(out, at + os);
    b1.intoArray(out, at + os + L);
    c0.intoArray(out, at + 2 * os);
    c1.intoArray(out, at + 2 * os + L);
    d0.intoArray(out, at + 3 * os);
    d1.intoArray(out, at + 3 * os + L);
  }

  /**
   * Five rows (a 4-token verify) in one sweep: ten accumulators, which fit AVX2's 16 registers
   * beside the two weight vectors and a broadcast. As four rows then one, the one-row pass reread
   * the panel at a third of the FMA rate: a 1024 x 384 matrix in L2 went from 35.7 to 53.3 GMAC/s
   * on one core of a Xeon with AVX-512, and 151 MB streamed from DRAM by two threads 4-6 % faster.
   */
  private static void rows5(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xs,
      int x0,
      float[] out,
      int at,
      int os,
      boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector b0 = start(out, at + os, acc);
    FloatVector b1 = start(out, at + os + L, acc);
    FloatVector c0 = start(out, at + 2 * os, acc);
    FloatVector c1 = start(out, at + 2 * os + L, acc);
    FloatVector d0 = start(out, at + 3 * os, acc);
    FloatVector d1 = start(out, at + 3 * os + L, acc);
    FloatVector e0 = start(out, at + 4 * os, acc);
    FloatVector e1 = start(out, at + 4 * os + L, acc);
    int x1 = x0 + xs;
    int x2 = x1 + xs;
    int x3 = x2 + xs;
    int x4 = x3 + xs;
    for (int i = 0, wi = base; i < depth; i++, wi += WIDTH) {
      FloatVector w0 = FloatVector.fromArray(S, w, wi);
      FloatVector w1 = FloatVector.fromArray(S, w, wi + L);
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[x1 + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[x2 + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[x3 + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
      v = FloatVector.broadcast(S, x[x4 + i]);
      e0 = w0.fma(v, e0);
      e1 = w1.fma(v, e1);
    }
    a0.intoArray(out, at);
    a1.intoArray(out, at + L);
    b0.intoArray(out, at + os);
    b1.intoArray(out, at + os + L);
    c0.intoArray(out, at + 2 * os);
    c1.intoArray(out, at + 2 * os + L);
    d0.intoArray(out, at + 3 * os);
    d1.intoArray(out, at + 3 * os + L);
    e0.intoArray(out, at + 4 * os);
    e1.intoArray(out, at + 4 * os + L);
  }

  /**
   * Six rows: each step's two weight vectors feed twelve FMAs for eight loads (two and six
   * broadcasts), where four rows take six loads for eight; on the float32 tile of a float16 prefill
   * it ran 1.3x the four-row kernel on AVX2 (19-25 against 15-19 GMAC/s on one core).
   */
  private static void rows6(
      float[] w,
      int base,
      int depth,
      float[] x,
      int xs,
      int x0,
      float[] out,
      int at,
      int os,
      boolean acc) {
    FloatVector a0 = start(out, at, acc);
    FloatVector a1 = start(out, at + L, acc);
    FloatVector b0 = start(out, at + os, acc);
    FloatVector b1 = start(out, at + os + L, acc);
    FloatVector c0 = start(out, at + 2 * os, acc);
    FloatVector c1 = start(out, at + 2 * os + L, acc);
    FloatVector d0 = start(out, at + 3 * os, acc);
    FloatVector d1 = start(out, at + 3 * os + L, acc);
    FloatVector e0 = start(out, at + 4 * os, acc);
    FloatVector e1 = start(out, at + 4 * os + L, acc);
    FloatVector f0 = start(out, at + 5 * os, acc);
    FloatVector f1 = start(out, at + 5 * os + L, acc);
    int x1 = x0 + xs;
    int x2 = x1 + xs;
    int x3 = x2 + xs;
    int x4 = x3 + xs;
    int x5 = x4 + xs;
    for (int i = 0, wi = base; i < depth; i++, wi += WIDTH) {
      FloatVector w0 = FloatVector.fromArray(S, w, wi);
      FloatVector w1 = FloatVector.fromArray(S, w, wi + L);
      FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
      a0 = w0.fma(v, a0);
      a1 = w1.fma(v, a1);
      v = FloatVector.broadcast(S, x[x1 + i]);
      b0 = w0.fma(v, b0);
      b1 = w1.fma(v, b1);
      v = FloatVector.broadcast(S, x[x2 + i]);
      c0 = w0.fma(v, c0);
      c1 = w1.fma(v, c1);
      v = FloatVector.broadcast(S, x[x3 + i]);
      d0 = w0.fma(v, d0);
      d1 = w1.fma(v, d1);
      v = FloatVector.broadcast(S, x[x4 + i]);
      e0 = w0.fma(v, e0);
      e1 = w1.fma(v, e1);
      v = FloatVector.broadcast(S, x[x5 + i]);
      f0 = w0.fma(v, f0);
      f1 = w1.fma(v, f1);
    }
    a0.intoArray(out, at);
    a1.intoArray(out, at + L);
    b0.intoArray(out, at + os);
    b1.intoArray(out, at + os + L);
    c0.intoArray(out, at + 2 * os);
    c1.intoArray(out, at + 2 * os + L);
    d0.intoArray(out, at + 3 * os);
    d1.intoArray(out, at + 3 * os + L);
    e0.intoArray(out, at + 4 * os);
    e1.intoArray(out, at + 4 * os + L);
    f0.intoArray(out, at + 5 * os);
    f1.intoArray(out, at + 5 * os + L);
  }
}
