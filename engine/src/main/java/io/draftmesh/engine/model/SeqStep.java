package io.draftmesh.engine.model;

import io.draftmesh.engine.kv.BlockTable;

/**
 * One sequence's share of a batched forward step.
 *
 * @param tokens the new tokens fed this step, at cache slots {@code startPos ..}
 * @param startPos how many cache slots of this sequence already hold KV in {@code table}: the new
 *     rows attend to slots {@code 0 .. startPos + r}
 * @param table the sequence's blocks; must already be reserved for {@code startPos + tokens.length}
 * @param logitRows indices into {@code tokens} whose next-token logits are wanted, ascending
 * @param captureAttention whether to return this sequence's attention probabilities
 * @param positionShift RoPE position minus cache slot: 0 for an uncompacted cache; after KV
 *     compaction, the positions the cache dropped (keys keep their original positions, so row r is
 *     rotated for position {@code startPos + positionShift + r})
 */
public record SeqStep(
    int[] tokens,
    int startPos,
    BlockTable table,
    int[] logitRows,
    boolean captureAttention,
    int positionShift) {

  public SeqStep(
      int[] tokens, int startPos, BlockTable table, int[] logitRows, boolean captureAttention) {
    this(tokens, startPos, table, logitRows, captureAttention, 0);
  }

  /** Cache slots this sequence holds after the step. */
  public int length() {
    return startPos + tokens.length;
  }

  /** RoPE position of the first new token. */
  public int firstPosition() {
    return startPos + positionShift;
  }

  /** One past the last position the step rotates for: must not exceed the model's context. */
  public int positionEnd() {
    return length() + positionShift;
  }
}
