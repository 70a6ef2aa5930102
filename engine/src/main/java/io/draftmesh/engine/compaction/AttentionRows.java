package io.draftmesh.engine.compaction;

/**
 * Collects the attention of the last {@code queries} rows of a prefill that arrives in chunks (each
 * chunk's capture covers only the keys fed so far) into one {@link CapturedAttention} over all
 * {@code keys}: a row's keys after its chunk are causally masked, so they stay 0.
 *
 * <p>{@link #summed} collects instead the sum of those rows per query head, as one row ({@link
 * KvPolicy#summedQueries}): a key's entry is the attention every observed query gave it.
 */
public final class AttentionRows {
  private final int heads;
  private final int kvHeads;
  private final int queries; // rows observed
  private final int keys;
  private final boolean sum;
  private final float[][] layers; // per layer: (heads, sum ? 1 : queries, keys)
  private int filled;

  public AttentionRows(int layers, int heads, int kvHeads, int queries, int keys) {
    this(layers, heads, kvHeads, queries, keys, false);
  }

  private AttentionRows(int layers, int heads, int kvHeads, int queries, int keys, boolean sum) {
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.queries = queries;
    this.keys = keys;
    this.sum = sum;
    this.layers = new float[layers][heads * (sum ? 1 : queries) * keys];
  }

  /** Sums {@code queries} rows per head into one. */
  public static AttentionRows summed(int layers, int heads, int kvHeads, int queries, int keys) {
    return new AttentionRows(layers, heads, kvHeads, queries, keys, true);
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
          int from = (h * n + r) * length;
          if (sum) {
            float[] into = layers[l];
            int to = h * keys;
            for (int j = 0; j < length; j++) {
              into[to + j] += chunk[l][from + j];
            }
          } else {
            System.arraycopy(chunk[l], from, layers[l], (h * queries + filled + r) * keys, length);
          }
        }
      }
    }
    filled += n;
  }

  public CapturedAttention build() {
    if (filled != queries) {
      throw new IllegalStateException(filled + " of " + queries + " rows captured");
    }
    return new CapturedAttention(heads, kvHeads, sum ? 1 : queries, keys, layers);
  }
}
