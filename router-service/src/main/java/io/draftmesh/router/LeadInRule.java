package io.draftmesh.router;

/**
 * FoReaL-style lead-in (seed 001, FoReaL-Decoding): the large model writes the first {@code n}
 * tokens of every sentence, the small model the rest. A sentence ends after a token whose text,
 * trailing spaces ignored, ends with one of {@code sentenceEnd}'s characters; the output starts a
 * sentence. FoReaL's gate is stochastic; this one is deterministic, so runs are reproducible.
 */
final class LeadInRule implements SpanRule {
  static final int DEFAULT_N = 4;
  static final String DEFAULT_SENTENCE_END = ".!?\n";

  private final int n;
  private final String sentenceEnd;
  private int inSentence; // tokens of the current sentence written so far

  LeadInRule(int n, String sentenceEnd) {
    if (n < 0 || sentenceEnd.isEmpty()) {
      throw new IllegalArgumentException(
          "n " + n + ", sentence end \"" + sentenceEnd + "\" (expected: >= 0, non-empty)");
    }
    this.n = n;
    this.sentenceEnd = sentenceEnd;
  }

  @Override
  public boolean large() {
    return inSentence < n;
  }

  @Override
  public boolean observe(String tokenText, float entropyBits) {
    boolean before = large();
    inSentence = endsSentence(tokenText) ? 0 : inSentence + 1;
    return large() != before;
  }

  boolean endsSentence(String tokenText) {
    int end = tokenText.length();
    while (end > 0 && tokenText.charAt(end - 1) == ' ') {
      end--;
    }
    return end > 0 && sentenceEnd.indexOf(tokenText.charAt(end - 1)) >= 0;
  }

  @Override
  public int safeTokens() {
    // A sentence can end at any token, so only the rest of a lead-in is certain.
    return large() ? n - inSentence : 1;
  }

  @Override
  public float signal() {
    return inSentence;
  }
}
