package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;

/**
 * The draft worker's view of a growing tree, shared by the drafters that grow one from the draft
 * model (DySpec, RSD). The draft session holds exactly the committed sequence: each round appends
 * what was committed since, then scores the tree so far with a tree Score, which the worker runs in
 * one forward pass and does not keep, so nothing ever needs rolling back.
 *
 * <p>Greedy requests ask for each position's top-k (the children worth trying); sampling ones for
 * the full transformed distribution (children are drawn from it).
 */
final class DraftModelTree implements DraftScorer {
  private final WorkerSession draft;
  private final Duration timeout;
  private final int opLimit;
  private final ResultOptions options;
  private final int vocab;
  private int held; // committed tokens the draft session holds
  private Duration firstWait; // the first call may also wait for the draft's prefill
  private int calls; // Score requests sent

  /**
   * @param promptLength the prompt the draft session was opened with
   * @param topK greedy requests: candidates per position; 0 = sampling (full distributions)
   */
  DraftModelTree(
      WorkerSession draft, Duration timeout, int opLimit, int promptLength, int topK, int vocab) {
    this.draft = draft;
    this.timeout = timeout;
    this.firstWait = timeout.multipliedBy(4);
    this.opLimit = opLimit;
    this.held = promptLength;
    this.vocab = vocab;
    this.options =
        topK > 0
            ? ResultOptions.newBuilder().setTopKProbs(topK).build()
            : ResultOptions.newBuilder().setFullDistribution(true).build();
  }

  @Override
  public int vocab() {
    return vocab;
  }

  /**
   * Brings the draft session up to {@code seq[0, len)} and returns its prediction after the last
   * token.
   */
  @Override
  public Position root(int[] seq, int len) {
    if (len > held) {
      for (SessionRequest.Builder append :
          TargetLoop.appends(Arrays.copyOfRange(seq, held, len), opLimit)) {
        draft.send(append);
      }
      held = len;
    }
    return call(Score.newBuilder().setOptions(options)).getScored().getPositions(0);
  }

  /** The draft's predictions after each node of {@code tree} (node j at index j). */
  @Override
  public List<Position> score(DraftTree tree) {
    Score.Builder score =
        Score.newBuilder()
            .setOptions(options)
            .addAllTokenIds(tree.tokens())
            .addAllTreeParents(tree.parents());
    List<Position> positions = call(score).getScored().getPositionsList();
    if (positions.size() != tree.size() + 1) {
      throw new WorkerFailure(
          draft,
          io.grpc.Status.INTERNAL.withDescription(
              "draft worker scored "
                  + positions.size()
                  + " positions for a tree of "
                  + tree.size()
                  + " (expected: one per node plus one)"));
    }
    return positions.subList(1, positions.size());
  }

  private SessionResponse call(Score.Builder score) {
    Duration wait = firstWait != null ? firstWait : timeout;
    firstWait = null;
    calls++;
    return draft.call(SessionRequest.newBuilder().setScore(score), wait, "score");
  }

  @Override
  public int calls() {
    return calls;
  }

  @Override
  public void close() {
    draft.cancel("router dropped the draft");
  }
}
