package io.draftmesh.engine.model.cpu;

import java.util.Locale;

/**
 * Picks how many threads a model's matmuls use by timing the same work at 1 thread and at the
 * pool's maximum: on two shared cores a small model's matmuls are shorter than a hand-off is worth,
 * a large one's split almost perfectly. The work is one decode step's matmuls (every weight read
 * once); best of several passes once the timings have settled, alternating so a noisy neighbour
 * hits both.
 *
 * @param threads the choice
 * @param oneThreadMs best time of the work on one thread
 * @param maxThreadsMs best time on {@code maxThreads}
 */
record ThreadChoice(int threads, int maxThreads, double oneThreadMs, double maxThreadsMs) {
  /** More threads must win by this factor to be chosen: hand-offs add jitter under load. */
  static final double MIN_GAIN = 1.1;

  /**
   * Below this, one decode's matmuls stay on one thread whatever the timing says: the few
   * microseconds two threads save are less than what one worker descheduled mid-chunk costs (the
   * step waits for its chunk: a time slice, milliseconds). The zoo draft (0.026 ms on one thread)
   * timed 1.4x faster on two once, then ran its 5-token verifies at a median of 17.5 ms against
   * 0.36-0.4 ms on one thread.
   */
  static final double MIN_PARALLEL_MS = 0.1;

  /**
   * From this, more threads are the default and must lose clearly to be dropped: work this long
   * splits well on two cores, and a measurement at load loses it when the other core is busy for a
   * moment (the JIT compiling the model loaded before, another worker loading). The zoo target
   * (0.43-0.66 ms on one thread) once measured 0.662 vs 0.688 ms at load in a mesh and served on
   * one thread: its single ops then took 0.74-0.82 ms against 0.60 on two.
   */
  static final double SPLITS_WELL_MS = 0.3;

  private static final int WINDOW = 8;
  private static final int MAX_BUDGET_FACTOR = 5;

  /** A fixed choice, not measured. */
  static ThreadChoice fixed(int threads) {
    return new ThreadChoice(threads, threads, Double.NaN, Double.NaN);
  }

  static ThreadChoice measure(ComputePool pool, Runnable work, long budgetNanos) {
    int max = pool.maxThreads();
    if (max == 1) {
      return fixed(1);
    }
    // Timed in windows of WINDOW passes per thread count until a window improves on the one
    // before by less than 10% for both counts: the kernels are compiled then. C2 compiles them
    // in the background and, on a busy machine, had not finished for the first model a JVM
    // loads within a fixed warm-up (the draft timed 9-44 ms a pass on one thread, 0.08 ms
    // compiled, and chose 2 threads on that). C1-compiled kernels are slow but steady, so a
    // settled window counts only after a whole budget. Capped at MAX_BUDGET_FACTOR budgets.
    long start = System.nanoTime();
    long cap = start + budgetNanos * MAX_BUDGET_FACTOR;
    double prev1 = Double.MAX_VALUE;
    double prevMax = Double.MAX_VALUE;
    double best1;
    double bestMax;
    while (true) {
      double w1 = Double.MAX_VALUE;
      double wMax = Double.MAX_VALUE;
      for (int k = 0; k < WINDOW; k++) {
        w1 = Math.min(w1, time(pool, 1, work));
        wMax = Math.min(wMax, time(pool, max, work));
      }
      boolean settled = w1 > prev1 * 0.9 && wMax > prevMax * 0.9;
      best1 = Math.min(w1, prev1);
      bestMax = Math.min(wMax, prevMax);
      long now = System.nanoTime();
      if ((settled && now - start >= budgetNanos) || now >= cap) {
        break;
      }
      prev1 = w1;
      prevMax = wMax;
    }
    int choice = decide(best1 / 1e6, bestMax / 1e6, max);
    pool.setThreads(choice);
    return new ThreadChoice(choice, max, best1 / 1e6, bestMax / 1e6);
  }

  /**
   * The thread count for matmuls timed at {@code oneMs} on one thread and {@code maxMs} on {@code
   * max}: more only when the work is long enough to split and they win clearly.
   */
  static int decide(double oneMs, double maxMs, int max) {
    if (oneMs < MIN_PARALLEL_MS) {
      return 1;
    }
    if (oneMs >= SPLITS_WELL_MS) {
      return maxMs > oneMs * MIN_GAIN ? 1 : max;
    }
    return oneMs > maxMs * MIN_GAIN ? max : 1;
  }

  private static double time(ComputePool pool, int threads, Runnable work) {
    pool.setThreads(threads);
    long t0 = System.nanoTime();
    work.run();
    return System.nanoTime() - t0;
  }

  @Override
  public String toString() {
    if (Double.isNaN(oneThreadMs)) {
      return threads + (threads == 1 ? " thread" : " threads") + " (as configured)";
    }
    return String.format(
        Locale.ROOT,
        "%d %s (measured per decode's matmuls: 1 thread %.3f ms, %d threads %.3f ms)",
        threads,
        threads == 1 ? "thread" : "threads",
        oneThreadMs,
        maxThreads,
        maxThreadsMs);
  }
}
