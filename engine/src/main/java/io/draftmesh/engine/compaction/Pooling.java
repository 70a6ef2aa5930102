package io.draftmesh.engine.compaction;

/**
 * 1-D smoothing of per-position scores with stride 1 and the output as long as the input, as the
 * reference implementations call PyTorch's {@code max_pool1d} / {@code avg_pool1d}.
 *
 * <p>The window of position i is {@code [i - left, i + kernel - 1 - left]} with {@code left =
 * (kernel - 1) / 2}: centred for an odd kernel, one more on the right for an even one (SpecPC pads
 * its even kernels that way). Out-of-range cells are ignored by the max (scores are probabilities,
 * so PyTorch's zero or -inf padding gives the same) and count as 0 in the average
 * (count_include_pad, PyTorch's default that SnapKV relies on).
 */
public final class Pooling {
  private Pooling() {}

  public static float[] max(float[] x, int kernel) {
    checkKernel(kernel);
    int left = (kernel - 1) / 2;
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      int from = Math.max(0, i - left);
      int to = Math.min(x.length - 1, i + kernel - 1 - left);
      float m = Float.NEGATIVE_INFINITY;
      for (int j = from; j <= to; j++) {
        m = Math.max(m, x[j]);
      }
      out[i] = m;
    }
    return out;
  }

  public static float[] average(float[] x, int kernel) {
    checkKernel(kernel);
    int left = (kernel - 1) / 2;
    float[] out = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      int from = Math.max(0, i - left);
      int to = Math.min(x.length - 1, i + kernel - 1 - left);
      double s = 0;
      for (int j = from; j <= to; j++) {
        s += x[j];
      }
      out[i] = (float) (s / kernel);
    }
    return out;
  }

  private static void checkKernel(int kernel) {
    if (kernel < 1) {
      throw new IllegalArgumentException("kernel: " + kernel + " (expected: >= 1)");
    }
  }
}
