package io.draftmesh.engine.compaction;

/**
 * Attention probabilities of a run of query rows over a sequence's keys, per layer, in the layout
 * {@link io.draftmesh.engine.model.LlamaModel#forward} captures ({@code StepResult.attention}).
 *
 * <p>Query head {@code h} reads KV head {@code h / group} (the model reshapes queries as (kvHeads,
 * group) with the group innermost, as Hugging Face's {@code repeat_kv} does). Query row {@code r}
 * sits at sequence position {@code keys - queries + r}: the rows are the last ones fed, so under
 * the causal mask row r sees keys {@code 0 .. keys - queries + r} and holds 0 for later keys.
 *
 * @param heads query heads
 * @param kvHeads key/value heads; divides {@code heads}
 * @param queries query rows captured
 * @param keys keys each row attends over (the sequence length at the end of the step)
 * @param layers per layer: (heads, queries, keys) row-major
 */
public record CapturedAttention(int heads, int kvHeads, int queries, int keys, float[][] layers) {
  public CapturedAttention {
    if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
      throw new IllegalArgumentException(
          "heads " + heads + ", kvHeads " + kvHeads + " (expected: kvHeads divides heads)");
    }
    if (queries < 1 || keys < queries) {
      throw new IllegalArgumentException(
          "queries " + queries + ", keys " + keys + " (expected: 1 <= queries <= keys)");
    }
    long size = (long) heads * queries * keys;
    for (int l = 0; l < layers.length; l++) {
      if (layers[l] == null || layers[l].length != size) {
        throw new IllegalArgumentException(
            "layers["
                + l
                + "]: "
                + (layers[l] == null ? "null" : layers[l].length + " floats")
                + " (expected: heads * queries * keys = "
                + size
                + ")");
      }
    }
  }

  public int numLayers() {
    return layers.length;
  }

  /** Query heads per KV head. */
  public int group() {
    return heads / kvHeads;
  }

  /** Sequence position of the first query row. */
  public int firstQueryPosition() {
    return keys - queries;
  }

  /**
   * The probability query row {@code q} of head {@code head} in {@code layer} gives {@code key}.
   */
  public float prob(int layer, int head, int q, int key) {
    return layers[layer][(head * queries + q) * keys + key];
  }
}
