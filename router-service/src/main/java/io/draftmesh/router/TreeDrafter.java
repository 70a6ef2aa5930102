package io.draftmesh.router;

import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Verified;

/**
 * One way to draft a token tree for {@link TreeDecoding}: each implementation is a small type in a
 * file of its own (DySpec, RSD, Token Recycling, lookahead). A drafter backed by a draft worker
 * throws {@link WorkerSession.WorkerFailure} when the worker fails; the strategy then drops it and
 * goes on with the target alone.
 */
interface TreeDrafter {
  /**
   * A tree of at most {@code budget} nodes and {@code maxDepth} levels to follow {@code seq[0,
   * len)}; empty when the drafter has nothing to propose (the round is then one autoregressive
   * step).
   */
  DraftTree draft(int[] seq, int len, int budget, int maxDepth);

  /**
   * How many of {@code tree}'s nodes (the tree this drafter drafted last) the target is expected to
   * accept, by the drafter's own estimates; NaN where it makes none. {@link TreeDecoding} weighs it
   * against the measured cost of a verify ({@link TreeVerifyGate}), so the estimate must not depend
   * on anything the verify is to decide.
   */
  default double expectedAccepted(DraftTree tree) {
    return Double.NaN;
  }

  /** What the target should report per position, for drafters that learn from it. */
  default ResultOptions targetOptions() {
    return ResultOptions.getDefaultInstance();
  }

  /**
   * What the target should report for a tree verify: {@link #targetOptions}, plus {@code
   * node_top_k} for drafters that learn from every node they proposed.
   */
  default ResultOptions treeVerifyOptions() {
    return targetOptions();
  }

  /**
   * The target verified {@code tree}, drafted after {@code seq[0, start)}: its accepted path, its
   * predictions after {@code seq[start - 1]} and after each accepted node, and (when {@link
   * #treeVerifyOptions} asked for them) the top-k after every node. {@code seq} holds what was
   * committed, valid up to {@code len}.
   */
  default void verified(int[] seq, int start, int len, DraftTree tree, Verified v) {}

  /**
   * The target decoded alone after {@code seq[0, start)} (nothing to draft): its predictions after
   * {@code seq[start - 1]} and each token it wrote.
   */
  default void decoded(int[] seq, int start, int len, Proposed p) {}

  /** Requests sent to a draft worker so far (0 for model-free drafters). */
  default int draftCalls() {
    return 0;
  }

  /** Ends the drafter's helper session, if any. */
  default void close() {}
}
