package io.draftmesh.engine.model.cpu;

/**
 * A float32 weight matrix on the heap in {@link Panels} layout: panel p holds output features
 * {@code [p * WIDTH, (p + 1) * WIDTH)} input-major, the last panel zero-padded.
 */
final class F32Matrix implements Matrix {
  private static final int P = Panels.WIDTH;

  private final float[] w; // (panels, cols, WIDTH)
  private final int rows;
  private final int cols;

  /** Lays out {@code src}, (rows, cols) row-major as torch stores it. */
  F32Matrix(float[] src, int rows, int cols) {
    if ((long) rows * cols != src.length) {
      throw new IllegalArgumentException(
          "matrix of " + src.length + " floats (expected: " + rows + " x " + cols + ")");
    }
    this.rows = rows;
    this.cols = cols;
    this.w = new float[Math.multiplyExact(Panels.count(rows) * P, cols)];
    for (int r = 0; r < rows; r++) {
      int dst = r / P * cols * P + r % P;
      int from = r * cols;
      for (int i = 0; i < cols; i++) {
        w[dst + i * P] = src[from + i];
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
    return (long) rows * cols * Float.BYTES;
  }

  @Override
  public String dtype() {
    return "float32";
  }

  @Override
  public void row(int r, float[] dst, int off) {
    int at = r / P * cols * P + r % P;
    for (int i = 0; i < cols; i++) {
      dst[off + i] = w[at + i * P];
    }
  }

  @Override
  public void multiply(
      float[] x, int n, float[] out, int outStride, boolean accumulate, int from, int to) {
    for (int o = from; o < to; o += P) {
      Panels.multiply(
          w,
          o / P * cols * P,
          cols,
          x,
          cols,
          0,
          n,
          out,
          outStride,
          accumulate,
          o,
          Math.min(P, to - o));
    }
  }
}
