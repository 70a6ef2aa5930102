package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Verified;
import java.util.Arrays;
import java.util.List;

/**
 * Token Recycling (Luo et al. 2024), model-free: the target's own top-k candidates, seen after
 * every token it scored, are kept in an adjacency table ({@link TokenRecyclingTable}, shared by
 * every request of the same target model, as in the paper). A round's tree is the paper's static
 * template ({@link #TEMPLATE}) read out of the table from the last token: the node at rank path
 * [r1, .., rd] holds the rd-th candidate after the token of the node at [r1, .., rd-1]. Nothing is
 * trained and no draft worker runs. Its proposals are deterministic, so each node's q is one-hot on
 * its token, which the multi-draft rule treats exactly.
 *
 * <p>After each verify it learns, as the paper does, the target's top-k after <em>every</em> node
 * of the tree (the verify's {@code node_top}), rejected nodes included, then after the prefix and
 * each accepted node, so that where a token appears twice the context that really happened is the
 * latest sighting.
 *
 * <p>A budget below the template's 80 nodes keeps the template's nodes with the highest chance of
 * being reached, in the independence model the template itself rests on: a node's chance is the
 * product of its ranks' hit rates along its path, hit rates the table measures (how often the
 * candidate of each rank was the one accepted, where the target saw it in the context that
 * happened). Products never grow along a path, so every prefix of that order is a tree.
 */
final class TokenRecyclingDrafter implements TreeDrafter {
  static final int K = 8;

  /**
   * The paper's tree: version "2.2.2" of the authors' {@code model/recycling/tree_template_.py}
   * (Luowaterbi/TokenRecycling), 80 nodes on 6 levels (8, 21, 25, 15, 8, 3). Each word is a node's
   * rank path, one digit a level ("01": the 1st candidate after the 0th candidate after the last
   * token); parents come first.
   */
  static final int[][] TEMPLATE =
      ranks(
          String.join(
              " ",
              "0 1 2 3 4 5 6 7",
              "00 01 02 03 04 05 06 07 10 11 12 13 20 21 22 30 31 40 50 60 70",
              "000 001 002 003 004 005 006 007 010 011 012 020 021",
              "030 040 050 060 070 100 101 110 200 300 400 500",
              "0000 0001 0002 0003 0004 0010 0011 0020 0030 0040 0100 0200 1000 2000 3000",
              "00000 00001 00002 00010 00020 00100 01000 10000",
              "000000 000001 000100"));

  /** Per template node, the index of its parent in {@link #TEMPLATE}, -1 for a root. */
  private static final int[] TEMPLATE_PARENT = templateParents();

  private final TokenRecyclingTable table;
  private final boolean greedy;
  private int[] ranks = new int[0]; // per node of the tree last drafted, its rank under its parent

  TokenRecyclingDrafter(TokenRecyclingTable table, boolean greedy) {
    this.table = table;
    this.greedy = greedy;
  }

  @Override
  public ResultOptions targetOptions() {
    return ResultOptions.newBuilder().setTopKProbs(K).build();
  }

  @Override
  public ResultOptions treeVerifyOptions() {
    return ResultOptions.newBuilder().setTopKProbs(K).setNodeTopK(K).build();
  }

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    DraftTree tree = new DraftTree();
    int[] nodeOf = new int[TEMPLATE.length]; // template node -> tree node, -1 = not in the tree
    Arrays.fill(nodeOf, -1);
    int[] rankOf = new int[Math.min(budget, TEMPLATE.length)];
    for (int t : priorityOrder()) {
      if (tree.size() >= budget) {
        break;
      }
      int[] path = TEMPLATE[t];
      int parent = TEMPLATE_PARENT[t];
      if (path.length > maxDepth || (parent >= 0 && nodeOf[parent] < 0)) {
        continue;
      }
      int after = parent < 0 ? seq[len - 1] : tree.token(nodeOf[parent]);
      int[] candidates = table.candidates(after);
      int rank = path[path.length - 1];
      if (candidates == null || rank >= candidates.length) {
        continue;
      }
      int token = candidates[rank];
      nodeOf[t] =
          tree.add(
              token, parent < 0 ? -1 : nodeOf[parent], greedy ? null : NgramDecoding.oneHot(token));
      rankOf[nodeOf[t]] = rank;
    }
    ranks = Arrays.copyOf(rankOf, tree.size());
    return tree;
  }

  /**
   * The expected accepted nodes: the sum, over the tree's nodes, of the chance that its whole path
   * is accepted (a node is accepted only if its parent is), taken as the product of its ranks' hit
   * rates along the path. That assumes, as the template and {@link #priorityOrder} do, that whether
   * a rank's candidate is accepted depends on its rank alone (not on its depth, its ancestors or
   * the context).
   */
  @Override
  public double expectedAccepted(DraftTree tree) {
    if (ranks.length != tree.size()) {
      return Double.NaN; // not the tree this drafter drafted last
    }
    double[] rate = hitRates();
    double[] reach = new double[tree.size()]; // parents come before their children
    double expected = 0;
    for (int j = 0; j < tree.size(); j++) {
      reach[j] = (tree.parent(j) < 0 ? 1 : reach[tree.parent(j)]) * rate[ranks[j]];
      expected += reach[j];
    }
    return expected;
  }

  private double[] hitRates() {
    double[] rate = new double[K];
    for (int r = 0; r < K; r++) {
      rate[r] = table.hitRate(r);
    }
    return rate;
  }

  /**
   * Template nodes by their chance of being reached, highest first (the template's order among
   * equals, so a parent, never less likely than its child, comes first).
   */
  private Integer[] priorityOrder() {
    double[] rate = hitRates();
    double[] reach = new double[TEMPLATE.length];
    Integer[] order = new Integer[TEMPLATE.length];
    for (int t = 0; t < TEMPLATE.length; t++) {
      int[] path = TEMPLATE[t];
      reach[t] =
          (TEMPLATE_PARENT[t] < 0 ? 1 : reach[TEMPLATE_PARENT[t]]) * rate[path[path.length - 1]];
      order[t] = t;
    }
    Arrays.sort(order, (a, b) -> Double.compare(reach[b], reach[a])); // stable
    return order;
  }

  @Override
  public void verified(int[] seq, int start, int len, DraftTree tree, Verified v) {
    List<Integer> path = v.getAcceptedPathList();
    countHits(tree, path);
    boolean[] accepted = new boolean[tree.size()];
    path.forEach(node -> accepted[node] = true);
    for (int j = 0; j < v.getNodeTopCount() && j < tree.size(); j++) {
      if (!accepted[j]) {
        table.learn(tree.token(j), ProbCodec.ids(v.getNodeTop(j)));
      }
    }
    learn(seq, start, len, v.getPositionsList());
  }

  /**
   * Where the target saw the tree in the context that happened (after the prefix and after each
   * accepted node), each child there tried its rank, and the accepted child hit.
   */
  private void countHits(DraftTree tree, List<Integer> path) {
    if (ranks.length != tree.size()) {
      return; // not the tree this drafter drafted last
    }
    for (int j = 0; j < tree.size(); j++) {
      int parent = tree.parent(j);
      int d = tree.depth(j) - 1; // the accepted-path index its parent would have
      boolean parentHappened = parent < 0 || (d - 1 < path.size() && path.get(d - 1) == parent);
      if (parentHappened) {
        table.tried(ranks[j], d < path.size() && path.get(d) == j);
      }
    }
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

  private static int[][] ranks(String words) {
    String[] w = words.split(" ");
    int[][] out = new int[w.length][];
    for (int t = 0; t < w.length; t++) {
      out[t] = w[t].chars().map(c -> c - '0').toArray();
    }
    return out;
  }

  private static int[] templateParents() {
    int[] parents = new int[TEMPLATE.length];
    for (int t = 0; t < TEMPLATE.length; t++) {
      int[] up = Arrays.copyOf(TEMPLATE[t], TEMPLATE[t].length - 1);
      parents[t] = -1;
      for (int u = 0; u < t && up.length > 0; u++) {
        if (Arrays.equals(TEMPLATE[u], up)) {
          parents[t] = u;
        }
      }
      if (up.length > 0 && parents[t] < 0) {
        throw new IllegalStateException("template node " + t + " has no parent before it");
      }
    }
    return parents;
  }
}
