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
 * @param tree null for causal attention; else the token tree the slots from {@code tree.base()} on
 *     hold ({@code startPos >= tree.base()}, every fed token a node): each sees the prefix and its
 *     ancestors, at slot position base + depth. Not combined with {@code captureAttention}.
 */
public record SeqStep(
    int[] tokens,
    int startPos,
    BlockTable table,
    int[] logitRows,
    boolean captureAttention,
    int positionShift,
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

  /** A step with causal attention over an uncompacted cache. */
  public SeqStep(
      int[] tokens, int startPos, BlockTable table, int[] logitRows, boolean captureAttention) {
    this(tokens, startPos, table, logitRows, captureAttention, 0, null);
  }

  /** Cache slots this sequence holds after the step. */
  public int length() {
    return startPos + tokens.length;
  }

  /** RoPE position of the first new token of a chain step. */
  public int firstPosition() {
    return startPos + positionShift;
  }

  /** One past the last position the step rotates for: must not exceed the model's context. */
  public int positionEnd() {
    return length() + positionShift;
  }

  /**
   * Where fed token {@code r} stands among the slots it attends to: its slot for a chain, base +
   * depth in a tree (attention reads that many visible slots before it).
   */
  public int slotPosition(int r) {
    return tree == null ? startPos + r : tree.position(startPos + r - tree.base());
  }

  /** The RoPE position of fed token {@code r}: its slot position plus the compaction shift. */
  public int position(int r) {
    return slotPosition(r) + positionShift;
  }
}
