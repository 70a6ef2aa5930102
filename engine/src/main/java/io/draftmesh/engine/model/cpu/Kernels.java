package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** The element-wise steps of a layer, vectorised, over rows of (n, width) arrays. */
final class Kernels {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  private Kernels() {}

  /**
   * RMSNorm of rows {@code [0, n)}: {@code out = x / sqrt(mean(x^2) + eps) * weight}, as Hugging
   * Face Llama computes it (float32).
   */
  static void rmsNorm(float[] x, float[] weight, float eps, float[] out, int n, int width) {
    int bound = S.loopBound(width);
    for (int r = 0; r < n; r++) {
      int off = r * width;
      FloatVector acc = FloatVector.zero(S);
      int i = 0;
      for (; i < bound; i += S.length()) {
        FloatVector v = FloatVector.fromArray(S, x, off + i);
        acc = v.fma(v, acc);
      }
      float sum = acc.reduceLanes(VectorOperators.ADD);
      for (; i < width; i++) {
        sum += x[off + i] * x[off + i];
      }
      float inv = (float) (1.0 / Math.sqrt(sum / width + eps));
      i = 0;
      for (; i < bound; i += S.length()) {
        FloatVector.fromArray(S, x, off + i)
            .mul(inv)
            .mul(FloatVector.fromArray(S, weight, i))
            .intoArray(out, off + i);
      }
      for (; i < width; i++) {
        out[off + i] = x[off + i] * inv * weight[i];
      }
    }
  }

  /**
   * SwiGLU of rows {@code [from, to)}: gateUp rows are (gate | up), each {@code inter} wide; {@code
   * out = silu(gate) * up}, silu(g) = g / (1 + e^-g).
   */
  static void swiGlu(float[] gateUp, float[] out, int from, int to, int inter) {
    int bound = S.loopBound(inter);
    for (int r = from; r < to; r++) {
      int g = r * 2 * inter;
      int u = g + inter;
      int o = r * inter;
      int i = 0;
      for (; i < bound; i += S.length()) {
        FloatVector gate = FloatVector.fromArray(S, gateUp, g + i);
        FloatVector sig = gate.neg().lanewise(VectorOperators.EXP).add(1f);
        gate.div(sig).mul(FloatVector.fromArray(S, gateUp, u + i)).intoArray(out, o + i);
      }
      for (; i < inter; i++) {
        float gate = gateUp[g + i];
        out[o + i] = (float) (gate / (1.0 + Math.exp(-gate))) * gateUp[u + i];
      }
    }
  }

  /** Adds {@code bias} (width) to each of rows {@code [0, n)} of {@code x}. */
  static void addBias(float[] x, float[] bias, int n, int width) {
    int bound = S.loopBound(width);
    for (int r = 0; r < n; r++) {
      int off = r * width;
      int i = 0;
      for (; i < bound; i += S.length()) {
        FloatVector.fromArray(S, x, off + i)
            .add(FloatVector.fromArray(S, bias, i))
            .intoArray(x, off + i);
      }
      for (; i < width; i++) {
        x[off + i] += bias[i];
      }
    }
  }
}
