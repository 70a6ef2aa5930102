package io.draftmesh.bench;

import java.util.Arrays;

/**
 * Summary of repeated measurements: the median and its spread. Percentiles interpolate linearly
 * between order statistics, so a handful of samples still gives stable p10/p90.
 */
record Stats(double median, double p10, double p90, double min, double max, int n) {

  static Stats of(double[] samples) {
    if (samples.length == 0) {
      throw new IllegalArgumentException("samples: 0 (expected: at least one)");
    }
    double[] s = samples.clone();
    Arrays.sort(s);
    return new Stats(
        percentile(s, 0.5),
        percentile(s, 0.1),
        percentile(s, 0.9),
        s[0],
        s[s.length - 1],
        s.length);
  }

  /** Nanosecond samples as milliseconds. */
  static Stats ofNanosAsMillis(long[] nanos) {
    double[] ms = new double[nanos.length];
    for (int i = 0; i < ms.length; i++) {
      ms[i] = nanos[i] / 1e6;
    }
    return of(ms);
  }

  static double percentile(double[] sorted, double q) {
    double pos = q * (sorted.length - 1);
    int lo = (int) Math.floor(pos);
    int hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  }
}
