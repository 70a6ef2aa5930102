package io.draftmesh.engine.compaction;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The shared half of every scored KV policy (kvpress's "press" base): a policy computes a score per
 * candidate position per KV head; this keeps each head's top ones plus a range every head keeps
 * (the recent window), ascending. Ties go to the lower position, so selections are deterministic
 * (PyTorch's {@code topk} leaves tie order unspecified).
 */
public final class TopKPerHead {
  private TopKPerHead() {}

  /** Indices of the k highest scores, ascending; ties prefer the lower index. */
  public static int[] top(float[] scores, int k) {
    if (k < 0 || k > scores.length) {
      throw new IllegalArgumentException(
          "k: " + k + " (expected: 0.." + scores.length + ", the candidates)");
    }
    int[] order = byScoreDescending(scores);
    int[] picked = Arrays.copyOf(order, k);
    Arrays.sort(picked);
    return picked;
  }

  /** All indices, highest score first; ties prefer the lower index. */
  static int[] byScoreDescending(float[] scores) {
    return IntStream.range(0, scores.length)
        .boxed()
        .sorted((a, b) -> scores[a] != scores[b] ? Float.compare(scores[b], scores[a]) : a - b)
        .mapToInt(Integer::intValue)
        .toArray();
  }

  /**
   * Per layer and KV head: the top {@code k} candidates by score (candidate i is position i), then
   * every position in {@code [alwaysFrom, alwaysTo)}.
   *
   * @param scores (layers, kvHeads, candidates); candidates must lie below {@code alwaysFrom}
   */
  public static KvSelection select(
      float[][][] scores, int k, int alwaysFrom, int alwaysTo, int promptLength, int refeed) {
    int[][][] kept = new int[scores.length][][];
    for (int l = 0; l < scores.length; l++) {
      kept[l] = new int[scores[l].length][];
      for (int h = 0; h < scores[l].length; h++) {
        if (scores[l][h].length > alwaysFrom) {
          throw new IllegalArgumentException(
              "candidates: "
                  + scores[l][h].length
                  + " (expected: <= "
                  + alwaysFrom
                  + ", below the always-kept range)");
        }
        int[] top = top(scores[l][h], k);
        int[] all = Arrays.copyOf(top, k + (alwaysTo - alwaysFrom));
        for (int p = alwaysFrom; p < alwaysTo; p++) {
          all[k + p - alwaysFrom] = p;
        }
        kept[l][h] = all;
      }
    }
    return new KvSelection(kept, promptLength, refeed);
  }
}
