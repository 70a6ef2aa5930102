package io.draftmesh.engine.compaction;

/**
 * Collects the attention of the last {@code queries} rows of a prefill that arrives in chunks (each
 * chunk's capture covers only the keys fed so far) into one {@link CapturedAttention} over all
 * {@code keys}: a row's keys after its chunk are causally masked, so they stay 0.
 */
public final class AttentionRows {
  private final int heads;
  private final int kvHeads;
  private final int queries;
  private final int keys;
  private final float[][] layers; // per layer: (heads, queries, keys)
  private int filled;

  public AttentionRows(int layers, int heads, int kvHeads, int queries, int keys) {
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.queries = queries;
    this.keys = keys;
    this.layers = new float[layers][heads * queries * keys];
  }

  /**
   * Adds the next chunk: per layer (heads, n, length), its rows the next n of the window and its
   * keys the first {@code length} positions.
   */
  public void add(float[][] chunk, int n, int length) {
    if (filled + n > queries || length > keys) {
      throw new IllegalStateException(
          "chunk of "
              + n
              + " rows over "
              + length
              + " keys after "
              + filled
              + " rows of "
              + queries);
    }
    for (int l = 0; l < layers.length; l++) {
      for (int h = 0; h < heads; h++) {
        for (int r = 0; r < n; r++) {
          System.arraycopy(
              chunk[l], (h * n + r) * length, layers[l], (h * queries + filled + r) * keys, length);
        }
      }
    }
    filled += n;
  }

  public CapturedAttention build() {
    if (filled != queries) {
      throw new IllegalStateException(filled + " of " + queries + " rows captured");
    }
    return new CapturedAttention(heads, kvHeads, queries, keys, layers);
  }
}
