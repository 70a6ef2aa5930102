package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * Recursive Speculative Decoding with constant branching factors (RSD-C, Jeon et al. 2024): a tree
 * of fixed shape, {@link #BRANCHING}[d] children under every node of depth d (the last factor
 * repeats), filled level by level up to the node budget, each node's children drawn without
 * replacement from the draft's distribution there. The shape never depends on the drawn tokens, so
 * each child is distributed exactly as the multi-draft rule assumes. Greedy requests take the
 * draft's top-k instead (sampling without replacement at temperature 0).
 *
 * <p>One draft call per level: the root's prediction, then a tree Score after each level.
 */
final class RsdDrafter implements TreeDrafter {
  static final int[] BRANCHING = {2, 2, 1};

  private final DraftModelTree model;
  private final boolean greedy;
  private final RandomGenerator rng;

  RsdDrafter(DraftModelTree model, boolean greedy, RandomGenerator rng) {
    this.model = model;
    this.greedy = greedy;
    this.rng = rng;
  }

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    DraftTree tree = new DraftTree();
    List<Integer> level = List.of(-1); // parents of the next level; -1 = the prefix
    List<Position> at = List.of(model.root(seq, len));
    for (int d = 0; d < maxDepth && tree.size() < budget && !level.isEmpty(); d++) {
      int b = BRANCHING[Math.min(d, BRANCHING.length - 1)];
      List<Integer> next = new ArrayList<>();
      for (int i = 0; i < level.size() && tree.size() < budget; i++) {
        children(tree, level.get(i), at.get(i), Math.min(b, budget - tree.size()), next);
      }
      level = next;
      if (tree.size() >= budget || d + 1 >= maxDepth || level.isEmpty()) {
        break;
      }
      List<Position> scored = model.score(tree);
      List<Position> nextAt = new ArrayList<>(level.size());
      for (int node : level) {
        nextAt.add(scored.get(node));
      }
      at = nextAt;
    }
    return tree;
  }

  private void children(DraftTree tree, int parent, Position at, int b, List<Integer> added) {
    if (greedy) {
      int[] ids = ProbCodec.ids(at.getTop());
      for (int i = 0; i < Math.min(b, ids.length); i++) {
        added.add(tree.add(ids[i], parent, null));
      }
      return;
    }
    WithoutReplacement draws = new WithoutReplacement(ProbCodec.dense(at.getFull(), model.vocab()));
    for (int i = 0; i < b; i++) {
      WithoutReplacement.Draw d = draws.next(rng);
      if (d == null) {
        return;
      }
      added.add(tree.add(d.token(), parent, d.from()));
    }
  }

  @Override
  public int draftCalls() {
    return model.calls();
  }

  @Override
  public void close() {
    model.close();
  }
}
