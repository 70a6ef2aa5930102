package io.draftmesh.engine.model.cpu;

import java.nio.ByteBuffer;

/**
 * How attention reads and writes one head's rows of keys and values in a paged KV buffer of one
 * element type: {@link F32Rows} or {@link F16Rows}. A row is one slot of one KV head, headDim
 * elements at byte offset {@code (headBase + slot) * rowBytes()}, with {@code headBase = kvHead *
 * slots}.
 */
interface KvRows {
  /** Bytes of one row. */
  int rowBytes();

  /** Writes {@code src[off .. off + headDim)} into the row at byte offset {@code rowByte}. */
  void store(float[] src, int off, ByteBuffer dst, int rowByte);

  /**
   * {@code scores[off + j] = scale * (q . key row of slot[j])} for j < len, q at {@code qkv[q ..]}.
   *
   * @param slot the sequence's slot of every position it attends to
   */
  void scores(
      float[] qkv,
      int q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int off);

  /** {@code out[o ..] = inv * sum_j scores[off + j] * value row of slot[j]}, j < len. */
  void values(
      float[] scores,
      int off,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o);

  /**
   * {@link #scores} for four query rows at {@code q[r]} over the same slots and keys {@code [0,
   * len)}, row r's into {@code scores[r * stride ..]}. A kernel that loads each key once for the
   * four rows overrides this; here it is one row after another.
   */
  default void scores4(
      float[] qkv,
      int[] q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int stride) {
    for (int r = 0; r < 4; r++) {
      scores(qkv, q[r], slot, headBase, keys, len, scores, r * stride);
    }
  }

  /**
   * {@link #values} for four rows of probabilities, {@code scores[r * stride ..]} (zero past a
   * row's own length), into {@code out[o[r] ..]}, each times {@code inv[r]}; as {@link #scores4},
   * one row after another unless overridden.
   */
  default void values4(
      float[] scores,
      int stride,
      float[] inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int[] o) {
    for (int r = 0; r < 4; r++) {
      values(scores, r * stride, inv[r], len, slot, headBase, values, out, o[r]);
    }
  }

  /**
   * {@link #scores4} for five rows ({@code q[4]}, {@code scores[4 * stride ..]} the fifth): a
   * 4-token verify's rows. A kernel that loads each key once for the five overrides this; here it
   * is four rows, then one.
   */
  default void scores5(
      float[] qkv,
      int[] q,
      int[] slot,
      int headBase,
      ByteBuffer keys,
      int len,
      float[] scores,
      int stride) {
    scores4(qkv, q, slot, headBase, keys, len, scores, stride);
    scores(qkv, q[4], slot, headBase, keys, len, scores, 4 * stride);
  }

  /**
   * {@link #values4} for five rows, as {@link #scores5}: four rows, then one, unless overridden.
   */
  default void values5(
      float[] scores,
      int stride,
      float[] inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int[] o) {
    values4(scores, stride, inv, len, slot, headBase, values, out, o);
    values(scores, 4 * stride, inv[4], len, slot, headBase, values, out, o[4]);
  }
}
