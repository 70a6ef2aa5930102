package io.draftmesh.engine.model.cpu;

import java.util.Locale;

/**
 * Picks how many threads a model's matmuls use by timing the same work at 1 thread and at the
 * pool's maximum: on two shared cores a small model's matmuls are shorter than a hand-off is worth,
 * a large one's split almost perfectly. The work is one decode step's matmuls (every weight read
 * once); best of several passes after a warm-up, alternating so a noisy neighbour hits both.
 *
 * @param threads the choice
 * @param oneThreadMs best time of the work on one thread
 * @param maxThreadsMs best time on {@code maxThreads}
 */
record ThreadChoice(int threads, int maxThreads, double oneThreadMs, double maxThreadsMs) {
  /** More threads must win by this factor to be chosen: hand-offs add jitter under load. */
  static final double MIN_GAIN = 1.1;

  /** A fixed choice, not measured. */
  static ThreadChoice fixed(int threads) {
    return new ThreadChoice(threads, threads, Double.NaN, Double.NaN);
  }

  static ThreadChoice measure(ComputePool pool, Runnable work, long budgetNanos) {
    int max = pool.maxThreads();
    if (max == 1) {
      return fixed(1);
    }
    long start = System.nanoTime();
    double best1 = Double.MAX_VALUE;
    double bestMax = Double.MAX_VALUE;
    // Warm-up: get the kernels compiled before anything is timed.
    for (int i = 0; i < 60 && System.nanoTime() - start < budgetNanos / 2; i++) {
      pool.setThreads(i % 2 == 0 ? 1 : max);
      work.run();
    }
    int rounds = 0;
    while (rounds < 4 || (rounds < 40 && System.nanoTime() - start < budgetNanos)) {
      best1 = Math.min(best1, time(pool, 1, work));
      bestMax = Math.min(bestMax, time(pool, max, work));
      rounds++;
    }
    int choice = best1 > bestMax * MIN_GAIN ? max : 1;
    pool.setThreads(choice);
    return new ThreadChoice(choice, max, best1 / 1e6, bestMax / 1e6);
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
