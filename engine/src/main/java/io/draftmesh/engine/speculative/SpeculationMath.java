package io.draftmesh.engine.speculative;

import io.draftmesh.engine.sampling.ProbDist;

/**
 * Analytic expectations of speculative decoding (Leviathan et al. 2023, §3), for benchmarks. α is
 * the per-token acceptance rate, γ the number of draft tokens per round, c the cost of one draft
 * step relative to one target decode step.
 */
public final class SpeculationMath {
  private SpeculationMath() {}

  /**
   * Expected tokens emitted per round, (1 − α^(γ+1)) / (1 − α) = Σ_{i=0..γ} α^i (γ+1 at α = 1).
   * Summed directly, which stays accurate as α approaches 1.
   */
  public static double expectedTokensPerRound(double alpha, int gamma) {
    checkAlpha(alpha);
    if (gamma < 0) {
      throw new IllegalArgumentException("gamma: " + gamma + " (expected: >= 0)");
    }
    double sum = 0;
    double term = 1;
    for (int i = 0; i <= gamma; i++) {
      sum += term;
      term *= alpha;
    }
    return sum;
  }

  /**
   * Ideal wall-time speedup over plain decoding when verifying γ+1 tokens costs one target step:
   * expectedTokens / (γc + 1).
   */
  public static double idealSpeedup(double alpha, int gamma, double c) {
    return idealSpeedup(alpha, gamma, c, 1.0);
  }

  /**
   * Ideal speedup with a measured verification cost: expectedTokens / (γc + verifyCostRatio), where
   * verifyCostRatio = cost of one target pass over γ+1 tokens / cost of one target decode step (≈2
   * on our CPU, 1 in the paper's model).
   */
  public static double idealSpeedup(double alpha, int gamma, double c, double verifyCostRatio) {
    if (!(c >= 0) || Double.isInfinite(c)) {
      throw new IllegalArgumentException("c: " + c + " (expected: >= 0, finite)");
    }
    if (!(verifyCostRatio > 0) || Double.isInfinite(verifyCostRatio)) {
      throw new IllegalArgumentException(
          "verifyCostRatio: " + verifyCostRatio + " (expected: > 0, finite)");
    }
    return expectedTokensPerRound(alpha, gamma) / (gamma * c + verifyCostRatio);
  }

  /** The acceptance rate of draft q against target p: α = 1 − TV(p, q) = Σ min(p(x), q(x)). */
  public static double alphaFromTotalVariation(ProbDist p, ProbDist q) {
    if (p.vocabSize() != q.vocabSize()) {
      throw new IllegalArgumentException(
          "vocab sizes differ: p " + p.vocabSize() + ", q " + q.vocabSize());
    }
    float[] qd = q.toDense();
    float[] pp = p.probs();
    double sum = 0;
    for (int i = 0; i < pp.length; i++) {
      sum += Math.min(pp[i], qd[p.idAt(i)]);
    }
    return sum;
  }

  /** {@link #alphaFromTotalVariation(ProbDist, ProbDist)} of dense probability vectors. */
  public static double alphaFromTotalVariation(float[] p, float[] q) {
    return alphaFromTotalVariation(ProbDist.dense(p), ProbDist.dense(q));
  }

  /**
   * Whether a drafter that stops below {@code minProb} drafts the next token, given the most likely
   * token's probability under its distribution q. The decision must not depend on the token that is
   * then drawn: stopping on the drawn token's own probability changes which tokens reach the
   * verifier (among sent tokens, low-probability ones are missing), so the verifier, which assumes
   * x ~ q, no longer returns the target's distribution. Greedy drafts are their argmax, so there
   * the two coincide.
   */
  public static boolean draftsOn(float argmaxProb, float minProb) {
    return argmaxProb >= minProb;
  }

  private static void checkAlpha(double alpha) {
    if (!(alpha >= 0 && alpha <= 1)) {
      throw new IllegalArgumentException("alpha: " + alpha + " (expected: [0, 1])");
    }
  }
}
