package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.FloatBits;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A float16 weight matrix on the heap: half the bytes a step reads compared with {@link F32Matrix},
 * float32 accumulation. The layout is {@link Panels}' with two halves per int: in step i of panel
 * p, int lane l holds {@code w[o + l][i]} in its low half and {@code w[o + L + l][i]} in its high
 * half (o = p * WIDTH), so one int load widens ({@link Half}) into exactly the two weight vectors a
 * float32 panel step loads.
 *
 * <p>One activation row (decode) widens in registers: the step is memory-bound and widening is five
 * vector operations per 32 weights. Several rows widen a block of columns of the panel once into a
 * float32 scratch tile that stays in L1 and run the float32 kernels over it, so the widening is
 * spread over all rows of the step.
 */
final class F16Matrix implements Matrix {
  private static final VectorSpecies<Float> S = Half.S;
  private static final VectorSpecies<Integer> IS = Half.IS;
  private static final int L = S.length();
  private static final int P = Panels.WIDTH;

  /** Columns widened per scratch tile: 16 KiB of float32, half of L1. */
  private static final int TILE_DEPTH = (16 << 10) / (P * Float.BYTES);

  private static final ThreadLocal<float[]> TILE =
      ThreadLocal.withInitial(() -> new float[TILE_DEPTH * P]); // (TILE_DEPTH, WIDTH)

  private final int[] w; // (panels, cols, L) packed pairs of halves
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
    if (!Half.finite(bits)) {
      throw new IllegalArgumentException("float16 matrix holds infinity or NaN");
    }
    this.rows = rows;
    this.cols = cols;
    this.w = new int[Math.multiplyExact(Panels.count(rows) * L, cols)];
    for (int r = 0; r < rows; r++) {
      int j = r % P;
      int dst = r / P * cols * L + j % L;
      int shift = j < L ? 0 : 16;
      int from = r * cols;
      for (int i = 0; i < cols; i++) {
        w[dst + i * L] |= (bits[from + i] & 0xFFFF) << shift;
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

  @Override
  public void row(int r, float[] dst, int off) {
    int j = r % P;
    int at = r / P * cols * L + j % L;
    int shift = j < L ? 0 : 16;
    for (int i = 0; i < cols; i++) {
      dst[off + i] = FloatBits.f16ToFloat((short) (w[at + i * L] >>> shift));
    }
  }

  @Override
  public void multiply(
      float[] x, int n, float[] out, int outStride, boolean accumulate, int from, int to) {
    float[] tile = null;
    for (int o = from; o < to; o += P) {
      int base = o / P * cols * L;
      int valid = Math.min(P, to - o);
      if (n == 1 && valid == P) {
        row1(base, x, out, o, accumulate);
        continue;
      }
      tile = tile == null ? TILE.get() : tile; // one row of a partial panel goes this way too
      for (int i0 = 0; i0 < cols; i0 += TILE_DEPTH) {
        int depth = Math.min(TILE_DEPTH, cols - i0);
        widen(base + i0 * L, depth, tile);
        Panels.multiply(
            tile, 0, depth, x, cols, i0, n, out, outStride, accumulate || i0 > 0, o, valid);
      }
    }
  }

  /** Steps {@code [0, depth)} of a panel from int {@code at} as float32 into {@code tile}. */
  private void widen(int at, int depth, float[] tile) {
    for (int i = 0, wi = at, ti = 0; i < depth; i++, wi += L, ti += P) {
      IntVector v = IntVector.fromArray(IS, w, wi);
      Half.low(v).intoArray(tile, ti);
      Half.high(v).intoArray(tile, ti + L);
    }
  }

  /** One activation row, widening in registers; two steps per iteration as in {@link Panels}. */
  private void row1(int base, float[] x, float[] out, int o, boolean accumulate) {
    FloatVector a0 = accumulate ? FloatVector.fromArray(S, out, o) : FloatVector.zero(S);
    FloatVector a1 = accumulate ? FloatVector.fromArray(S, out, o + L) : FloatVector.zero(S);
    FloatVector c0 = FloatVector.zero(S);
    FloatVector c1 = c0;
    int i = 0;
    int wi = base;
    for (; i + 2 <= cols; i += 2, wi += 2 * L) {
      IntVector p = IntVector.fromArray(IS, w, wi);
      FloatVector v = FloatVector.broadcast(S, x[i]);
      a0 = Half.low(p).fma(v, a0);
      a1 = Half.high(p).fma(v, a1);
      IntVector q = IntVector.fromArray(IS, w, wi + L);
      FloatVector u = FloatVector.broadcast(S, x[i + 1]);
      c0 = Half.low(q).fma(u, c0);
      c1 = Half.high(q).fma(u, c1);
    }
    if (i < cols) {
      IntVector p = IntVector.fromArray(IS, w, wi);
      FloatVector v = FloatVector.broadcast(S, x[i]);
      a0 = Half.low(p).fma(v, a0);
      a1 = Half.high(p).fma(v, a1);
    }
    a0.add(c0).intoArray(out, o);
    a1.add(c1).intoArray(out, o + L);
  }
}
