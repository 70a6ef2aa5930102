package io.draftmesh.engine.compaction;

/**
 * The kvpress shape: a subclass scores the candidate positions of each layer and KV head; this base
 * keeps the top {@code budget - window} of them plus the recent window that every head keeps.
 *
 * <p>Layout of a compacted prompt of length L: candidates are {@code [0, L - refeed - window)}, the
 * window is {@code [L - refeed - window, L - refeed)}, and the last {@code refeed} tokens are
 * re-fed on the compacted cache.
 */
public abstract class ScoredKvPolicy implements KvPolicy {

  /** Prompt positions every head keeps, ending just before the re-fed tokens. */
  protected abstract int window(int budget);

  /** {@code window}, which must fit in {@code budget}: the observation window is always kept. */
  protected static int windowWithin(int window, int budget) {
    if (window > budget) {
      throw new IllegalArgumentException(
          "window: " + window + " (expected: <= budget " + budget + ")");
    }
    return window;
  }

  /** Trailing prompt tokens to re-feed after compaction. */
  protected int refeed() {
    return 0;
  }

  /**
   * Scores of candidate positions {@code [0, candidates)}: (layers, kvHeads, candidates). Higher is
   * kept first.
   */
  protected abstract float[][][] scores(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int candidates);

  @Override
  public final KvSelection select(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int budget) {
    if (budget < 1) {
      throw new IllegalArgumentException("budget: " + budget + " (expected: >= 1)");
    }
    if (promptLength <= budget) {
      return KvSelection.all(layers, kvHeads, promptLength);
    }
    int window = window(budget);
    if (window < 0 || window > budget) {
      throw new IllegalArgumentException(
          name() + " window: " + window + " (expected: 0.." + budget + ", within the budget)");
    }
    int refeed = refeed();
    int candidates = promptLength - refeed - window;
    int k = budget - window;
    if (candidates < k) {
      // Fewer candidates than slots left: the prompt barely exceeds the budget; keep all of them.
      k = candidates;
    }
    float[][][] scores = scores(layers, kvHeads, attention, promptLength, candidates);
    return TopKPerHead.select(scores, k, candidates, promptLength - refeed, promptLength, refeed);
  }

  /** Checks that attention covers at least {@code rows} query rows over {@code keys} keys. */
  static void checkAttention(
      String policy, CapturedAttention a, int layers, int kvHeads, int rows, int keys) {
    if (a == null) {
      throw new IllegalArgumentException(policy + ": attention missing (expected: captured)");
    }
    if (a.numLayers() != layers || a.kvHeads() != kvHeads) {
      throw new IllegalArgumentException(
          policy
              + ": attention of "
              + a.numLayers()
              + " layers x "
              + a.kvHeads()
              + " kv heads (expected: "
              + layers
              + " x "
              + kvHeads
              + ")");
    }
    if (a.keys() != keys || a.queries() < rows) {
      throw new IllegalArgumentException(
          policy
              + ": attention of "
              + a.queries()
              + " query rows over "
              + a.keys()
              + " keys (expected: >= "
              + rows
              + " rows over "
              + keys
              + " keys)");
    }
  }

  /**
   * Per KV head, reduces the last {@code rows} query rows of its query heads over keys {@code [0,
   * candidates)} with max or mean.
   */
  static float[][][] reduce(CapturedAttention a, int rows, int candidates, boolean max) {
    int layers = a.numLayers();
    int group = a.group();
    int firstRow = a.queries() - rows;
    float[][][] out = new float[layers][a.kvHeads()][candidates];
    for (int l = 0; l < layers; l++) {
      for (int kv = 0; kv < a.kvHeads(); kv++) {
        float[] s = out[l][kv];
        for (int g = 0; g < group; g++) {
          int head = kv * group + g;
          for (int q = firstRow; q < a.queries(); q++) {
            for (int j = 0; j < candidates; j++) {
              float p = a.prob(l, head, q, j);
              s[j] = max ? Math.max(s[j], p) : s[j] + p;
            }
          }
        }
        if (!max) {
          float n = (float) group * rows;
          for (int j = 0; j < candidates; j++) {
            s[j] /= n;
          }
        }
      }
    }
    return out;
  }
}
