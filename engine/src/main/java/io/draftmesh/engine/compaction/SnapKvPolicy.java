package io.draftmesh.engine.compaction;

/**
 * SnapKV (FasterDecoding/SnapKV {@code snapkv_utils.py}): the last {@code window} prompt tokens
 * observe the rest; a position's score is its attention from those queries, reduced over the window
 * and the KV head's query group, then smoothed over neighbouring positions; each KV head keeps its
 * top {@code budget - window} positions plus the window.
 *
 * <p>Defaults are SpecKV's settings (window 32, max over the window and GQA group, max-pool 7), so
 * that against {@link SpecKvPolicy} the only difference is the draft answer (papers.md §2). {@link
 * #original()} gives SnapKV's own: mean over the window (its sum ranks the same) and group
 * (kvpress's GQA rule), average pool 5.
 */
public final class SnapKvPolicy extends ScoredKvPolicy {
  public static final int DEFAULT_WINDOW = 32;
  public static final int DEFAULT_KERNEL = 7;

  /** How window queries and a group's heads combine into one score. */
  public enum Reduction {
    MAX,
    MEAN
  }

  /** How scores are smoothed over positions. */
  public enum Pool {
    MAX,
    AVERAGE
  }

  private final int window;
  private final int kernel;
  private final Reduction reduction;
  private final Pool pool;

  public SnapKvPolicy(int window, int kernel, Reduction reduction, Pool pool) {
    if (window < 1) {
      throw new IllegalArgumentException("window: " + window + " (expected: >= 1)");
    }
    if (kernel < 1 || kernel % 2 == 0) {
      throw new IllegalArgumentException("kernel: " + kernel + " (expected: odd, >= 1)");
    }
    this.window = window;
    this.kernel = kernel;
    this.reduction = reduction;
    this.pool = pool;
  }

  public SnapKvPolicy() {
    this(DEFAULT_WINDOW, DEFAULT_KERNEL, Reduction.MAX, Pool.MAX);
  }

  /** SnapKV's own settings: window 32, mean reduction, average pool 5. */
  public static SnapKvPolicy original() {
    return new SnapKvPolicy(32, 5, Reduction.MEAN, Pool.AVERAGE);
  }

  /** window, kernel, and reduction (0 max, 1 mean) and pool (0 max, 1 average). */
  @Override
  public java.util.SortedMap<String, Long> parameters() {
    return new java.util.TreeMap<>(
        java.util.Map.of(
            "kernel", (long) kernel,
            "pool", (long) pool.ordinal(),
            "reduction", (long) reduction.ordinal(),
            "window", (long) window));
  }

  @Override
  public String name() {
    return "snapkv";
  }

  @Override
  public int observedQueries(int draftTokens) {
    return window;
  }

  @Override
  protected int window(int budget) {
    return windowWithin(window, budget);
  }

  @Override
  protected float[][][] scores(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int candidates) {
    checkAttention(name(), attention, layers, kvHeads, window, promptLength);
    float[][][] s = reduce(attention, window, candidates, reduction == Reduction.MAX);
    for (float[][] layer : s) {
      for (int h = 0; h < layer.length; h++) {
        layer[h] =
            pool == Pool.MAX ? Pooling.max(layer[h], kernel) : Pooling.average(layer[h], kernel);
      }
    }
    return s;
  }
}
