package io.draftmesh.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Streaming read bandwidth of this machine, measured in the same run as the model timings so that
 * both see the same neighbours: a DJL (PyTorch, all intra-op threads) sum over a large fp32 array,
 * and a plain Java single-thread sum over a {@code long[]}. Both arrays are far larger than the
 * last-level cache; the best of a few reps is reported (bandwidth is a ceiling: noise only lowers
 * it).
 */
final class MemoryBandwidth {
  /** GB/s (10^9 bytes per second) of each method, best of {@code reps}. */
  record Result(long bytes, double djlSumGbps, double javaStreamGbps, int reps) {
    /** The machine's streaming bandwidth as far as this run could see: the faster method. */
    double referenceGbps() {
      return Math.max(djlSumGbps, javaStreamGbps);
    }

    /** Per method, the better of two measurements of the same size. */
    Result best(Result other) {
      return new Result(
          bytes,
          Math.max(djlSumGbps, other.djlSumGbps),
          Math.max(javaStreamGbps, other.javaStreamGbps),
          reps + other.reps);
    }
  }

  @SuppressWarnings("unused")
  private static volatile long blackhole;

  private MemoryBandwidth() {}

  static Result measure(NDManager parent, long bytes, int reps) {
    return new Result(bytes, djlSum(parent, bytes, reps), javaStream(bytes, reps), reps);
  }

  private static double djlSum(NDManager parent, long bytes, int reps) {
    long best = Long.MAX_VALUE;
    try (NDManager m = parent.newSubManager()) {
      NDArray a = m.ones(new Shape(bytes / Float.BYTES), DataType.FLOAT32); // touched once here
      float expected = bytes / Float.BYTES;
      for (int r = 0; r < reps + 1; r++) {
        long t0 = System.nanoTime();
        try (NDArray sum = a.sum()) {
          long dt = System.nanoTime() - t0;
          float got = sum.getFloat();
          // fp32 accumulation of ones is inexact for 2^28 elements; only guard against a no-op.
          if (!(got > expected / 2)) {
            throw new IllegalStateException("sum of " + expected + " ones: " + got);
          }
          if (r > 0) { // rep 0 warms the kernel and thread pool
            best = Math.min(best, dt);
          }
        }
      }
    }
    return bytes / (best / 1e9) / 1e9;
  }

  private static double javaStream(long bytes, int reps) {
    long[] data = new long[(int) Math.min(bytes / Long.BYTES, Integer.MAX_VALUE - 8)];
    for (int i = 0; i < data.length; i++) {
      data[i] = i;
    }
    long best = Long.MAX_VALUE;
    long sink = 0;
    for (int r = 0; r < reps + 2; r++) { // two warm-ups: interpreter, then C2
      long t0 = System.nanoTime();
      sink += sum(data);
      long dt = System.nanoTime() - t0;
      if (r >= 2) {
        best = Math.min(best, dt);
      }
    }
    blackhole = sink; // keeps the sums observable to the JIT
    return (double) data.length * Long.BYTES / (best / 1e9) / 1e9;
  }

  /** Integer add reductions vectorize in C2 (floating-point ones do not), so this is load-bound. */
  private static long sum(long[] data) {
    long s = 0;
    for (long v : data) {
      s += v;
    }
    return s;
  }
}
