package io.draftmesh.engine.sampling;

import io.draftmesh.engine.runtime.EngineException;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/** Draws token ids from a {@link ProbDist} by inverse CDF. */
public final class TokenSampler {
  private TokenSampler() {}

  /**
   * A request's random stream: {@link SplittableRandom} (SplitMix64), so the same seed gives the
   * same tokens on every run and JDK. Not thread-safe: one stream per request.
   */
  public static RandomGenerator seeded(long seed) {
    return new SplittableRandom(seed);
  }

  /** A token drawn from {@code dist} with one {@code rng.nextDouble()}. */
  public static int sample(ProbDist dist, RandomGenerator rng) {
    return sample(dist, rng.nextDouble());
  }

  /**
   * The token at cumulative position {@code u * total} of {@code dist}, {@code u} in [0, 1). The
   * total is summed (in double) rather than assumed to be 1, so slightly unnormalised inputs are
   * fine; if round-off carries the walk past the end, the last token with positive probability is
   * returned. Throws INTERNAL when the distribution has no positive mass.
   */
  public static int sample(ProbDist dist, double u) {
    float[] probs = dist.probs();
    double total = 0;
    for (float p : probs) {
      if (p > 0) {
        total += p;
      }
    }
    if (!(total > 0) || Double.isInfinite(total)) {
      throw new EngineException(
          EngineException.Kind.INTERNAL, "sampling: distribution has total mass " + total);
    }
    double target = u * total;
    double cumulative = 0;
    int last = -1;
    for (int i = 0; i < probs.length; i++) {
      float p = probs[i];
      if (p > 0) {
        cumulative += p;
        last = i;
        if (target < cumulative) {
          return dist.idAt(i);
        }
      }
    }
    return dist.idAt(last);
  }
}
