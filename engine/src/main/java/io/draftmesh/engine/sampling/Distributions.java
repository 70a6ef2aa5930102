package io.draftmesh.engine.sampling;

import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.runtime.EngineException;
import java.util.Arrays;

/**
 * Statistics of raw logits and probability vectors, each O(V) with no allocation beyond its result.
 * Sums are accumulated in double. Logits may contain {@code -Infinity} (masked tokens) but must
 * have a finite maximum and no NaN, else an INTERNAL {@link EngineException} is thrown.
 */
public final class Distributions {
  private static final double LN2 = Math.log(2.0);

  /**
   * Whether the passes take {@link VectorLogits}' lanes: the JVM has the Vector API module, unless
   * {@code -Ddraftmesh.vector.logits=false} (the scalar loops, for A/B measurement).
   */
  private static final boolean VECTOR =
      Backend.vectorAvailable()
          && Boolean.parseBoolean(System.getProperty("draftmesh.vector.logits", "true"));

  private Distributions() {}

  /** Whether passes over {@code values} take the lanes: the JVM has them and the array is long. */
  static boolean lanes(float[] values) {
    return VECTOR && values.length >= VectorLogits.MIN_LENGTH;
  }

  /**
   * Index of the largest value, the lowest index among ties; NaN never wins; 0 if none is a number.
   */
  public static int argmax(float[] values) {
    if (lanes(values)) {
      float max = VectorLogits.max(values);
      if (max == max) { // with a NaN, the scalar loop skips it
        return indexOf(values, max);
      }
    }
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

  /** The first index whose value equals {@code value}, which must occur in {@code values}. */
  private static int indexOf(float[] values, float value) {
    if (lanes(values)) {
      return VectorLogits.indexOf(values, value);
    }
    int i = 0;
    while (values[i] != value) {
      i++;
    }
    return i;
  }

  /** softmax(logits) as a new array: exp(x - max), normalised by the sum (taken in double). */
  public static float[] softmax(float[] logits) {
    float[] out = new float[logits.length];
    softmax(logits, finiteMax(logits), out);
    return out;
  }

  /** {@code out = softmax(logits)}, given their finite maximum. */
  static void softmax(float[] logits, float max, float[] out) {
    if (lanes(logits)) {
      VectorLogits.scale(out, (float) (1.0 / VectorLogits.exp(logits, max, out)));
      return;
    }
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
  }

  /**
   * Entropy, in bits, of softmax(logits) at temperature 1 (EAD's signal): with z = x - max and S =
   * sum(exp z), H = ln S - sum(exp(z) z) / S nats.
   */
  public static float entropyBits(float[] logits) {
    double[] sums = expSums(logits, finiteMax(logits));
    return entropyBits(sums[0], sums[1]);
  }

  private static float entropyBits(double sum, double weighted) {
    double nats = Math.log(sum) - weighted / sum;
    return (float) Math.max(0.0, nats / LN2);
  }

  /** {sum(exp z), sum(exp(z) z)} over z = x - max, with no term for masked values. */
  static double[] expSums(float[] logits, float max) {
    double[] sums = new double[2];
    if (lanes(logits)) {
      VectorLogits.expSums(logits, max, sums);
      return sums;
    }
    for (float x : logits) {
      double z = (double) x - max;
      double e = Math.exp(z);
      if (e > 0) {
        sums[0] += e;
        sums[1] += e * z;
      }
    }
    return sums;
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
    float max = finiteMax(logits);
    int best = indexOf(logits, max); // max is finite: its first index is the argmax
    double[] sums = expSums(logits, max);
    return new RawStats(best, (float) (1.0 / sums[0]), entropyBits(sums[0], sums[1]));
  }

  /** The top-1 probability of softmax(logits): 1 / sum(exp(x - max)). */
  public static float maxProb(float[] logits) {
    return (float) (1.0 / expSums(logits, finiteMax(logits))[0]);
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
    long[] keys = k <= INSERTION_K ? fewMostLikely(dist, k) : mostLikely(dist, k);
    int[] ids = new int[keys.length];
    float[] probs = new float[keys.length];
    for (int i = 0; i < keys.length; i++) {
      ids[i] = Selection.id(keys[i]);
      probs[i] = Selection.value(keys[i]);
    }
    return new ProbDist(dist.vocabSize(), ids, probs);
  }

  /**
   * Up to this k, {@link #topK} keeps the best keys sorted in one pass: most values fall below the
   * k-th kept and cost one comparison, where packing and partitioning a key per token took 60-90 µs
   * over 4,096 tokens (a tree verify's node_top asks it for every node).
   */
  private static final int INSERTION_K = 64;

  /** The rank keys of the k most likely tokens with probability > 0, ascending. */
  private static long[] fewMostLikely(ProbDist dist, int k) {
    long[] kept = new long[Math.min(k, dist.size())];
    if (kept.length == 0) {
      return kept;
    }
    float[] p = dist.probs();
    int m = 0;
    float floor = 0f; // once full: the smallest kept value; anything below it cannot enter
    for (int i = 0; i < p.length; i++) {
      float v = p[i];
      if (!(v > 0) || (m == kept.length && v < floor)) {
        continue;
      }
      long key = Selection.key(v, dist.idAt(i));
      if (m == kept.length) {
        if (key > kept[m - 1]) {
          continue; // an equal value with a higher id
        }
        m--;
      }
      int j = m++;
      for (; j > 0 && kept[j - 1] > key; j--) {
        kept[j] = kept[j - 1];
      }
      kept[j] = key;
      if (m == kept.length) {
        floor = Selection.value(kept[m - 1]);
      }
    }
    return m == kept.length ? kept : Arrays.copyOf(kept, m);
  }

  /** As {@link #fewMostLikely}, by selection over every token's key (large k). */
  private static long[] mostLikely(ProbDist dist, int k) {
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
    return Arrays.copyOf(keys, kept);
  }

  /** {@link #topK(ProbDist, int)} of a dense probability vector. */
  public static ProbDist topK(float[] probs, int k) {
    return topK(ProbDist.dense(probs), k);
  }

  /** The maximum of {@code logits}; throws INTERNAL on NaN, +Infinity or no finite value. */
  static float finiteMax(float[] logits) {
    if (lanes(logits)) {
      float max = VectorLogits.max(logits);
      if (Float.isFinite(max)) {
        return max;
      } // else the loop below finds the NaN or the infinity and names it
    }
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
