package io.draftmesh.engine.sampling;

import java.util.Arrays;

/**
 * A probability distribution over a vocabulary: dense ({@code ids == null}, {@code probs.length ==
 * vocabSize}) or sparse (token {@code ids[i]} has probability {@code probs[i]}; every other token
 * 0).
 */
public record ProbDist(int vocabSize, int[] ids, float[] probs) {

  public ProbDist {
    if (ids != null && ids.length != probs.length) {
      throw new IllegalArgumentException(
          "ids and probs lengths differ: " + ids.length + " vs " + probs.length);
    }
    if (ids == null && probs.length != vocabSize) {
      throw new IllegalArgumentException(
          "dense probs length " + probs.length + " != vocab size " + vocabSize);
    }
  }

  public static ProbDist dense(float[] probs) {
    return new ProbDist(probs.length, null, probs);
  }

  /** All mass on {@code token}: a sparse distribution with one entry. */
  public static ProbDist oneHot(int vocabSize, int token) {
    if (token < 0 || token >= vocabSize) {
      throw new IllegalArgumentException(
          "token " + token + " outside vocabulary (expected: 0.." + (vocabSize - 1) + ")");
    }
    return new ProbDist(vocabSize, new int[] {token}, new float[] {1f});
  }

  public boolean isDense() {
    return ids == null;
  }

  /** Number of stored entries: {@code vocabSize} when dense, else the sparse support. */
  public int size() {
    return probs.length;
  }

  /** Token id of stored entry {@code i}: {@code i} when dense, else {@code ids[i]}. */
  public int idAt(int i) {
    return ids == null ? i : ids[i];
  }

  /** Probability of {@code token}. O(1) dense, O(n) sparse. */
  public float prob(int token) {
    if (ids == null) {
      return probs[token];
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] == token) {
        return probs[i];
      }
    }
    return 0f;
  }

  /** The distribution as a dense array of length vocabSize. */
  public float[] toDense() {
    if (ids == null) {
      return probs;
    }
    float[] dense = new float[vocabSize];
    for (int i = 0; i < ids.length; i++) {
      dense[ids[i]] = probs[i];
    }
    return dense;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ProbDist d
        && d.vocabSize == vocabSize
        && Arrays.equals(d.ids, ids)
        && Arrays.equals(d.probs, probs);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(ids) + Arrays.hashCode(probs);
  }

  @Override
  public String toString() {
    return "ProbDist[vocab=" + vocabSize + (ids == null ? ", dense" : ", n=" + ids.length) + "]";
  }
}
