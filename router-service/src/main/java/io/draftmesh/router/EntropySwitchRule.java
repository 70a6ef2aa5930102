package io.draftmesh.router;

/**
 * Entropy Adaptive Decoding's switch (papers.md §4): H_t is the entropy in bits of the raw softmax
 * of the model that wrote token t; the large model writes while the rolling mean of H over the last
 * {@code window} tokens exceeds τ, the small one otherwise. A switch needs at least {@code minRun}
 * tokens from the current writer, so the decision after a switch rests on the new writer's own
 * entropies when {@code minRun >= window}, and the two models cannot alternate token by token. The
 * small model starts (its entropy is what says the text got hard).
 */
final class EntropySwitchRule implements SpanRule {
  static final float DEFAULT_TAU = 1.5f;
  static final int DEFAULT_WINDOW = 5;

  private final float tau;
  private final int minRun;
  private final float[] ring; // (window) the latest entropies, oldest overwritten
  private int seen;
  private double sum;
  private boolean large;
  private int run; // tokens written by the current writer since it started

  EntropySwitchRule(float tau, int window, int minRun) {
    if (!(tau >= 0f) || window < 1 || minRun < 1) {
      throw new IllegalArgumentException(
          "tau "
              + tau
              + ", window "
              + window
              + ", minRun "
              + minRun
              + " (expected: >= 0, >= 1, >= 1)");
    }
    this.tau = tau;
    this.minRun = minRun;
    this.ring = new float[window];
  }

  @Override
  public boolean large() {
    return large;
  }

  @Override
  public boolean observe(String tokenText, float entropyBits) {
    float h = Float.isFinite(entropyBits) ? entropyBits : 0f;
    int slot = seen % ring.length;
    if (seen >= ring.length) {
      sum -= ring[slot];
    }
    ring[slot] = h;
    sum += h;
    seen++;
    run++;
    if (run < minRun) {
      return false;
    }
    boolean wantLarge = mean() > tau;
    if (wantLarge == large) {
      return false;
    }
    large = wantLarge;
    run = 0;
    return true;
  }

  /** The rolling mean over the latest min(window, seen) entropies; 0 before the first token. */
  float mean() {
    int n = Math.min(seen, ring.length);
    return n == 0 ? 0f : (float) (sum / n);
  }

  @Override
  public int safeTokens() {
    return Math.max(1, minRun - run);
  }

  @Override
  public float signal() {
    return mean();
  }
}
