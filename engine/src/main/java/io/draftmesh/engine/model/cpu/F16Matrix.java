package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.FloatBits;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A float16 weight matrix on the heap: half the bytes a step reads compared with {@link F32Matrix},
 * float32 accumulation. The layout is {@link Panels}' with two halves per int: in step i of panel
 * p, int lane l holds {@code w[o + l][i]} in its low half and {@code w[o + L + l][i]} in its high
 * half (o = p * WIDTH), so one int load widens ({@link Half}) into exactly the two weight vectors a
 * float32 panel step loads.
 *
 * <p>Up to {@link #REGISTER_ROWS} activation rows (decode, verify, small batches) widen in
 * registers: a step of one row is memory-bound and widening is a few vector operations per weight
 * vector, and for a few rows each widened pair feeds every row's FMAs. The register kernels widen
 * without the 2^112 multiply ({@link Half#lowScaled}) and take activations scaled by it instead
 * (less the weights' {@link #shift}), the same products for one operation fewer per weight vector
 * (decode matmuls 1.24-1.30x faster on AVX-512). Widening a block of the panel into a float32
 * scratch tile instead (stores, then reloads) cost a 2-row step 2.2x a 1-row one and made a 5-token
 * verify 3.7x a decode (measured on the zoo target, AVX2); with the register kernels it is 2.0x
 * there, and with the 5-row kernel of AVX-512 about 1.8x. On AVX2, more rows (prefill) widen each
 * block once into a tile that stays in L1 and run the float32 kernels over it; on AVX-512 the
 * register kernels take every step ({@link #REGISTER_ROWS}). The tile also takes a partial last
 * panel and steps whose activations are too large to scale.
 */
final class F16Matrix implements Matrix {
  private static final VectorSpecies<Float> S = Half.S;
  private static final VectorSpecies<Integer> IS = Half.IS;
  private static final int L = S.length();
  private static final int P = Panels.WIDTH;

  /**
   * Whether the 5-, 8- and 9-row kernels run: they hold 10, 16 and 18 accumulators, which fit in
   * the 32 vector registers of AVX-512 (16 float lanes) but spill on AVX2's 16 (a 5-row kernel made
   * a 5-token verify 4.7 ms against 3.3-4.4 with 4 + 1 rows there).
   */
  private static final boolean WIDE_KERNELS = L >= 16;

  /**
   * Up to this many activation rows widen in registers; more widen each panel once into a scratch
   * tile that all rows share. With the wide kernels, sweeping the weights once per 8 rows (a
   * thread's panels stay in L2) beat the tile at every row count measured, 9 to 256 (1.4-2.3x on
   * AVX-512, kernels of 2048x384 and 384x1024); on AVX2 the tile takes steps of more than 8 rows,
   * as measured when the kernels were written there.
   */
  private static final int REGISTER_ROWS = WIDE_KERNELS ? Integer.MAX_VALUE : 8;

  /** Columns widened per scratch tile: 16 KiB of float32, half of L1. */
  private static final int TILE_DEPTH = (16 << 10) / (P * Float.BYTES);

  private static final ThreadLocal<float[]> TILE =
      ThreadLocal.withInitial(() -> new float[TILE_DEPTH * P]); // (TILE_DEPTH, WIDTH)

  private static final ThreadLocal<float[]> SCALED =
      ThreadLocal.withInitial(() -> new float[0]); // (n, cols) activations, scaled

  /** Activations at or above this stay unscaled: times 2^112 they would near float32's 2^128. */
  private static final float MAX_SCALED = 0x1p15f;

  /**
   * Halves are stored times 2^shift, at most 2^10, the most that keeps the largest below float16's
   * 2^16: a power of two is exact, and at 2^10 no weight stays subnormal. Intel cores take a
   * microcode assist for every FMA with a subnormal operand (Java cannot set denormals-are-zero); a
   * trained model's weights are 0.1-0.2 % subnormal halves, so 2-3 % of weight vectors hold one,
   * and on a Xeon with AVX-512 that made every multi-row step 3x slower than float32 (19-20 against
   * 58-65 GMAC/s a core).
   */
  private final int shift;

  /**
   * What the register kernels' activations are multiplied by, {@link Half#SCALE} * 2^-shift: the
   * products are then exactly the unshifted weights' (powers of two round nothing).
   */
  private final float activationScale;

  private final int[] w; // (panels, cols, L) packed pairs of halves, times 2^shift
  private final int rows;
  private final int cols;

  /**
   * Packs {@code bits}, (rows, cols) binary16 patterns row-major, which must all be finite ({@link
   * Half#finite}).
   */
  F16Matrix(short[] bits, int rows, int cols) {
    if ((long) rows * cols != bits.length) {
      throw new IllegalArgumentException(
          "matrix of " + bits.length + " halves (expected: " + rows + " x " + cols + ")");
    }
    if (IS.length() != L) {
      throw new IllegalStateException("int and float species differ in lanes");
    }
    int top = Half.topExponent(bits);
    if (top == 31) {
      throw new IllegalArgumentException("float16 matrix holds infinity or NaN");
    }
    this.rows = rows;
    this.cols = cols;
    this.shift = Math.min(10, 30 - top); // the largest that keeps every half finite
    this.activationScale = Math.scalb(Half.SCALE, -shift);
    this.w = new int[Math.multiplyExact(Panels.count(rows) * L, cols)];
    for (int r = 0; r < rows; r++) {
      int j = r % P;
      int dst = r / P * cols * L + j % L;
      int half = j < L ? 0 : 16;
      int from = r * cols;
      for (int i = 0; i < cols; i++) {
        w[dst + i * L] |= (shifted(bits[from + i], shift) & 0xFFFF) << half;
      }
    }
  }

  /** {@code bits} times 2^shift, exactly (the result's exponent stays at most 30). */
  private static short shifted(short bits, int shift) {
    return shift == 0 ? bits : FloatBits.floatToF16(Math.scalb(FloatBits.f16ToFloat(bits), shift));
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

  @Override
  public void row(int r, float[] dst, int off) {
    int j = r % P;
    int at = r / P * cols * L + j % L;
    int half = j < L ? 0 : 16;
    for (int i = 0; i < cols; i++) {
      dst[off + i] = Math.scalb(FloatBits.f16ToFloat((short) (w[at + i * L] >>> half)), -shift);
    }
  }

  @Override
  public void multiply(
      float[] x, int n, float[] out, int outStride, boolean accumulate, int from, int to) {
    float[] xs = n <= REGISTER_ROWS ? scaled(x, n) : null;
    if (xs != null) {
      // Widen in registers (every step with the wide kernels, up to 8 rows without), once per
      // group of rows, the group's kernel sweeping every whole panel; a scratch tile's stores and
      // reloads would cost more than the widening they share. Each kernel is one call with its own
      // loop, whatever C2 inlines. A partial last panel goes the tile way below.
      int whole = from + (to - from) / P * P;
      int r = 0;
      if (WIDE_KERNELS) {
        while (n - r >= 8) {
          if (n - r == 9) { // one sweep, not 8 + 1
            rows9(xs, r * cols, out, r * outStride, outStride, accumulate, from, whole);
            r += 9;
          } else {
            rows8(xs, r * cols, out, r * outStride, outStride, accumulate, from, whole);
            r += 8;
          }
        }
        if (n - r >= 5) {
          rows5(xs, r * cols, out, r * outStride, outStride, accumulate, from, whole);
          r += 5;
        }
      }
      for (; n - r >= 4; r += 4) {
        rows4(xs, r * cols, out, r * outStride, outStride, accumulate, from, whole);
      }
      if (n - r >= 2) {
        rows2(xs, r * cols, out, r * outStride, outStride, accumulate, from, whole);
        r += 2;
      }
      if (r < n) {
        row1(xs, r * cols, out, r * outStride, accumulate, from, whole);
      }
      from = whole;
    }
    float[] tile = null;
    for (int o = from; o < to; o += P) {
      int base = o / P * cols * L;
      int valid = Math.min(P, to - o);
      tile = tile == null ? TILE.get() : tile;
      for (int i0 = 0; i0 < cols; i0 += TILE_DEPTH) {
        int depth = Math.min(TILE_DEPTH, cols - i0);
        widen(base + i0 * L, depth, tile);
        Panels.multiply(
            tile, 0, depth, x, cols, i0, n, out, outStride, accumulate || i0 > 0, o, valid);
      }
    }
  }

  /**
   * The first n rows of x times {@link #activationScale}, for the register kernels (which then
   * widen without the multiply), in a per-thread scratch; null when an activation is too large to
   * scale (|x| >= 2^15, far beyond what a float16 model produces), and the tile path takes the
   * step.
   */
  private float[] scaled(float[] x, int n) {
    int len = n * cols;
    float[] xs = SCALED.get();
    if (xs.length < len) {
      xs = new float[len];
      SCALED.set(xs);
    }
    int bound = S.loopBound(len);
    FloatVector big = FloatVector.zero(S);
    int i = 0;
    for (; i < bound; i += L) {
      FloatVector v = FloatVector.fromArray(S, x, i);
      big = big.max(v.abs());
      v.mul(activationScale).intoArray(xs, i);
    }
    float max = big.reduceLanes(VectorOperators.MAX);
    for (; i < len; i++) {
      max = Math.max(max, Math.abs(x[i]));
      xs[i] = x[i] * activationScale;
    }
    return max < MAX_SCALED ? xs : null;
  }

  /** Steps {@code [0, depth)} of a panel from int {@code at} as float32 into {@code tile}. */
  private void widen(int at, int depth, float[] tile) {
    for (int i = 0, wi = at, ti = 0; i < depth; i++, wi += L, ti += P) {
      IntVector v = IntVector.fromArray(IS, w, wi);
      Half.lowScaled(v).mul(activationScale).intoArray(tile, ti);
      Half.highScaled(v).mul(activationScale).intoArray(tile, ti + L);
    }
  }

  /**
   * One activation row from {@code x[x0]} into {@code out[out0 + o]} for the whole panels of {@code
   * [from, to)}: two steps per iteration into four accumulators, so FMA latency is hidden.
   */
  private void row1(float[] x, int x0, float[] out, int out0, boolean acc, int from, int to) {
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector c0 = FloatVector.zero(S);
      FloatVector c1 = c0;
      int i = 0;
      int wi = o / P * cols * L;
      for (; i + 2 <= cols; i += 2, wi += 2 * L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
        a0 = Half.lowScaled(p).fma(v, a0);
        a1 = Half.highScaled(p).fma(v, a1);
        IntVector q = IntVector.fromArray(IS, w, wi + L);
        FloatVector u = FloatVector.broadcast(S, x[x0 + i + 1]);
        c0 = Half.lowScaled(q).fma(u, c0);
        c1 = Half.highScaled(q).fma(u, c1);
      }
      if (i < cols) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector v = FloatVector.broadcast(S, x[x0 + i]);
        a0 = Half.lowScaled(p).fma(v, a0);
        a1 = Half.highScaled(p).fma(v, a1);
      }
      a0.add(c0).intoArray(out, at);
      a1.add(c1).intoArray(out, at + L);
    }
  }

  /** Two rows (x[x0..], x[x0 + cols..]; outputs os apart) sharing each widened weight pair. */
  private void rows2(
      float[] x, int x0, float[] out, int out0, int os, boolean acc, int from, int to) {
    int x1 = x0 + cols;
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector b0 = acc ? FloatVector.fromArray(S, out, at + os) : FloatVector.zero(S);
      FloatVector b1 = acc ? FloatVector.fromArray(S, out, at + os + L) : FloatVector.zero(S);
      for (int i = 0, wi = o / P * cols * L; i < cols; i++, wi += L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector w0 = Half.lowScaled(p);
        FloatVector w1 = Half.highScaled(p);
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
  }

  /** Four rows sharing each widened weight pair: eight accumulators. */
  private void rows4(
      float[] x, int x0, float[] out, int out0, int os, boolean acc, int from, int to) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector b0 = acc ? FloatVector.fromArray(S, out, at + os) : FloatVector.zero(S);
      FloatVector b1 = acc ? FloatVector.fromArray(S, out, at + os + L) : FloatVector.zero(S);
      FloatVector c0 = acc ? FloatVector.fromArray(S, out, at + 2 * os) : FloatVector.zero(S);
      FloatVector c1 = acc ? FloatVector.fromArray(S, out, at + 2 * os + L) : FloatVector.zero(S);
      FloatVector d0 = acc ? FloatVector.fromArray(S, out, at + 3 * os) : FloatVector.zero(S);
      FloatVector d1 = acc ? FloatVector.fromArray(S, out, at + 3 * os + L) : FloatVector.zero(S);
      for (int i = 0, wi = o / P * cols * L; i < cols; i++, wi += L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector w0 = Half.lowScaled(p);
        FloatVector w1 = Half.highScaled(p);
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
  }

  /** Five rows (a 4-token verify) sharing each widened weight pair: ten accumulators. */
  private void rows5(
      float[] x, int x0, float[] out, int out0, int os, boolean acc, int from, int to) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    int x4 = x3 + cols;
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector b0 = acc ? FloatVector.fromArray(S, out, at + os) : FloatVector.zero(S);
      FloatVector b1 = acc ? FloatVector.fromArray(S, out, at + os + L) : FloatVector.zero(S);
      FloatVector c0 = acc ? FloatVector.fromArray(S, out, at + 2 * os) : FloatVector.zero(S);
      FloatVector c1 = acc ? FloatVector.fromArray(S, out, at + 2 * os + L) : FloatVector.zero(S);
      FloatVector d0 = acc ? FloatVector.fromArray(S, out, at + 3 * os) : FloatVector.zero(S);
      FloatVector d1 = acc ? FloatVector.fromArray(S, out, at + 3 * os + L) : FloatVector.zero(S);
      FloatVector e0 = acc ? FloatVector.fromArray(S, out, at + 4 * os) : FloatVector.zero(S);
      FloatVector e1 = acc ? FloatVector.fromArray(S, out, at + 4 * os + L) : FloatVector.zero(S);
      for (int i = 0, wi = o / P * cols * L; i < cols; i++, wi += L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector w0 = Half.lowScaled(p);
        FloatVector w1 = Half.highScaled(p);
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
  }

  /** Eight rows sharing each widened weight pair: sixteen accumulators ({@link #WIDE_KERNELS}). */
  private void rows8(
      float[] x, int x0, float[] out, int out0, int os, boolean acc, int from, int to) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    int x4 = x3 + cols;
    int x5 = x4 + cols;
    int x6 = x5 + cols;
    int x7 = x6 + cols;
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector b0 = acc ? FloatVector.fromArray(S, out, at + os) : FloatVector.zero(S);
      FloatVector b1 = acc ? FloatVector.fromArray(S, out, at + os + L) : FloatVector.zero(S);
      FloatVector c0 = acc ? FloatVector.fromArray(S, out, at + 2 * os) : FloatVector.zero(S);
      FloatVector c1 = acc ? FloatVector.fromArray(S, out, at + 2 * os + L) : FloatVector.zero(S);
      FloatVector d0 = acc ? FloatVector.fromArray(S, out, at + 3 * os) : FloatVector.zero(S);
      FloatVector d1 = acc ? FloatVector.fromArray(S, out, at + 3 * os + L) : FloatVector.zero(S);
      FloatVector e0 = acc ? FloatVector.fromArray(S, out, at + 4 * os) : FloatVector.zero(S);
      FloatVector e1 = acc ? FloatVector.fromArray(S, out, at + 4 * os + L) : FloatVector.zero(S);
      FloatVector f0 = acc ? FloatVector.fromArray(S, out, at + 5 * os) : FloatVector.zero(S);
      FloatVector f1 = acc ? FloatVector.fromArray(S, out, at + 5 * os + L) : FloatVector.zero(S);
      FloatVector g0 = acc ? FloatVector.fromArray(S, out, at + 6 * os) : FloatVector.zero(S);
      FloatVector g1 = acc ? FloatVector.fromArray(S, out, at + 6 * os + L) : FloatVector.zero(S);
      FloatVector h0 = acc ? FloatVector.fromArray(S, out, at + 7 * os) : FloatVector.zero(S);
      FloatVector h1 = acc ? FloatVector.fromArray(S, out, at + 7 * os + L) : FloatVector.zero(S);
      for (int i = 0, wi = o / P * cols * L; i < cols; i++, wi += L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector w0 = Half.lowScaled(p);
        FloatVector w1 = Half.highScaled(p);
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
        v = FloatVector.broadcast(S, x[x6 + i]);
        g0 = w0.fma(v, g0);
        g1 = w1.fma(v, g1);
        v = FloatVector.broadcast(S, x[x7 + i]);
        h0 = w0.fma(v, h0);
        h1 = w1.fma(v, h1);
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
      g0.intoArray(out, at + 6 * os);
      g1.intoArray(out, at + 6 * os + L);
      h0.intoArray(out, at + 7 * os);
      h1.intoArray(out, at + 7 * os + L);
    }
  }

  /**
   * Nine rows sharing each widened weight pair: eighteen accumulators, which with the pair and the
   * broadcast still fit AVX-512's 32 registers ({@link #WIDE_KERNELS}). Nine is a common count (an
   * 8-node tree or an 8-token chain verify feeds its root too): as 8 + 1 it swept the weights
   * twice.
   */
  private void rows9(
      float[] x, int x0, float[] out, int out0, int os, boolean acc, int from, int to) {
    int x1 = x0 + cols;
    int x2 = x1 + cols;
    int x3 = x2 + cols;
    int x4 = x3 + cols;
    int x5 = x4 + cols;
    int x6 = x5 + cols;
    int x7 = x6 + cols;
    int x8 = x7 + cols;
    for (int o = from; o < to; o += P) {
      int at = out0 + o;
      FloatVector a0 = acc ? FloatVector.fromArray(S, out, at) : FloatVector.zero(S);
      FloatVector a1 = acc ? FloatVector.fromArray(S, out, at + L) : FloatVector.zero(S);
      FloatVector b0 = acc ? FloatVector.fromArray(S, out, at + os) : FloatVector.zero(S);
      FloatVector b1 = acc ? FloatVector.fromArray(S, out, at + os + L) : FloatVector.zero(S);
      FloatVector c0 = acc ? FloatVector.fromArray(S, out, at + 2 * os) : FloatVector.zero(S);
      FloatVector c1 = acc ? FloatVector.fromArray(S, out, at + 2 * os + L) : FloatVector.zero(S);
      FloatVector d0 = acc ? FloatVector.fromArray(S, out, at + 3 * os) : FloatVector.zero(S);
      FloatVector d1 = acc ? FloatVector.fromArray(S, out, at + 3 * os + L) : FloatVector.zero(S);
      FloatVector e0 = acc ? FloatVector.fromArray(S, out, at + 4 * os) : FloatVector.zero(S);
      FloatVector e1 = acc ? FloatVector.fromArray(S, out, at + 4 * os + L) : FloatVector.zero(S);
      FloatVector f0 = acc ? FloatVector.fromArray(S, out, at + 5 * os) : FloatVector.zero(S);
      FloatVector f1 = acc ? FloatVector.fromArray(S, out, at + 5 * os + L) : FloatVector.zero(S);
      FloatVector g0 = acc ? FloatVector.fromArray(S, out, at + 6 * os) : FloatVector.zero(S);
      FloatVector g1 = acc ? FloatVector.fromArray(S, out, at + 6 * os + L) : FloatVector.zero(S);
      FloatVector h0 = acc ? FloatVector.fromArray(S, out, at + 7 * os) : FloatVector.zero(S);
      FloatVector h1 = acc ? FloatVector.fromArray(S, out, at + 7 * os + L) : FloatVector.zero(S);
      FloatVector k0 = acc ? FloatVector.fromArray(S, out, at + 8 * os) : FloatVector.zero(S);
      FloatVector k1 = acc ? FloatVector.fromArray(S, out, at + 8 * os + L) : FloatVector.zero(S);
      for (int i = 0, wi = o / P * cols * L; i < cols; i++, wi += L) {
        IntVector p = IntVector.fromArray(IS, w, wi);
        FloatVector w0 = Half.lowScaled(p);
        FloatVector w1 = Half.highScaled(p);
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
        v = FloatVector.broadcast(S, x[x6 + i]);
        g0 = w0.fma(v, g0);
        g1 = w1.fma(v, g1);
        v = FloatVector.broadcast(S, x[x7 + i]);
        h0 = w0.fma(v, h0);
        h1 = w1.fma(v, h1);
        v = FloatVector.broadcast(S, x[x8 + i]);
        k0 = w0.fma(v, k0);
        k1 = w1.fma(v, k1);
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
      g0.intoArray(out, at + 6 * os);
      g1.intoArray(out, at + 6 * os + L);
      h0.intoArray(out, at + 7 * os);
      h1.intoArray(out, at + 7 * os + L);
      k0.intoArray(out, at + 8 * os);
      k1.intoArray(out, at + 8 * os + L);
    }
  }
}
