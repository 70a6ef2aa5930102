package io.draftmesh.router;

import io.draftmesh.proto.v1.ProbDistribution;
import java.util.ArrayList;
import java.util.List;

/**
 * A token tree a drafter proposes for one round, in the order the target receives it: node j holds
 * {@code tokens[j]} under node {@code parents[j]} (earlier), or under the sequence's last token for
 * -1. For sampling requests, {@code q[j]} is the distribution node j was drawn from given its
 * parent's path and its earlier siblings (the multi-draft rule's premise); empty for greedy ones.
 */
final class DraftTree {
  private final List<Integer> tokens = new ArrayList<>();
  private final List<Integer> parents = new ArrayList<>();
  private final List<Integer> depths = new ArrayList<>();
  private final List<ProbDistribution> q = new ArrayList<>();

  /** Adds a node and returns its index. */
  int add(int token, int parent, ProbDistribution from) {
    tokens.add(token);
    parents.add(parent);
    depths.add(parent < 0 ? 1 : depths.get(parent) + 1);
    if (from != null) {
      q.add(from);
    }
    return tokens.size() - 1;
  }

  int size() {
    return tokens.size();
  }

  int token(int node) {
    return tokens.get(node);
  }

  int parent(int node) {
    return parents.get(node);
  }

  /** Nodes on the path from a root to {@code node}, itself included. */
  int depth(int node) {
    return depths.get(node);
  }

  List<Integer> tokens() {
    return tokens;
  }

  List<Integer> parents() {
    return parents;
  }

  List<ProbDistribution> q() {
    return q;
  }

  /** The tokens on the path from a root to {@code node}, root first. */
  int[] pathTokens(int node) {
    int[] out = new int[depth(node)];
    for (int j = node, d = out.length - 1; j >= 0; j = parent(j), d--) {
      out[d] = token(j);
    }
    return out;
  }
}
