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
   * {@code scores[j] = scale * (q . key row of slot[j])} for j < len, q at {@code qkv[q ..]}.
   *
   * @param slot the sequence's slot of every position it attends to
   */
  void scores(
      float[] qkv, int q, int[] slot, int headBase, ByteBuffer keys, int len, float[] scores);

  /** {@code out[o ..] = inv * sum_j scores[j] * value row of slot[j]}, j < len. */
  void values(
      float[] scores,
      float inv,
      int len,
      int[] slot,
      int headBase,
      ByteBuffer values,
      float[] out,
      int o);
}
