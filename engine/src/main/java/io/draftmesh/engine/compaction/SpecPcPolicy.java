package io.draftmesh.engine.compaction;

import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * SpecPC (furiosa-ai/draft-based-approx-llm {@code specpc/}): the draft's attention picks the
 * prompt tokens the target reads; the target then runs an ordinary prefill over exactly those
 * tokens (new contiguous positions).
 *
 * <p>Score of prompt token j, from the draft's layers {@code startingLayer..}: the attention of the
 * last {@code window} prompt queries, each row weighted linearly from 0 (first row) to 1 (last
 * row), and of each lookahead decode step's query (unweighted, keys cut to the prompt); max over
 * heads, rows, layers and steps. Selection: max-pool the scores (kernel, padded as {@link
 * Pooling}); take prompt positions by pooled score, highest first; expand each pick, in that order,
 * to its {@code neighbors} nearest positions (offsets {@code -(n-1)/2 .. n-1-(n-1)/2}, nearest
 * first, the left one first on a tie); put the last {@code window} positions first; keep the first
 * {@code budget} distinct positions and return them ascending.
 */
public final class SpecPcPolicy {
  public static final int DEFAULT_WINDOW = 64;
  public static final int DEFAULT_KERNEL = 64;
  public static final int DEFAULT_NEIGHBORS = 64;
  public static final int DEFAULT_STARTING_LAYER = 8;
  public static final int DEFAULT_LOOKAHEAD = 1;

  private final int window;
  private final int kernel;
  private final int neighbors;
  private final int startingLayer;

  /**
   * @param window prompt queries observed, and prompt tokens always kept
   * @param kernel max-pool width (any width >= 1; the reference uses 64 and 32)
   * @param neighbors positions kept around each pick, the pick included (1 = the pick alone)
   * @param startingLayer first draft layer whose attention counts
   */
  public SpecPcPolicy(int window, int kernel, int neighbors, int startingLayer) {
    if (window < 1) {
      throw new IllegalArgumentException("window: " + window + " (expected: >= 1)");
    }
    if (kernel < 1) {
      throw new IllegalArgumentException("kernel: " + kernel + " (expected: >= 1)");
    }
    if (neighbors < 1) {
      throw new IllegalArgumentException("neighbors: " + neighbors + " (expected: >= 1)");
    }
    if (startingLayer < 0) {
      throw new IllegalArgumentException("starting layer: " + startingLayer + " (expected: >= 0)");
    }
    this.window = window;
    this.kernel = kernel;
    this.neighbors = neighbors;
    this.startingLayer = startingLayer;
  }

  public SpecPcPolicy() {
    this(DEFAULT_WINDOW, DEFAULT_KERNEL, DEFAULT_NEIGHBORS, DEFAULT_STARTING_LAYER);
  }

  public int window() {
    return window;
  }

  public int kernel() {
    return kernel;
  }

  public int neighbors() {
    return neighbors;
  }

  public int startingLayer() {
    return startingLayer;
  }

  /**
   * The first layer that counts for a draft of {@code layers} layers: {@code startingLayer}, or 0
   * when the draft has no such layer (papers.md: a 3-layer draft has no layer 8, so all count).
   */
  public int effectiveStartingLayer(int layers) {
    return startingLayer < layers ? startingLayer : 0;
  }

  /**
   * Per prompt token, the draft's aggregated attention.
   *
   * @param prefill the last {@code min(window, L)} prompt rows over the prompt's L keys
   * @param steps one per lookahead decode step: its single query row over the prompt and the tokens
   *     generated before it
   */
  public float[] scores(CapturedAttention prefill, List<CapturedAttention> steps) {
    int promptLength = prefill.keys();
    int rows = Math.min(window, promptLength);
    if (prefill.queries() < rows) {
      throw new IllegalArgumentException(
          "prefill attention: "
              + prefill.queries()
              + " query rows (expected: >= "
              + rows
              + ", the window)");
    }
    int first = effectiveStartingLayer(prefill.numLayers());
    float[] score = new float[promptLength];
    int firstRow = prefill.queries() - rows;
    for (int l = first; l < prefill.numLayers(); l++) {
      for (int h = 0; h < prefill.heads(); h++) {
        for (int r = 0; r < rows; r++) {
          // torch.linspace(0, 1, q): row r of q gets r / (q - 1); a single row is not weighted.
          float weight = rows == 1 ? 1f : (float) r / (rows - 1);
          for (int j = 0; j < promptLength; j++) {
            score[j] = Math.max(score[j], weight * prefill.prob(l, h, firstRow + r, j));
          }
        }
      }
    }
    for (CapturedAttention step : steps) {
      if (step.keys() < promptLength || step.numLayers() != prefill.numLayers()) {
        throw new IllegalArgumentException(
            "lookahead attention: "
                + step.numLayers()
                + " layers over "
                + step.keys()
                + " keys (expected: "
                + prefill.numLayers()
                + " layers over >= "
                + promptLength
                + ")");
      }
      for (int l = first; l < step.numLayers(); l++) {
        for (int h = 0; h < step.heads(); h++) {
          for (int q = 0; q < step.queries(); q++) {
            for (int j = 0; j < promptLength; j++) {
              score[j] = Math.max(score[j], step.prob(l, h, q, j));
            }
          }
        }
      }
    }
    return score;
  }

  /** Kept prompt token indices, ascending: all of them when the budget covers the prompt. */
  public int[] select(float[] scores, int budget) {
    int length = scores.length;
    if (budget < window) {
      throw new IllegalArgumentException(
          "budget: " + budget + " (expected: >= window " + window + ")");
    }
    if (length <= budget) {
      int[] all = new int[length];
      Arrays.setAll(all, i -> i);
      return all;
    }
    float[] pooled = Pooling.max(scores, kernel);
    int[] byImportance = TopKPerHead.byScoreDescending(pooled);
    int[] offsets = neighborOffsets(neighbors);
    Set<Integer> order = new LinkedHashSet<>();
    for (int p = length - window; p < length; p++) {
      order.add(p);
    }
    // Only the top `budget` picks can contribute: the reference expands topk(budget) and cuts.
    for (int i = 0; i < budget && order.size() < budget; i++) {
      for (int off : offsets) {
        order.add(Math.max(0, Math.min(length - 1, byImportance[i] + off)));
        if (order.size() == budget) {
          break;
        }
      }
    }
    int[] kept = order.stream().mapToInt(Integer::intValue).limit(budget).toArray();
    Arrays.sort(kept);
    return kept;
  }

  /**
   * Offsets {@code -(n-1)/2 .. n-1-(n-1)/2}, nearest first; on equal distance the negative one
   * first (a stable sort of the ascending range by distance).
   */
  static int[] neighborOffsets(int n) {
    int lo = -((n - 1) / 2);
    int hi = n - 1 - (n - 1) / 2;
    Integer[] offs = new Integer[hi - lo + 1];
    for (int i = 0; i < offs.length; i++) {
      offs[i] = lo + i;
    }
    Arrays.sort(offs, (a, b) -> Integer.compare(Math.abs(a), Math.abs(b)));
    return Arrays.stream(offs).mapToInt(Integer::intValue).toArray();
  }
}
