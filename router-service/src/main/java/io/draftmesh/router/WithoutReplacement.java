package io.draftmesh.router;

import io.draftmesh.proto.v1.ProbDistribution;
import java.util.random.RandomGenerator;

/**
 * Draws the children of one tree node from the draft's distribution without replacement (RSD's
 * sampling; sequential draws are Gumbel-top-k's distribution), and gives, for each, the
 * distribution it was drawn from: q with the earlier siblings removed and renormalized, which is
 * what the target's multi-draft rule needs to stay lossless.
 */
final class WithoutReplacement {
  private final float[] left; // (vocab) q's mass on the tokens not yet drawn
  private double mass; // sum of left

  WithoutReplacement(float[] q) {
    this.left = q.clone();
    double m = 0;
    for (float v : left) {
      m += v;
    }
    this.mass = m;
  }

  /** The mass q has left on undrawn tokens: how likely one more sibling is worth trying. */
  double massLeft() {
    return mass;
  }

  /** A draw, or null once q's support is used up. */
  Draw next(RandomGenerator rng) {
    if (!(mass > 1e-6)) {
      return null;
    }
    float[] from = new float[left.length];
    float inv = (float) (1.0 / mass);
    for (int i = 0; i < left.length; i++) {
      from[i] = left[i] * inv;
    }
    double u = rng.nextDouble() * mass;
    int token = -1;
    double c = 0;
    for (int i = 0; i < left.length; i++) {
      if (left[i] > 0) {
        c += left[i];
        token = i;
        if (u < c) {
          break;
        }
      }
    }
    float q = left[token];
    Draw d = new Draw(token, q, from[token], ProbCodec.sparse(from));
    mass -= q;
    left[token] = 0;
    return d;
  }

  /**
   * @param prob the token's probability under the unconditioned q
   * @param conditionalProb its probability under {@code from}
   * @param from the distribution it was drawn from
   */
  record Draw(int token, float prob, float conditionalProb, ProbDistribution from) {}
}
