package io.draftmesh.engine.model;

import io.draftmesh.engine.kv.BlockTable;

/**
 * One sequence's share of a batched forward step.
 *
 * @param tokens the new tokens fed this step, at positions {@code startPos ..}
 * @param startPos how many tokens of this sequence already have KV in {@code table}
 * @param table the sequence's blocks; must already be reserved for {@code startPos + tokens.length}
 * @param logitRows indices into {@code tokens} whose next-token logits are wanted, ascending
 * @param captureAttention whether to return this sequence's attention probabilities
 */
public record SeqStep(
    int[] tokens, int startPos, BlockTable table, int[] logitRows, boolean captureAttention) {

  public int length() {
    return startPos + tokens.length;
  }
}
