package io.draftmesh.engine.sampling;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link Distributions}' passes over a vocabulary in Vector API lanes. Every scored position pays
 * one (its entropy and top probability) and every reported distribution another (softmax): with
 * {@code Math.exp} in double they cost 17 µs over the zoo's 4,096 logits and 190 µs over 32,000 on
 * this machine kind, as much as the zoo draft's whole forward; the lanes' exp (an intrinsic) takes
 * 1.2 and 9.6 µs. Loaded only when the JVM has {@code jdk.incubator.vector}.
 *
 * <p>exp is taken in float (about one ulp from the exact value) and summed in float lanes over
 * blocks of {@link #BLOCK} values, each block's sum then added in double, so sums over a
 * 32,000-token vocabulary keep the scalar loops' accuracy to about 1e-7 relative.
 */
final class VectorLogits {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int BLOCK = S.length() * 16;

  private VectorLogits() {}

  /** Arrays shorter than this take the scalar loops (no lanes to fill). */
  static final int MIN_LENGTH = 4 * 16;

  /** The largest value, or NaN if any value is NaN. */
  static float max(float[] x) {
    FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int i = 0;
    for (int bound = S.loopBound(x.length); i < bound; i += S.length()) {
      m = m.lanewise(VectorOperators.MAX, FloatVector.fromArray(S, x, i));
    }
    float max = m.reduceLanes(VectorOperators.MAX);
    for (; i < x.length; i++) {
      max = Math.max(max, x[i]);
    }
    return max;
  }

  /** The first index whose value equals {@code value}, which must occur in {@code x}. */
  static int indexOf(float[] x, float value) {
    int i = 0;
    for (int bound = S.loopBound(x.length); i < bound; i += S.length()) {
      VectorMask<Float> hit = FloatVector.fromArray(S, x, i).compare(VectorOperators.EQ, value);
      if (hit.anyTrue()) {
        return i + hit.firstTrue();
      }
    }
    while (x[i] != value) {
      i++;
    }
    return i;
  }

  /**
   * {@code out[0] = sum(exp(z))} and {@code out[1] = sum(exp(z) z)} over z = x - max, counting no
   * term for masked ({@code -Infinity}) values.
   */
  static void expSums(float[] x, float max, double[] out) {
    double sum = 0;
    double weighted = 0;
    int i = 0;
    for (int bound = x.length / BLOCK * BLOCK; i < bound; ) {
      FloatVector s = FloatVector.zero(S);
      FloatVector w = FloatVector.zero(S);
      for (int end = i + BLOCK; i < end; i += S.length()) {
        FloatVector z = FloatVector.fromArray(S, x, i).sub(max);
        FloatVector e = z.lanewise(VectorOperators.EXP);
        VectorMask<Float> counted = e.compare(VectorOperators.GT, 0f); // 0 * -inf is NaN
        s = s.add(e);
        w = w.add(e.mul(z), counted);
      }
      sum += s.reduceLanes(VectorOperators.ADD);
      weighted += w.reduceLanes(VectorOperators.ADD);
    }
    for (; i < x.length; i++) {
      double z = (double) x[i] - max;
      double e = Math.exp(z);
      if (e > 0) {
        sum += e;
        weighted += e * z;
      }
    }
    out[0] = sum;
    out[1] = weighted;
  }

  /** {@code out[i] = exp(x[i] - max)}; returns their sum. */
  static double exp(float[] x, float max, float[] out) {
    double sum = 0;
    int i = 0;
    for (int bound = x.length / BLOCK * BLOCK; i < bound; ) {
      FloatVector s = FloatVector.zero(S);
      for (int end = i + BLOCK; i < end; i += S.length()) {
        FloatVector e = FloatVector.fromArray(S, x, i).sub(max).lanewise(VectorOperators.EXP);
        e.intoArray(out, i);
        s = s.add(e);
      }
      sum += s.reduceLanes(VectorOperators.ADD);
    }
    for (; i < x.length; i++) {
      out[i] = (float) Math.exp((double) x[i] - max);
      sum += out[i];
    }
    return sum;
  }

  /** {@code x[i] *= factor} (in float: within an ulp of the scalar loop's double product). */
  static void scale(float[] x, float factor) {
    int i = 0;
    for (int bound = S.loopBound(x.length); i < bound; i += S.length()) {
      FloatVector.fromArray(S, x, i).mul(factor).intoArray(x, i);
    }
    for (; i < x.length; i++) {
      x[i] *= factor;
    }
  }

  /** {@code x[i] /= t}. */
  static void divide(float[] x, float t) {
    int i = 0;
    for (int bound = S.loopBound(x.length); i < bound; i += S.length()) {
      FloatVector.fromArray(S, x, i).div(t).intoArray(x, i);
    }
    for (; i < x.length; i++) {
      x[i] /= t;
    }
  }
}
