package io.draftmesh.router;

/**
 * The draft length schedule of Hugging Face's assisted generation ("heuristic"): after a round
 * whose every draft token was accepted, draft two more next time; after a rejection, one fewer.
 * Bounded to {@code [1, max]}. Lossless for any schedule: k depends only on rounds already done.
 */
final class AdaptiveK {
  private final int max;
  private int k;

  AdaptiveK(int start, int max) {
    if (max < 1) {
      throw new IllegalArgumentException("max " + max + " (expected: >= 1)");
    }
    this.max = max;
    this.k = Math.max(1, Math.min(start, max));
  }

  int k() {
    return k;
  }

  /**
   * What {@link #k()} becomes after a round of {@code requested} and {@code drafted} tokens that
   * the target accepts in full.
   */
  int ifAllAccepted(int requested, int drafted) {
    return drafted >= requested ? Math.min(max, k + 2) : k;
  }

  /**
   * Updates k from a round that asked for {@code requested} tokens, got {@code drafted} from the
   * draft and had {@code accepted} of them accepted.
   */
  void observe(int requested, int drafted, int accepted) {
    if (accepted >= drafted && drafted >= requested) {
      k = Math.min(max, k + 2);
    } else if (accepted < drafted) {
      k = Math.max(1, k - 1);
    }
    // A round the draft cut short by confidence and then fully accepted leaves k as it was.
  }
}
