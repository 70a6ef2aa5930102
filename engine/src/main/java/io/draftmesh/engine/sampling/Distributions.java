package io.draftmesh.engine.sampling;

import io.draftmesh.engine.runtime.EngineException;
import java.util.Arrays;

/**
 * Statistics of raw logits and probability vectors, each O(V) with no allocation beyond its result.
 * Sums are accumulated in double. Logits may contain {@code -Infinity} (masked tokens) but must
 * have a finite maximum and no NaN, else an INTERNAL {@link EngineException} is thrown.
 */
public final class Distributions {
  private static final double LN2 = Math.log(2.0);

  private Distributions() {}

  /**
   * Index of the largest value, the lowest index among ties; NaN never wins; 0 if none is a number.
   */
  public static int argmax(float[] values) {
    int best = 0;
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < values.length; i++) {
      if (values[i] > max) {
        max = values[i];
        best = i;
      }
    }
    return best;
  }

  /** softmax(logits) as a new array: exp(x - max) in double, normalised by the double sum. */
  public static float[] softmax(float[] logits) {
    float max = finiteMax(logits);
    float[] out = new float[logits.length];
    double sum = 0;
    for (int i = 0; i < logits.length; i++) {
      double e = Math.exp((double) logits[i] - max);
      out[i] = (float) e;
      sum += e;
    }
    double inv = 1.0 / sum;
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) (out[i] * inv);
    }
    return out;
  }

  /**
   * Entropy, in bits, of softmax(logits) at temperature 1 (EAD's signal): with z = x - max and S =
   * sum(exp z), H = ln S - sum(exp(z) z) / S nats.
   */
  public static float entropyBits(float[] logits) {
    float max = finiteMax(logits);
    double sum = 0;
    double weighted = 0;
    for (float x : logits) {
      double z = (double) x - max;
      double e = Math.exp(z);
      if (e > 0) {
        sum += e;
        weighted += e * z;
      }
    }
    double nats = Math.log(sum) - weighted / sum;
    return (float) Math.max(0.0, nats / LN2);
  }

  /**
   * What every scored position reports about its raw logits.
   *
   * @param argmax the most likely token (lowest id among ties)
   * @param maxProb its softmax probability
   * @param entropyBits entropy of softmax(logits), in bits
   */
  public record RawStats(int argmax, float maxProb, float entropyBits) {}

  /**
   * {@link #argmax}, {@link #maxProb} and {@link #entropyBits} in one max pass and one exp pass.
   */
  public static RawStats rawStats(float[] logits) {
    int best = argmax(logits);
    float max = logits[best];
    if (Float.isNaN(max) || Float.isInfinite(max)) {
      finiteMax(logits); // throws the INTERNAL error with its message
    }
    double sum = 0;
    double weighted = 0;
    for (float x : logits) {
      double z = (double) x - max;
      double e = Math.exp(z);
      if (e > 0) {
        sum += e;
        weighted += e * z;
      }
    }
    double nats = Math.log(sum) - weighted / sum;
    return new RawStats(best, (float) (1.0 / sum), (float) Math.max(0.0, nats / LN2));
  }

  /** The top-1 probability of softmax(logits): 1 / sum(exp(x - max)). */
  public static float maxProb(float[] logits) {
    float max = finiteMax(logits);
    double sum = 0;
    for (float x : logits) {
      sum += Math.exp((double) x - max);
    }
    return (float) (1.0 / sum);
  }

  /**
   * The {@code k} most likely tokens of {@code dist}, for reporting: sparse, most likely first
   * (lower id first among ties), probabilities as given (not renormalised). Tokens with probability
   * 0 are never listed, so fewer than {@code k} entries come back when the support is smaller.
   */
  public static ProbDist topK(ProbDist dist, int k) {
    if (k < 0) {
      throw new IllegalArgumentException("k: " + k + " (expected: >= 0)");
    }
    int n = dist.size();
    long[] keys = new long[n];
    int m = 0;
    for (int i = 0; i < n; i++) {
      float p = dist.probs()[i];
      if (p > 0) {
        keys[m++] = Selection.key(p, dist.idAt(i));
      }
    }
    int kept = Math.min(k, m);
    Selection.selectSmallest(keys, m, kept);
    Arrays.sort(keys, 0, kept);
    int[] ids = new int[kept];
    float[] probs = new float[kept];
    for (int i = 0; i < kept; i++) {
      ids[i] = Selection.id(keys[i]);
      probs[i] = Selection.value(keys[i]);
    }
    return new ProbDist(dist.vocabSize(), ids, probs);
  }

  /** {@link #topK(ProbDist, int)} of a dense probability vector. */
  public static ProbDist topK(float[] probs, int k) {
    return topK(ProbDist.dense(probs), k);
  }

  /** The maximum of {@code logits}; throws INTERNAL on NaN, +Infinity or no finite value. */
  static float finiteMax(float[] logits) {
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < logits.length; i++) {
      float x = logits[i];
      if (x != x) {
        throw new EngineException(EngineException.Kind.INTERNAL, "logits[" + i + "]: NaN");
      }
      if (x > max) {
        max = x;
      }
    }
    if (!Float.isFinite(max)) {
      throw new EngineException(
          EngineException.Kind.INTERNAL,
          "logits: maximum is "
              + max
              + " (expected: a finite value; length "
              + logits.length
              + ")");
    }
    return max;
  }
}
