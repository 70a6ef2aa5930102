package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import java.util.List;

/**
 * A draft model's predictions for a growing tree, as the tree drafters read them: after the
 * committed sequence, and after every node of a candidate tree (one request each). {@link
 * DraftModelTree} asks a draft worker; tests can count and script the requests.
 */
interface DraftScorer {
  /** Brings the draft up to {@code seq[0, len)} and returns its prediction after the last token. */
  Position root(int[] seq, int len);

  /** The draft's predictions after each node of {@code tree} (node j at index j). */
  List<Position> score(DraftTree tree);

  int vocab();

  /** Requests sent so far. */
  int calls();

  void close();
}
