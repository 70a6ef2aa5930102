package io.draftmesh.router;

import java.util.Arrays;

/**
 * Prompt-lookup drafting (model-free): find the latest n tokens of the sequence earlier in the
 * sequence (prompt and output alike), trying n = maxN down to minN, and propose the tokens that
 * followed the most recent such occurrence. The target verifies them like any draft; a
 * deterministic proposal is a one-hot draft distribution, for which the lossless rule is exact.
 */
final class NgramDrafter {
  private final int maxN;
  private final int minN;

  NgramDrafter(int maxN, int minN) {
    if (minN < 1 || maxN < minN) {
      throw new IllegalArgumentException(
          "ngram n " + maxN + ", min_n " + minN + " (expected: 1 <= min_n <= n)");
    }
    this.maxN = maxN;
    this.minN = minN;
  }

  /**
   * Up to {@code k} tokens that followed the longest, then most recent, earlier match of the
   * sequence's suffix; empty when nothing matches.
   *
   * @param seq the sequence so far; only {@code seq[0, len)} is read
   */
  int[] propose(int[] seq, int len, int k) {
    if (k < 1) {
      return new int[0];
    }
    for (int n = Math.min(maxN, len - 1); n >= minN; n--) {
      int suffix = len - n;
      // Latest start i < suffix whose n tokens equal the suffix; i + n < len, so a token follows.
      for (int i = suffix - 1; i >= 0; i--) {
        if (matches(seq, i, suffix, n)) {
          int from = i + n;
          int to = Math.min(from + k, len);
          return Arrays.copyOfRange(seq, from, to);
        }
      }
    }
    return new int[0];
  }

  private static boolean matches(int[] seq, int a, int b, int n) {
    for (int j = 0; j < n; j++) {
      if (seq[a + j] != seq[b + j]) {
        return false;
      }
    }
    return true;
  }
}
