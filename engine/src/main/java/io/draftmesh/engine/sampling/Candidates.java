package io.draftmesh.engine.sampling;

import java.util.Arrays;

/**
 * The working set that {@link LogitsTransform}s narrow: the surviving token ids and their (possibly
 * temperature-scaled) logits. Starts as the whole vocabulary; each transform keeps a subset. Not
 * thread-safe; one per {@link SamplingPipeline#probs} call.
 */
public final class Candidates {
  private final float[] logits; // (vocabSize) working copy, indexed by token id
  private final int[] ids; // (vocabSize) the survivors are ids[0..size)
  private int size;
  // ids[0..sortedPrefix) are in descending logit order (lower id first among ties) and rank above
  // every other survivor
  private int sortedPrefix;

  private Candidates(float[] logits) {
    this.logits = logits;
    this.ids = new int[logits.length];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = i;
    }
    this.size = logits.length;
  }

  /**
   * All tokens of {@code logits} (copied). Throws INTERNAL on NaN, +Infinity or no finite logit.
   */
  public static Candidates of(float[] logits) {
    Distributions.finiteMax(logits);
    return new Candidates(logits.clone());
  }

  public int vocabSize() {
    return logits.length;
  }

  /** Number of surviving tokens. */
  public int size() {
    return size;
  }

  /** Token id of survivor {@code i}. */
  public int id(int i) {
    return ids[i];
  }

  /** Current logit of survivor {@code i}. */
  public float logit(int i) {
    return logits[ids[i]];
  }

  /** Whether survivors are in descending-logit order (lower id first among ties). */
  public boolean isSorted() {
    return sortedPrefix == size;
  }

  /** Divides every surviving logit by {@code t}. */
  void divide(float t) {
    if (size == logits.length && Distributions.lanes(logits)) {
      VectorLogits.divide(logits, t);
    } else if (size == logits.length) {
      for (int i = 0; i < logits.length; i++) {
        logits[i] /= t;
      }
    } else {
      for (int i = 0; i < size; i++) {
        logits[ids[i]] /= t;
      }
    }
  }

  /** Keeps exactly the {@code k} highest logits, lower id first among ties. Expected O(size). */
  void keepTop(int k) {
    if (k >= size) {
      return;
    }
    if (sortedPrefix >= k) {
      size = k;
      sortedPrefix = k;
      return;
    }
    long[] keys = keys();
    Selection.selectSmallest(keys, size, k);
    for (int i = 0; i < k; i++) {
      ids[i] = Selection.id(keys[i]);
    }
    size = k;
    sortedPrefix = 0;
  }

  /**
   * Moves the {@code m} most likely survivors to the front, in descending-logit order; the rest
   * follow in no particular order. Expected O(size + m log m).
   */
  void sortTop(int m) {
    m = Math.min(m, size);
    if (sortedPrefix >= m) {
      return;
    }
    long[] keys = keys();
    Selection.selectSmallest(keys, size, m);
    Arrays.sort(keys, 0, m);
    for (int i = 0; i < size; i++) {
      ids[i] = Selection.id(keys[i]);
    }
    sortedPrefix = m;
  }

  /** Puts all survivors in descending-logit order. */
  void sort() {
    sortTop(size);
  }

  /** Keeps the first {@code n} survivors (the {@code n} most likely once sorted). */
  void truncate(int n) {
    size = Math.min(size, n);
    sortedPrefix = Math.min(sortedPrefix, size);
  }

  /** Keeps survivors whose logit is at least {@code threshold}; preserves order. */
  void keepAtLeast(double threshold) {
    int n = 0;
    int prefix = 0;
    for (int i = 0; i < size; i++) {
      int id = ids[i];
      if (logits[id] >= threshold) {
        ids[n++] = id;
        if (i < sortedPrefix) {
          prefix++;
        }
      }
    }
    size = n;
    sortedPrefix = prefix;
  }

  /** sum(exp(logit - max)) over the survivors. */
  double sumExp(double max) {
    if (size == logits.length) {
      return Distributions.expSums(logits, (float) max)[0];
    }
    double sum = 0;
    for (int i = 0; i < size; i++) {
      sum += Math.exp(logits[ids[i]] - max);
    }
    return sum;
  }

  /** The largest surviving logit. */
  float maxLogit() {
    if (sortedPrefix > 0) {
      return logits[ids[0]];
    }
    if (size == logits.length) {
      return Distributions.finiteMax(logits); // of() checked it is finite; temperature keeps it so
    }
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < size; i++) {
      max = Math.max(max, logits[ids[i]]);
    }
    return max;
  }

  /**
   * softmax over the survivors, every other token 0. Sparse (most likely first, zero-probability
   * survivors dropped) when fewer than a quarter of the vocabulary survive, else dense.
   */
  public ProbDist toProbDist() {
    int vocab = logits.length;
    double max = maxLogit();
    if (size < vocab / 4) {
      sort();
      double sum = 0;
      for (int i = 0; i < size; i++) {
        sum += Math.exp(logits[ids[i]] - max);
      }
      int n = 0;
      float[] probs = new float[size];
      int[] out = new int[size];
      for (int i = 0; i < size; i++) {
        float p = (float) (Math.exp(logits[ids[i]] - max) / sum);
        if (p > 0) {
          out[n] = ids[i];
          probs[n++] = p;
        }
      }
      return n == size
          ? new ProbDist(vocab, out, probs)
          : new ProbDist(vocab, Arrays.copyOf(out, n), Arrays.copyOf(probs, n));
    }
    float[] dense = new float[vocab];
    if (size == vocab) { // nothing truncated: the plain softmax (in lanes where the JVM has them)
      Distributions.softmax(logits, (float) max, dense);
      return ProbDist.dense(dense);
    }
    double sum = 0;
    for (int i = 0; i < size; i++) {
      int id = ids[i];
      double e = Math.exp(logits[id] - max);
      dense[id] = (float) e;
      sum += e;
    }
    double inv = 1.0 / sum;
    for (int i = 0; i < size; i++) {
      int id = ids[i];
      dense[id] = (float) (dense[id] * inv);
    }
    return ProbDist.dense(dense);
  }

  private long[] keys() {
    long[] keys = new long[size];
    for (int i = 0; i < size; i++) {
      int id = ids[i];
      keys[i] = Selection.key(logits[id], id);
    }
    return keys;
  }
}
