package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.ModelConfig.RopeScaling;

/**
 * Rotate-half rotary embeddings as Hugging Face Llama applies them, {@code x * cos + rotate_half(x)
 * * sin}, with the config's llama3 frequency scaling; the tables are computed exactly as {@link
 * io.draftmesh.engine.model.LlamaModel}'s (double angles, rounded to float).
 */
final class Rope {
  private final int half;
  private final float[] cos; // (maxContext, headDim / 2)
  private final float[] sin; // (maxContext, headDim / 2)

  Rope(ModelConfig config, int maxContext) {
    int headDim = config.headDim();
    this.half = headDim / 2;
    double[] invFreq = RopeScaling.inverseFrequencies(config);
    cos = new float[maxContext * half];
    sin = new float[maxContext * half];
    for (int pos = 0; pos < maxContext; pos++) {
      for (int i = 0; i < half; i++) {
        double angle = pos * invFreq[i];
        cos[pos * half + i] = (float) Math.cos(angle);
        sin[pos * half + i] = (float) Math.sin(angle);
      }
    }
  }

  /**
   * Rotates {@code count} consecutive heads starting at {@code x[off]} (each headDim wide) for
   * position {@code pos}: for i < half, (a, b) = (x[i], x[i + half]) becomes (a cos - b sin, b cos
   * + a sin).
   */
  void apply(float[] x, int off, int count, int pos) {
    int t = pos * half;
    for (int h = 0; h < count; h++) {
      int base = off + h * 2 * half;
      for (int i = 0; i < half; i++) {
        float c = cos[t + i];
        float s = sin[t + i];
        float a = x[base + i];
        float b = x[base + i + half];
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}
