package io.draftmesh.engine.compaction;

/**
 * H2O, heavy hitters plus recent window (Zhang et al. 2023, FMInference/H2O {@code
 * utils_real_drop}), in the one-shot after-prefill form this engine runs: a position's score is the
 * attention it received from every prompt query (the accumulated attention of H2O, summed over the
 * causal rows, not only a window), summed over the KV head's query group; each KV head keeps its
 * top {@code budget - window} positions plus the most recent {@code window}. No pooling.
 *
 * <p>The original also evicts during decoding (each new token's attention updates the sums and the
 * lowest slot leaves); here decoding continues on the compacted cache with no further eviction, as
 * for every policy of this engine. Its paper splits the budget equally between heavy hitters and
 * recent tokens, which {@link KvPolicies} makes the default window (half the budget).
 *
 * <p>The engine collects only the per-head sum of the rows ({@link #summedQueries}), so reading
 * every prompt query costs one row of keys per head and layer, not a square.
 */
public final class H2oPolicy extends ScoredKvPolicy {
  private final int window;

  /**
   * @param window recent prompt positions every head keeps, within the budget; 0 keeps only heavy
   *     hitters
   */
  public H2oPolicy(int window) {
    if (window < 0) {
      throw new IllegalArgumentException("window: " + window + " (expected: >= 0)");
    }
    this.window = window;
  }

  @Override
  public String name() {
    return "h2o";
  }

  @Override
  public java.util.SortedMap<String, Long> parameters() {
    return new java.util.TreeMap<>(java.util.Map.of("window", (long) window));
  }

  /** Every prompt query: the engine caps this at the tokens fed. */
  @Override
  public int observedQueries(int draftTokens) {
    return Integer.MAX_VALUE;
  }

  @Override
  public boolean summedQueries() {
    return true;
  }

  @Override
  protected int window(int budget) {
    return windowWithin(window, budget);
  }

  /**
   * Reads one row per query head, the sum of every prompt query's row ({@link #summedQueries}); the
   * group's mean ranks as its sum.
   */
  @Override
  protected float[][][] scores(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int candidates) {
    checkAttention(name(), attention, layers, kvHeads, 1, promptLength);
    if (attention.queries() != 1) {
      throw new IllegalArgumentException(
          "h2o: attention of "
              + attention.queries()
              + " query rows (expected: 1, the sum of every prompt query's row)");
    }
    return reduce(attention, 1, candidates, false);
  }
}
