package io.draftmesh.engine.compaction;

/**
 * SpecKV (furiosa-ai/draft-based-approx-llm {@code speckv/}): SnapKV whose observation window is
 * extended by the draft's answer. The target prefills prompt ⊕ draft answer (n tokens) and scores
 * with its own queries: the window is the last {@code window + n + 1} rows (the last {@code window
 * + 1} prompt tokens and the answer); a prompt position's score is its attention from those rows,
 * max over the window and the KV head's query group, max-pooled (odd kernel, centred).
 *
 * <p>Kept per KV head: the top {@code budget - window} positions before the window, plus the
 * prompt's positions {@code [L - window - 1, L - 1)}. The reference crops its cache to C_max after
 * compression, which drops the draft answer's KV and the last prompt token's; the last prompt token
 * is then re-fed on the compacted cache ({@link KvSelection#refeed()} = 1).
 */
public final class SpecKvPolicy extends ScoredKvPolicy {
  public static final int DEFAULT_WINDOW = 32;
  public static final int DEFAULT_KERNEL = 7;

  private final int window;
  private final int kernel;

  public SpecKvPolicy(int window, int kernel) {
    if (window < 1) {
      throw new IllegalArgumentException("window: " + window + " (expected: >= 1)");
    }
    if (kernel < 1 || kernel % 2 == 0) {
      throw new IllegalArgumentException("kernel: " + kernel + " (expected: odd, >= 1)");
    }
    this.window = window;
    this.kernel = kernel;
  }

  public SpecKvPolicy() {
    this(DEFAULT_WINDOW, DEFAULT_KERNEL);
  }

  @Override
  public java.util.SortedMap<String, Long> parameters() {
    return new java.util.TreeMap<>(
        java.util.Map.of("kernel", (long) kernel, "window", (long) window));
  }

  @Override
  public String name() {
    return "speckv";
  }

  @Override
  public int observedQueries(int draftTokens) {
    return window + draftTokens + 1;
  }

  @Override
  protected int window(int budget) {
    return windowWithin(window, budget);
  }

  @Override
  protected int refeed() {
    return 1;
  }

  @Override
  protected float[][][] scores(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int candidates) {
    if (attention == null) {
      throw new IllegalArgumentException(name() + ": attention missing (expected: captured)");
    }
    int draftTokens = attention.keys() - promptLength;
    if (draftTokens < 0) {
      throw new IllegalArgumentException(
          name()
              + ": attention over "
              + attention.keys()
              + " keys (expected: >= the prompt's "
              + promptLength
              + ")");
    }
    int rows = observedQueries(draftTokens);
    checkAttention(name(), attention, layers, kvHeads, rows, promptLength + draftTokens);
    float[][][] s = reduce(attention, rows, candidates, true);
    for (float[][] layer : s) {
      for (int h = 0; h < layer.length; h++) {
        layer[h] = Pooling.max(layer[h], kernel);
      }
    }
    return s;
  }
}
