package io.draftmesh.router;

import java.util.HashMap;
import java.util.Map;
import java.util.PriorityQueue;

/**
 * Lookahead's multi-branch drafting (Zhao et al. 2024, Alipay), model-free: every n-gram of up to
 * {@link #MAX_NGRAM} tokens of the prompt and the output so far goes into a trie with counts; a
 * round matches the longest suffix of the sequence (up to {@link #MAX_MATCH} tokens) in the trie
 * and proposes the most frequent continuations below it as a tree, best first, up to the node
 * budget. Where the sequence repeats itself (code, lists, quoted text) whole branches are accepted;
 * where nothing matches the round is one plain step (the worst case is plain decoding). Proposals
 * are deterministic: each node's q is one-hot on its token.
 */
final class LookaheadDrafter implements TreeDrafter {
  static final int MAX_NGRAM = 10;
  static final int MAX_MATCH = 3;

  private final boolean greedy;
  private final Node root = new Node();
  private int indexed; // seq[0, indexed) is in the trie

  LookaheadDrafter(boolean greedy) {
    this.greedy = greedy;
  }

  /** A trie node: how many indexed n-grams pass through it, and what followed. */
  private static final class Node {
    int count;
    final Map<Integer, Node> children = new HashMap<>(2);
  }

  private record Pending(int count, Node node, int token, int parent) {}

  @Override
  public DraftTree draft(int[] seq, int len, int budget, int maxDepth) {
    index(seq, len);
    DraftTree tree = new DraftTree();
    for (int s = Math.min(MAX_MATCH, len); s >= 1; s--) {
      Node at = walk(seq, len - s, len);
      if (at == null || at.children.isEmpty()) {
        continue;
      }
      PriorityQueue<Pending> best =
          new PriorityQueue<>((a, b) -> Integer.compare(b.count(), a.count()));
      offer(best, at, -1);
      while (!best.isEmpty() && tree.size() < budget) {
        Pending p = best.poll();
        if (p.parent() >= 0 && tree.depth(p.parent()) >= maxDepth) {
          continue;
        }
        int node = tree.add(p.token(), p.parent(), greedy ? null : NgramDecoding.oneHot(p.token()));
        offer(best, p.node(), node);
      }
      return tree;
    }
    return tree;
  }

  private static void offer(PriorityQueue<Pending> best, Node at, int parent) {
    for (Map.Entry<Integer, Node> e : at.children.entrySet()) {
      best.add(new Pending(e.getValue().count, e.getValue(), e.getKey(), parent));
    }
  }

  /** Adds the n-grams that end in seq[indexed, len). */
  private void index(int[] seq, int len) {
    for (int end = indexed; end < len; end++) {
      for (int start = Math.max(0, end - MAX_NGRAM + 1); start <= end; start++) {
        // seq[start, end) was added when end - 1 was indexed: extend it by seq[end].
        Node n = start == end ? root : walk(seq, start, end);
        n.children.computeIfAbsent(seq[end], t -> new Node()).count++;
      }
    }
    indexed = Math.max(indexed, len);
  }

  private Node walk(int[] seq, int from, int to) {
    Node n = root;
    for (int i = from; i < to && n != null; i++) {
      n = n.children.get(seq[i]);
    }
    return n;
  }
}
