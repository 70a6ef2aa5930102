package io.draftmesh.engine.model;

/**
 * Tree attention for one step: the sequence's slots {@code [0, base)} are a plain prefix, and the
 * slots from {@code base} on hold the nodes of a token tree in node order (node j in slot {@code
 * base + j}). Node j sees the whole prefix, its ancestors and itself, and sits at RoPE position
 * {@code base + depth(j)}: exactly what it would see, at the position it would have, if its
 * root-to-node path were fed as a chain. A chain is the tree whose parents are {@code -1, 0, 1,
 * ..}.
 *
 * <p>Both backends read it the same way: a node's visible keys are the prefix then its path, in
 * depth order (the order a chain would have them in).
 */
public final class TreeMask {
  private final int base;
  private final int[] parents; // (nodes) parent node index, or -1 for a root (child of the prefix)
  private final int[] depths; // (nodes) 0 for a root

  /**
   * @param base slots before the first node: the prefix every node sees
   * @param parents per node, its parent's index (smaller than its own) or -1 for a root
   */
  public TreeMask(int base, int[] parents) {
    if (base < 0) {
      throw new IllegalArgumentException("tree base " + base + " (expected: >= 0)");
    }
    this.base = base;
    this.parents = parents.clone();
    this.depths = new int[parents.length];
    for (int j = 0; j < parents.length; j++) {
      int p = parents[j];
      if (p < -1 || p >= j) {
        throw new IllegalArgumentException(
            "tree parents[" + j + "]: " + p + " (expected: -1.." + (j - 1) + ")");
      }
      depths[j] = p < 0 ? 0 : depths[p] + 1;
    }
  }

  /** The mask of a chain of {@code nodes} tokens after {@code base}: causal attention. */
  public static TreeMask chain(int base, int nodes) {
    int[] parents = new int[nodes];
    for (int j = 0; j < nodes; j++) {
      parents[j] = j - 1;
    }
    return new TreeMask(base, parents);
  }

  public int base() {
    return base;
  }

  public int nodes() {
    return parents.length;
  }

  public int parent(int node) {
    return parents[node];
  }

  public int depth(int node) {
    return depths[node];
  }

  /** The RoPE position of {@code node}: the prefix length plus its depth. */
  public int position(int node) {
    return base + depths[node];
  }

  /** The nodes from the root down to {@code node}, itself included: (depth + 1). */
  public int[] path(int node) {
    int[] path = new int[depths[node] + 1];
    for (int j = node, d = depths[node]; j >= 0; j = parents[j], d--) {
      path[d] = j;
    }
    return path;
  }

  /**
   * The sequence indices {@code node} attends to, in order: the prefix {@code 0..base-1}, then the
   * slots of its path: (base + depth + 1).
   */
  public int[] visible(int node) {
    int[] path = path(node);
    int[] out = new int[base + path.length];
    for (int i = 0; i < base; i++) {
      out[i] = i;
    }
    for (int d = 0; d < path.length; d++) {
      out[base + d] = base + path[d];
    }
    return out;
  }
}
