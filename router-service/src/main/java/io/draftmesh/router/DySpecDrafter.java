package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.random.RandomGenerator;

/**
 * DySpec-style dynamic tree (Xiong et al. 2024): grow the tree where the draft is confident. Every
 * candidate child has a value, the draft's probability of its whole path (an estimate of the chance
 * the target accepts it); the most valuable candidates join the tree first, up to the node budget,
 * so a confident draft grows a deep chain and an unsure one a bushy tree. The tree grows in a few
 * waves of the best {@code budget / WAVES} candidates; after each wave the draft worker scores the
 * tree (one forward pass over all nodes) to give the new nodes' children.
 *
 * <p>Greedy: a node's candidates are its draft top-k. Sampling: they are drawn without replacement,
 * and a child is drawn only once the decision to add it is taken, from what its ancestors and
 * earlier siblings already fixed (value = path probability to the parent times the mass left for
 * it); a choice that looked at the child's own token would bias which tokens reach the target, and
 * the multi-draft rule would no longer be lossless.
 */
final class DySpecDrafter implements TreeDrafter {
  static final int WAVES = 8;
  static final int MAX_CHILDREN = 8;

  private final DraftModelTree model;
  private final boolean greedy;
  private final RandomGenerator rng;

  DySpecDrafter(DraftModelTree model, boolean greedy, RandomGenerator rng) {
    this.model = model;
    this.greedy = greedy;
    this.rng = rng;
  }

  /** A way to extend the tree under {@code parent}: a known token (greedy) or a draw to make. */
  private record Candidate(
      double value, int parent, int token, double pathProb, WithoutReplacement draws) {}

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    DraftTree tree = new DraftTree();
    PriorityQueue<Candidate> frontier =
        new PriorityQueue<>((a, b) -> Double.compare(b.value(), a.value()));
    offerChildren(frontier, model.root(seq, len), -1, 1.0, budget);
    int wave = Math.max(1, (budget + WAVES - 1) / WAVES);
    double[] pathProb = new double[budget];
    while (tree.size() < budget && !frontier.isEmpty()) {
      List<Integer> added = new ArrayList<>();
      while (added.size() < wave && tree.size() < budget && !frontier.isEmpty()) {
        Candidate c = frontier.poll();
        if (c.parent() >= 0 && tree.depth(c.parent()) >= maxDepth) {
          continue;
        }
        int node;
        if (c.draws() == null) {
          node = tree.add(c.token(), c.parent(), null);
          pathProb[node] = c.pathProb();
        } else {
          double parentProb = c.parent() < 0 ? 1.0 : pathProb[c.parent()];
          WithoutReplacement.Draw d = c.draws().next(rng);
          if (d == null) {
            continue;
          }
          node = tree.add(d.token(), c.parent(), d.from());
          pathProb[node] = parentProb * d.prob();
          if (c.draws().massLeft() > 1e-6) {
            frontier.add(
                new Candidate(parentProb * c.draws().massLeft(), c.parent(), -1, 0, c.draws()));
          }
        }
        added.add(node);
      }
      if (added.isEmpty() || tree.size() >= budget) {
        break;
      }
      List<Position> scored = model.score(tree);
      for (int node : added) {
        if (tree.depth(node) < maxDepth) {
          offerChildren(frontier, scored.get(node), node, pathProb[node], budget);
        }
      }
    }
    return tree;
  }

  private void offerChildren(
      PriorityQueue<Candidate> frontier, Position at, int parent, double prob, int budget) {
    if (greedy) {
      int[] ids = ProbCodec.ids(at.getTop());
      float[] probs = ProbCodec.probs(at.getTop());
      for (int i = 0; i < Math.min(ids.length, Math.min(MAX_CHILDREN, budget)); i++) {
        frontier.add(new Candidate(prob * probs[i], parent, ids[i], prob * probs[i], null));
      }
    } else {
      WithoutReplacement draws =
          new WithoutReplacement(ProbCodec.dense(at.getFull(), model.vocab()));
      frontier.add(new Candidate(prob * draws.massLeft(), parent, -1, 0, draws));
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
