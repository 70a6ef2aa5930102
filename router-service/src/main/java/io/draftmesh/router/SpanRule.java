package io.draftmesh.router;

/**
 * Who writes the next token when a small and a large model take turns ({@link SpanSwitchDecoding}):
 * one small type per policy, fed every committed token. Not thread-safe.
 */
interface SpanRule {
  /** Whether the large model writes the next token. */
  boolean large();

  /**
   * Records a committed token: its text (as it decodes on its own) and the raw entropy, in bits, of
   * the distribution of the model that wrote it. Returns whether the writer changes.
   */
  boolean observe(String tokenText, float entropyBits);

  /** Tokens the current writer may write before the rule could switch (at least 1). */
  int safeTokens();

  /** The signal behind the latest decision, for switch events (e.g. the rolling entropy). */
  float signal();
}
