package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;

/**
 * DySpec-style dynamic tree (Xiong et al. 2024): grow the tree where the draft is confident. Every
 * candidate child has a value, the draft's probability of its whole path (an estimate of the chance
 * the target accepts it); the tree is the best-first one: the most valuable candidate joins next,
 * its children become candidates, up to the node budget. A confident draft grows a deep chain, an
 * unsure one a bushy tree.
 *
 * <p>Best-first needs a node's children (a draft forward after it) only once it has joined, but
 * asking the draft worker once per node costs a round trip each. So the tree is found in a few
 * rounds instead: replay best-first with what the draft has scored so far, letting unscored nodes
 * join without children; score, in one tree Score, every node that joined unscored (except the one
 * that joined last: its children would come after the budget is full); replay. When every node that
 * joined was scored, the replay is best-first itself. Each Score gives the children of one more
 * level of the final tree, so a round takes at most 1 + its depth in draft calls (the root's
 * prediction and one Score per level; one fewer when the depth is the round's limit), against one
 * per node asked node by node.
 *
 * <p>Greedy: a node's candidates are its draft top-k. Sampling: they are drawn without replacement,
 * and a child is drawn only once the decision to add it is taken, from what its ancestors and
 * earlier siblings already fixed (value = path probability to the parent times the mass left for
 * it); a choice that looked at the child's own token would bias which tokens reach the target, and
 * the multi-draft rule would no longer be lossless. A replay may draw children that the final tree
 * leaves out; they are dropped, and whether a child joins never depends on its own token, so the
 * children that do join are distributed as in one best-first pass. Each node's children are drawn
 * from a generator of their own (seeded from the round and the node's place in the tree), so the
 * draws are the same in every replay and do not depend on the order replays make them in.
 */
final class DySpecDrafter implements TreeDrafter {
  static final int MAX_CHILDREN = 8;

  private final DraftScorer model;
  private final boolean greedy;
  private final RandomGenerator rng;

  DySpecDrafter(DraftScorer model, boolean greedy, RandomGenerator rng) {
    this.model = model;
    this.greedy = greedy;
    this.rng = rng;
  }

  /**
   * A node that may join the tree, kept across replays: its token, its path probability and, once
   * the draft has scored it, what its children can be.
   */
  private final class Node {
    final Node parent; // null for the root (the sequence's last token)
    final int depth; // 0 for the root
    final long key; // seeds its children's draws
    final int token;
    final double pathProb;
    final ProbDistribution from; // sampling: the distribution it was drawn from
    final double massLeftAfter; // sampling: its parent's mass left for its later siblings
    Position scored; // the draft's prediction after it; null until scored
    int[] topIds; // greedy, once scored: its children's tokens, most likely first
    float[] topProbs;
    WithoutReplacement draws; // sampling, once scored: draws its children in order
    double mass; // sampling, once scored: the mass its first child is drawn from
    RandomGenerator drawRng;
    final List<Node> children = new ArrayList<>(); // those made so far, in rank order
    int index; // its index in the tree being replayed

    Node(Node parent, long key, int token, double pathProb, ProbDistribution from, double left) {
      this.parent = parent;
      this.depth = parent == null ? 0 : parent.depth + 1;
      this.key = key;
      this.token = token;
      this.pathProb = pathProb;
      this.from = from;
      this.massLeftAfter = left;
    }

    void score(Position at, int budget) {
      scored = at;
      if (greedy) {
        int n = Math.min(MAX_CHILDREN, budget);
        int[] ids = ProbCodec.ids(at.getTop());
        float[] probs = ProbCodec.probs(at.getTop());
        topIds = Arrays.copyOf(ids, Math.min(n, Math.min(ids.length, probs.length)));
        topProbs = Arrays.copyOf(probs, topIds.length);
      } else {
        draws = new WithoutReplacement(ProbCodec.dense(at.getFull(), model.vocab()));
        mass = draws.massLeft();
        drawRng = new SplittableRandom(key);
      }
    }

    /** The mass left for the child of rank {@code rank} (sampling). */
    double massLeftBefore(int rank) {
      return rank == 0 ? mass : children.get(rank - 1).massLeftAfter;
    }

    /** Its child of rank {@code rank}, made (drawn) the first time; null once q is used up. */
    Node child(int rank) {
      while (children.size() <= rank) {
        int r = children.size();
        long childKey = RouterService.mix(key + 0x9E3779B97F4A7C15L * (r + 1));
        if (greedy) {
          children.add(new Node(this, childKey, topIds[r], pathProb * topProbs[r], null, 0));
          continue;
        }
        WithoutReplacement.Draw d = draws.next(drawRng);
        if (d == null) {
          return null;
        }
        children.add(
            new Node(this, childKey, d.token(), pathProb * d.prob(), d.from(), draws.massLeft()));
      }
      return children.get(rank);
    }
  }

  /**
   * The child of rank {@code rank} under {@code parent}, worth {@code value}; {@code seq} breaks
   * ties.
   */
  private record Candidate(double value, long seq, Node parent, int rank) {}

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    Node root = new Node(null, rng.nextLong(), -1, 1.0, null, 0);
    root.score(model.root(seq, len), budget);
    while (true) {
      List<Node> joined = bestFirst(root, budget, maxDepth);
      List<Node> unscored = new ArrayList<>();
      for (int i = 0; i < joined.size(); i++) {
        Node n = joined.get(i);
        boolean last = i == joined.size() - 1 && joined.size() == budget;
        if (n.scored == null && n.depth < maxDepth && !last) {
          unscored.add(n);
        }
      }
      if (unscored.isEmpty()) {
        return tree(joined);
      }
      scoreAll(unscored, budget);
    }
  }

  /**
   * Best-first under the budget with what is scored so far: the joined nodes in the order they join
   * (parents first). Unscored nodes join without children.
   */
  private List<Node> bestFirst(Node root, int budget, int maxDepth) {
    PriorityQueue<Candidate> frontier =
        new PriorityQueue<>(
            (a, b) ->
                a.value() != b.value()
                    ? Double.compare(b.value(), a.value())
                    : Long.compare(a.seq(), b.seq()));
    long[] seq = {0};
    List<Node> joined = new ArrayList<>();
    offerChildren(frontier, root, seq);
    while (joined.size() < budget && !frontier.isEmpty()) {
      Candidate c = frontier.poll();
      if (c.parent().depth >= maxDepth) {
        continue;
      }
      Node n = c.parent().child(c.rank());
      if (n == null) {
        continue;
      }
      joined.add(n);
      if (!greedy && n.massLeftAfter > 1e-6) {
        Node p = c.parent();
        frontier.add(new Candidate(p.pathProb * n.massLeftAfter, seq[0]++, p, c.rank() + 1));
      }
      if (n.scored != null) {
        offerChildren(frontier, n, seq);
      }
    }
    return joined;
  }

  private void offerChildren(PriorityQueue<Candidate> frontier, Node n, long[] seq) {
    if (greedy) {
      for (int i = 0; i < n.topIds.length; i++) {
        frontier.add(new Candidate(n.pathProb * n.topProbs[i], seq[0]++, n, i));
      }
    } else if (n.massLeftBefore(0) > 1e-6) {
      frontier.add(new Candidate(n.pathProb * n.massLeftBefore(0), seq[0]++, n, 0));
    }
  }

  /** One tree Score over {@code nodes} and their ancestors. */
  private void scoreAll(List<Node> nodes, int budget) {
    List<Node> order = new ArrayList<>();
    Set<Node> in = new HashSet<>();
    for (Node n : nodes) {
      addWithAncestors(n, in, order);
    }
    List<Position> scored = model.score(tree(order));
    for (Node n : nodes) {
      n.score(scored.get(n.index), budget);
    }
  }

  private static void addWithAncestors(Node n, Set<Node> in, List<Node> order) {
    if (n.parent == null || in.contains(n)) {
      return;
    }
    addWithAncestors(n.parent, in, order);
    in.add(n);
    order.add(n);
  }

  /** The nodes as a tree, in their order (parents first); sets each node's index. */
  private DraftTree tree(List<Node> nodes) {
    DraftTree tree = new DraftTree();
    for (Node n : nodes) {
      n.index = tree.add(n.token, n.parent.parent == null ? -1 : n.parent.index, n.from);
    }
    return tree;
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
