package io.draftmesh.engine.speculative;

import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.TokenSampler;
import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * The lossless verification rules of speculative decoding (Leviathan et al. 2023, Chen et al. 2023)
 * as pure functions. A round proposes k draft tokens; the target scores k+1 positions (one per
 * draft token, plus the position after the last); the round emits {@code draft[0..accepted)}
 * followed by {@link Outcome#nextToken()} — between 1 and k+1 tokens.
 *
 * <p>All distributions are the request's <em>transformed</em> ones (same {@code SamplingPipeline}
 * for draft and target). Sampling is lossless only if each {@code draft[i]} really was drawn from
 * {@code q[i]}. Model-free drafters (n-gram, token recycling) propose deterministically: pass
 * {@link ProbDist#oneHot} on the proposed token as its q, which is exact.
 */
public final class SpeculativeVerifier {
  private SpeculativeVerifier() {}

  /**
   * The result of one verification round.
   *
   * @param accepted how many draft tokens were accepted, 0..k
   * @param nextToken the token emitted after them: the correction when {@code accepted < k}, else
   *     the bonus token from the target's last position
   * @param bonus whether every draft token was accepted (so {@code nextToken} is the bonus)
   */
  public record Outcome(int accepted, int nextToken, boolean bonus) {
    /** Number of tokens the round emits: {@code accepted + 1}. */
    public int emittedCount() {
      return accepted + 1;
    }

    /** The emitted tokens: {@code draft[0..accepted)} then {@code nextToken}. */
    public int[] emitted(int[] draft) {
      int[] out = Arrays.copyOf(draft, accepted + 1);
      out[accepted] = nextToken;
      return out;
    }
  }

  /**
   * Greedy verification: accept while {@code draft[i] == targetArgmax[i]}; at the first mismatch
   * emit {@code targetArgmax[i]}; if all k match, the bonus is {@code targetArgmax[k]}.
   *
   * @param draft the k draft tokens
   * @param targetArgmax length k+1: the target's argmax at each draft position and the one after
   */
  public static Outcome greedy(int[] draft, int[] targetArgmax) {
    requireNonNull(draft, "verify.draft_tokens");
    requireNonNull(targetArgmax, "verify.target_argmax");
    int k = draft.length;
    if (targetArgmax.length != k + 1) {
      throw EngineException.invalid(
          "verify.target_argmax: "
              + targetArgmax.length
              + " given, expected "
              + (k + 1)
              + " (one per draft token, plus the bonus position)");
    }
    for (int i = 0; i < k; i++) {
      if (draft[i] != targetArgmax[i]) {
        return new Outcome(i, targetArgmax[i], false);
      }
    }
    return new Outcome(k, targetArgmax[k], true);
  }

  /**
   * Speculative sampling. For i = 0..k-1, accept {@code draft[i] = x} with probability min(1,
   * p[i](x) / q[i](x)); at the first rejection emit a token drawn from norm(max(0, p[i] − q[i]))
   * (from p[i] itself if that residual has no mass, which happens only when p[i] = q[i] up to
   * round-off) and stop. If all k are accepted, emit a bonus token drawn from p[k]. The emitted
   * sequence is distributed exactly as the target's would be.
   *
   * <p>A draft token with q[i](x) = 0 could not have been drawn from q[i]: the inputs break the
   * rule's premise, so no choice is lossless. We then <em>reject</em> (as vLLM does) and draw from
   * the residual, which still gives x its target mass p[i](x); accepting would let a mismatched
   * drafter force any token with p &gt; 0 into the output.
   *
   * @param draft the k draft tokens
   * @param q the k draft distributions, {@code q[i]} the one {@code draft[i]} was drawn from
   * @param p the k+1 target distributions
   * @param rng the request's random stream; consumed only on uncertain accepts and on draws
   */
  public static Outcome sample(int[] draft, ProbDist[] q, ProbDist[] p, RandomGenerator rng) {
    validate(draft, q, p, rng);
    int k = draft.length;
    for (int i = 0; i < k; i++) {
      int x = draft[i];
      double px = p[i].prob(x);
      double qx = q[i].prob(x);
      boolean accept;
      if (!(qx > 0)) {
        accept = false;
      } else if (px >= qx) {
        accept = true;
      } else {
        accept = rng.nextDouble() * qx < px;
      }
      if (!accept) {
        return new Outcome(i, sampleResidual(p[i], q[i], rng), false);
      }
    }
    return new Outcome(k, TokenSampler.sample(p[k], rng), true);
  }

  /** A token from norm(max(0, p − q)), or from p when that has no mass. O(V). */
  static int sampleResidual(ProbDist p, ProbDist q, RandomGenerator rng) {
    float[] qd = q.toDense();
    float[] pp = p.probs();
    double total = 0;
    for (int i = 0; i < pp.length; i++) {
      double r = (double) pp[i] - qd[p.idAt(i)];
      if (r > 0) {
        total += r;
      }
    }
    if (!(total > 0)) {
      return TokenSampler.sample(p, rng);
    }
    double target = rng.nextDouble() * total;
    double cumulative = 0;
    int last = -1;
    for (int i = 0; i < pp.length; i++) {
      double r = (double) pp[i] - qd[p.idAt(i)];
      if (r > 0) {
        cumulative += r;
        last = i;
        if (target < cumulative) {
          return p.idAt(i);
        }
      }
    }
    return p.idAt(last); // round-off carried the walk past the end
  }

  private static void validate(int[] draft, ProbDist[] q, ProbDist[] p, RandomGenerator rng) {
    requireNonNull(draft, "verify.draft_tokens");
    requireNonNull(q, "verify.draft_distributions");
    requireNonNull(p, "verify.target_distributions");
    if (rng == null) {
      throw new NullPointerException("rng");
    }
    int k = draft.length;
    if (q.length != k) {
      throw EngineException.invalid(
          "verify.draft_distributions: "
              + q.length
              + " given, expected "
              + k
              + " (one per draft token)");
    }
    if (p.length != k + 1) {
      throw EngineException.invalid(
          "verify.target_distributions: "
              + p.length
              + " given, expected "
              + (k + 1)
              + " (one per draft token, plus the bonus position)");
    }
    requireNonNull(p[0], "verify.target_distributions[0]");
    int vocab = p[0].vocabSize();
    for (int i = 0; i <= k; i++) {
      requireNonNull(p[i], "verify.target_distributions[" + i + "]");
      if (p[i].vocabSize() != vocab) {
        throw EngineException.invalid(
            "verify.target_distributions["
                + i
                + "]: vocab size "
                + p[i].vocabSize()
                + ", expected "
                + vocab
                + " (that of target_distributions[0])");
      }
    }
    for (int i = 0; i < k; i++) {
      requireNonNull(q[i], "verify.draft_distributions[" + i + "]");
      if (q[i].vocabSize() != vocab) {
        throw EngineException.invalid(
            "verify.draft_distributions["
                + i
                + "]: vocab size "
                + q[i].vocabSize()
                + ", expected "
                + vocab
                + " (the target's)");
      }
      if (draft[i] < 0 || draft[i] >= vocab) {
        throw EngineException.invalid(
            "verify.draft_tokens[" + i + "]: " + draft[i] + " (expected: 0.." + (vocab - 1) + ")");
      }
    }
  }

  private static void requireNonNull(Object value, String field) {
    if (value == null) {
      throw EngineException.invalid(field + ": missing");
    }
  }
}
