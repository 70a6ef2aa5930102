package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * STRATEGY_SPECULATIVE with a tree drafter: each round a {@link TreeDrafter} proposes a token tree
 * of at most the node budget, and the target verifies it in one forward pass (tree attention, the
 * multi-draft rule of the engine's {@code TreeVerifier}), keeping the accepted root-to-node path
 * and the correction/bonus token. Accepted nodes are streamed as {@code PROVENANCE_TREE_ACCEPTED}.
 *
 * <p>Where the drafter has nothing to propose, or its tree is not expected to commit enough to pay
 * for the verify over a plain step ({@link TreeVerifyGate}, for drafters that estimate their
 * yield), one autoregressive step; where a draft-worker drafter fails, it is dropped and the target
 * goes on alone from exactly the committed sequence.
 */
final class TreeDecoding implements DecodingStrategy {
  private static final Logger log = LoggerFactory.getLogger(TreeDecoding.class);

  private final DecodingPlan plan;
  private final TargetLoop loop;
  private TreeDrafter drafter; // null once dropped
  private final Runnable openDraft;
  private final TokenStream out;
  private final RunStats stats;

  /**
   * @param openDraft sends the draft worker's Open (if the drafter has one), alongside the target's
   */
  TreeDecoding(
      DecodingPlan plan,
      TargetLoop loop,
      TreeDrafter drafter,
      Runnable openDraft,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.loop = loop;
    this.drafter = drafter;
    this.openDraft = openDraft;
    this.out = out;
    this.stats = stats;
  }

  @Override
  public void run() {
    if (loop.open(openDraft) < 0) {
      return;
    }
    TreeVerifyGate gate = new TreeVerifyGate();
    while (!out.finished() && loop.room() >= 1) {
      int budget = Math.min(plan.treeNodes(), Math.min(loop.room() - 1, loop.opLimit()));
      int maxDepth = out.remaining() - 1;
      DraftTree tree = null;
      if (drafter != null && budget >= 1 && maxDepth >= 1) {
        tree = draft(budget, maxDepth);
      }
      boolean drafted = tree != null && tree.size() > 0;
      boolean verify = drafted && gate.verifyNext(1 + drafter.expectedAccepted(tree), tree.size());
      long t0 = System.nanoTime();
      if (verify) {
        round(tree, budget);
        gate.verified(System.nanoTime() - t0, tree.size());
      } else {
        int written = plainStep();
        gate.plain(System.nanoTime() - t0);
        if (drafted) {
          stats.plainTokens += written; // the tree was not expected to pay for its verify
        }
      }
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /** One autoregressive step, which the drafter learns from; returns the tokens committed. */
  private int plainStep() {
    int start = loop.length();
    Proposed p =
        loop.autoregressiveStep(1, drafter == null ? defaultOptions() : drafter.targetOptions());
    if (drafter != null) {
      drafter.decoded(loop.sequence(), start, loop.length(), p);
    }
    return loop.length() - start;
  }

  private static io.draftmesh.proto.v1.ResultOptions defaultOptions() {
    return io.draftmesh.proto.v1.ResultOptions.getDefaultInstance();
  }

  private DraftTree draft(int budget, int maxDepth) {
    long t0 = System.nanoTime();
    try {
      DraftTree tree = drafter.draft(loop.sequence(), loop.length(), budget, maxDepth);
      stats.draftCalls = drafter.draftCalls();
      if (tree.size() > budget) {
        throw new IllegalStateException(
            "the drafter proposed " + tree.size() + " nodes (expected: at most " + budget + ")");
      }
      return tree;
    } catch (WorkerFailure e) {
      if (e.callerGone()) {
        throw e; // the client is gone: nothing to fall back for
      }
      log.warn("request {}: continuing without the draft: {}", plan.label(), e.getMessage());
      stats.fallback = true;
      stats.fallbackReason = e.getMessage() == null ? "draft failed" : e.getMessage();
      drafter.close();
      drafter = null;
      return null;
    } finally {
      stats.draftNanos += System.nanoTime() - t0;
    }
  }

  private void round(DraftTree tree, int budget) {
    stats.currentK = tree.size();
    stats.treeNodes = budget;
    Verify.Builder verify = Verify.newBuilder().setOptions(drafter.treeVerifyOptions());
    verify.addAllDraftTokenIds(tree.tokens()).addAllTreeParents(tree.parents());
    if (!plan.greedy()) {
      verify.addAllDraftDistributions(tree.q());
    }
    int start = loop.length();
    Verified v = loop.verify(verify);
    List<Integer> path = checkedPath(tree, v);
    stats.round(tree.size(), path.size());
    stats.acceptedPath = path;
    List<Integer> tokens = new ArrayList<>(path.size());
    for (int node : path) {
      tokens.add(tree.token(node));
    }
    loop.emitVerified(tokens, v, Provenance.PROVENANCE_TREE_ACCEPTED);
    drafter.verified(loop.sequence(), start, loop.length(), tree, v);
  }

  /** The accepted path, after checking it is one: a root, then a child of each node before. */
  private List<Integer> checkedPath(DraftTree tree, Verified v) {
    List<Integer> path = v.getAcceptedPathList();
    boolean ok = path.size() == v.getAccepted();
    for (int d = 0; ok && d < path.size(); d++) {
      int node = path.get(d);
      ok = node >= 0 && node < tree.size() && tree.parent(node) == (d == 0 ? -1 : path.get(d - 1));
    }
    if (!ok) {
      throw new IllegalStateException(
          "the target worker accepted path "
              + path
              + " ("
              + v.getAccepted()
              + " accepted), which is no path of the "
              + tree.size()
              + "-node tree");
    }
    return path;
  }
}
