package io.draftmesh.engine.runtime;

import io.draftmesh.engine.sampling.ProbDist;
import java.util.List;

/**
 * The outcome of verifying a token tree.
 *
 * @param path the accepted nodes, root first (their tokens now follow the prefix, with KV)
 * @param nextToken the correction or bonus token after them, appended unfed
 * @param bonus whether the path ends at a leaf (nothing there was rejected)
 * @param positions the target's predictions after the prefix and after each accepted node (path
 *     length + 1), each with the emitted token
 * @param nodeTop with {@link ResultOptions#nodeTopK}: per node, in order, the top k of the target's
 *     transformed distribution after it (its root-to-node path fed after the prefix), as {@link
 *     Position#top} reports a position's; empty otherwise
 */
public record TreeVerification(
    int[] path, int nextToken, boolean bonus, List<Position> positions, List<ProbDist> nodeTop) {
  public int accepted() {
    return path.length;
  }
}
