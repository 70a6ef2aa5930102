package io.draftmesh.engine.model.cpu;

/**
 * A weight matrix of torch's (out, in) shape, multiplied from the right by rows of activations:
 * {@code out[r][o] = sum_i x[r][i] * w[o][i]}. Held in {@link Panels} layout: every kernel reads
 * each weight once for all rows of a step (that is what makes a k-token verify cost about one
 * decode), keeps several accumulators in flight and accumulates in float32.
 */
interface Matrix {
  /** Output features (weight rows). */
  int rows();

  /** Input features (weight columns). */
  int cols();

  /** Bytes the weights take in memory: what one full pass reads. */
  long bytes();

  /** "float32" or "float16": the dtype the weights are held in. */
  String dtype();

  /**
   * For weight rows {@code [from, to)} ({@code from} a multiple of {@link Panels#WIDTH}, {@code to}
   * one too or {@link #rows()}) and activation rows {@code r < n}: {@code out[r * outStride + o]}
   * is set to (or, with {@code accumulate}, increased by) the dot product of {@code x[r * cols ..]}
   * and weight row o.
   *
   * @param x activations, (n, cols) row-major
   * @param out results, (n, outStride) row-major, outStride >= rows
   */
  void multiply(float[] x, int n, float[] out, int outStride, boolean accumulate, int from, int to);

  /** Copies weight row {@code r} as float32 into {@code dst[off ..]} (an embedding lookup). */
  void row(int r, float[] dst, int off);
}
