package io.draftmesh.engine.compaction;

import java.util.Random;

/** Hand-made and random attention tensors in the engine's capture layout. */
final class Attention {
  private Attention() {}

  /** All-zero attention: (layers) x (heads, queries, keys). */
  static float[][] zeros(int layers, int heads, int queries, int keys) {
    return new float[layers][heads * queries * keys];
  }

  static void set(
      float[][] a, int heads, int queries, int keys, int l, int h, int q, int k, float p) {
    a[l][(h * queries + q) * keys + k] = p;
  }

  /**
   * Random causal softmax rows: row r (at position keys - queries + r) spreads over keys 0..pos,
   * zeros after, as the engine's capture returns them.
   */
  static CapturedAttention random(
      long seed, int layers, int heads, int kvHeads, int queries, int keys) {
    Random rnd = new Random(seed);
    float[][] a = new float[layers][heads * queries * keys];
    for (int l = 0; l < layers; l++) {
      for (int h = 0; h < heads; h++) {
        for (int q = 0; q < queries; q++) {
          int visible = keys - queries + q + 1;
          double sum = 0;
          double[] e = new double[visible];
          for (int j = 0; j < visible; j++) {
            e[j] = Math.exp(3 * rnd.nextGaussian());
            sum += e[j];
          }
          for (int j = 0; j < visible; j++) {
            a[l][(h * queries + q) * keys + j] = (float) (e[j] / sum);
          }
        }
      }
    }
    return new CapturedAttention(heads, kvHeads, queries, keys, a);
  }
}
