package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Verified;
import java.util.ArrayDeque;
import java.util.List;

/**
 * Token Recycling (Luo et al. 2024), model-free: the target's own top-k candidates, seen at every
 * position it verified or decoded, are kept in an adjacency table ({@link TokenRecyclingTable},
 * shared by every request of the same target model, as in the paper); a round's tree is a
 * breadth-first walk of the table from the last token, {@link #BRANCHING}[d] children per node of
 * depth d. Nothing is trained and no draft worker runs. Its proposals are deterministic, so each
 * node's q is one-hot on its token, which the multi-draft rule treats exactly.
 *
 * <p>It learns from the positions the target emits (the accepted path and the correction or bonus
 * token); the paper also records the top-k at every rejected tree node, which would need a verify
 * to return every node's distribution.
 */
final class TokenRecyclingDrafter implements TreeDrafter {
  static final int K = 8;
  static final int[] BRANCHING = {4, 3, 2, 2, 1};

  private final TokenRecyclingTable table;
  private final boolean greedy;

  TokenRecyclingDrafter(TokenRecyclingTable table, boolean greedy) {
    this.table = table;
    this.greedy = greedy;
  }

  @Override
  public ResultOptions targetOptions() {
    return ResultOptions.newBuilder().setTopKProbs(K).build();
  }

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    DraftTree tree = new DraftTree();
    ArrayDeque<int[]> queue = new ArrayDeque<>(); // {node, token}; node -1 = the last token
    queue.add(new int[] {-1, seq[len - 1]});
    while (!queue.isEmpty() && tree.size() < budget) {
      int[] at = queue.poll();
      int depth = at[0] < 0 ? 0 : tree.depth(at[0]);
      int[] candidates = table.candidates(at[1]);
      if (candidates == null || depth >= maxDepth) {
        continue;
      }
      int b = BRANCHING[Math.min(depth, BRANCHING.length - 1)];
      for (int i = 0; i < Math.min(b, candidates.length) && tree.size() < budget; i++) {
        int token = candidates[i];
        int node = tree.add(token, at[0], greedy ? null : oneHot(token));
        queue.add(new int[] {node, token});
      }
    }
    return tree;
  }

  @Override
  public void verified(int[] seq, int start, int len, DraftTree tree, Verified v) {
    learn(seq, start, len, v.getPositionsList());
  }

  @Override
  public void decoded(int[] seq, int start, int len, Proposed p) {
    learn(seq, start, len, p.getPositionsList());
  }

  /** positions.get(i) is the target's prediction after seq[start - 1 + i]. */
  private void learn(int[] seq, int start, int len, List<Position> positions) {
    for (int i = 0; i < positions.size() && start - 1 + i < len; i++) {
      ProbDistribution top = positions.get(i).getTop();
      table.learn(seq[start - 1 + i], ProbCodec.ids(top));
    }
  }

  private ProbDistribution oneHot(int token) {
    return NgramDecoding.oneHot(token);
  }
}
