package io.draftmesh.engine.model;

import io.draftmesh.engine.kv.BlockTable;

/**
 * One sequence's share of a batched forward step.
 *
 * @param tokens the new tokens fed this step, written to slots {@code startPos ..}
 * @param startPos how many tokens of this sequence already have KV in {@code table}
 * @param table the sequence's blocks; must already be reserved for {@code startPos + tokens.length}
 * @param logitRows indices into {@code tokens} whose next-token logits are wanted, ascending
 * @param captureAttention whether to return this sequence's attention probabilities
 * @param tree null for causal attention; else the token tree the slots from {@code tree.base()} on
 *     hold ({@code startPos >= tree.base()}, every fed token a node): each sees the prefix and its
 *     ancestors, at position base + depth. Not combined with {@code captureAttention}.
 */
public record SeqStep(
    int[] tokens,
    int startPos,
    BlockTable table,
    int[] logitRows,
    boolean captureAttention,
    TreeMask tree) {

  public SeqStep {
    if (tree != null
        && (captureAttention
            || startPos < tree.base()
            || startPos + tokens.length > tree.base() + tree.nodes())) {
      throw new IllegalArgumentException(
          "tree step over slots "
              + startPos
              + ".."
              + (startPos + tokens.length)
              + " (expected: inside the tree's "
              + tree.base()
              + ".."
              + (tree.base() + tree.nodes())
              + ", without attention capture)");
    }
  }

  /** A step with causal attention. */
  public SeqStep(
      int[] tokens, int startPos, BlockTable table, int[] logitRows, boolean captureAttention) {
    this(tokens, startPos, table, logitRows, captureAttention, null);
  }

  /** Slots this sequence holds after the step. */
  public int length() {
    return startPos + tokens.length;
  }

  /** The RoPE position of fed token {@code r}. */
  public int position(int r) {
    return tree == null ? startPos + r : tree.position(startPos + r - tree.base());
  }
}
