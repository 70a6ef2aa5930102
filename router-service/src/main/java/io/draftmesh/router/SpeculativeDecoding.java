package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.time.Duration;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * STRATEGY_SPECULATIVE: a draft worker proposes, the target verifies (Leviathan/Chen rule, in the
 * target worker).
 *
 * <p>A round pipelines [Truncate] [Append] Propose(k) to the draft, then [Append] Verify(draft
 * tokens, draft distributions) to the target, which keeps the accepted tokens and the
 * correction/bonus token. The draft is rolled back to the accepted prefix and given the
 * correction/bonus token, lazily, with the next round's Propose.
 *
 * <p>The draft only proposes: nothing is committed until the target verified it. So when the draft
 * fails or misses its per-round deadline, its stream is cancelled and decoding continues with
 * autoregressive steps from exactly the committed sequence: no token is lost or repeated.
 */
final class SpeculativeDecoding implements DecodingStrategy {
  private static final Logger log = LoggerFactory.getLogger(SpeculativeDecoding.class);

  private final DecodingPlan plan;
  private final DecodingPlan.Settings settings;
  private final TargetLoop loop;
  private WorkerSession draft; // null once dropped
  private final ModelInfo draftInfo;
  private final TokenStream out;
  private final RunStats stats;

  private int[] draftPending = new int[0]; // committed, not yet appended to the draft session
  private int draftTruncateTo = -1; // draft session length to roll back to before its next op

  SpeculativeDecoding(
      DecodingPlan plan,
      DecodingPlan.Settings settings,
      TargetLoop loop,
      WorkerSession draft,
      ModelInfo draftInfo,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.settings = settings;
    this.loop = loop;
    this.draft = draft;
    this.draftInfo = draftInfo;
    this.out = out;
    this.stats = stats;
  }

  @Override
  public void run() {
    long openNanos =
        loop.open(
            () -> {
              if (draft != null) {
                // Prefills alongside the target; awaited lazily with the first Propose.
                draft.send(TargetLoop.open(plan, plan.prompt(), plan.draftSampling()));
              }
            });
    if (openNanos < 0) {
      return;
    }
    draftPending = new int[] {loop.sequence()[loop.length() - 1]};
    AdaptiveK adaptive =
        new AdaptiveK(plan.k(), plan.adaptive() ? plan.maxK() : Math.max(1, plan.k()));
    // The draft's prefill ran alongside the target's; its first round may wait for both.
    Duration firstDraftWait = settings.draftTimeout().plusNanos(openNanos);
    boolean firstRound = true;
    while (!out.finished() && loop.room() >= 1 && draft != null) {
      int draftRoom = draftInfo.getMaxContext() - loop.length();
      int k =
          Math.min(
              Math.min(Math.min(adaptive.k(), out.remaining() - 1), loop.room() - 1),
              Math.min(
                  Math.min(draftRoom, loop.opLimit()), Math.max(1, draftInfo.getMaxTokensPerOp())));
      if (k >= 1) {
        round(k, adaptive, firstRound ? firstDraftWait : settings.draftTimeout());
        firstRound = false;
        continue;
      }
      if (draftRoom < 1) {
        dropDraft("the draft's context is full");
        continue;
      }
      // One token left to write, or the target's context almost full: the target alone.
      int[] tokens = loop.autoregressiveStep(1);
      draftPending = concat(draftPending, tokens);
    }
    if (!out.finished() && loop.room() >= 1) {
      loop.runAutoregressive();
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /** Draft proposes up to k tokens, target verifies them. */
  private void round(int k, AdaptiveK adaptive, Duration draftWait) {
    stats.currentK = k;
    long t0 = System.nanoTime();
    SessionResponse r;
    try {
      if (draftTruncateTo >= 0) {
        draft.send(
            SessionRequest.newBuilder()
                .setTruncate(Truncate.newBuilder().setLength(draftTruncateTo)));
      }
      if (draftPending.length > 0) {
        draft.send(TargetLoop.append(draftPending));
      }
      Propose.Builder propose =
          Propose.newBuilder().setK(k).setMinTokenProb(plan.minDraftTokenProb());
      if (!plan.greedy()) {
        propose.setOptions(ResultOptions.newBuilder().setFullDistribution(true));
      }
      r = draft.call(SessionRequest.newBuilder().setPropose(propose), draftWait, "propose");
    } catch (WorkerFailure e) {
      stats.draftNanos += System.nanoTime() - t0;
      if (io.grpc.Context.current().isCancelled()) {
        throw e; // the client is gone: nothing to fall back for
      }
      dropDraft(e.getMessage());
      return;
    }
    stats.draftNanos += System.nanoTime() - t0;
    stats.draftCalls++;
    Proposed p = r.getProposed();
    String garbage = DraftProposals.problem(p, k, loop.vocabSize(), !plan.greedy());
    if (garbage != null) {
      dropDraft("draft worker " + draft.address() + ": " + garbage);
      return;
    }
    int m = p.getTokenIdsCount();
    draftTruncateTo = -1;
    draftPending = new int[0];
    int draftLength = r.getLength(); // = committed length + m

    Verify.Builder verify = Verify.newBuilder();
    for (int i = 0; i < m; i++) {
      verify.addDraftTokenIds(p.getTokenIds(i));
      if (!plan.greedy()) {
        verify.addDraftDistributions(p.getPositions(i).getFull());
      }
    }
    Verified v = loop.verify(verify);
    int a = v.getAccepted();
    stats.round(m, a);
    if (plan.adaptive()) {
      adaptive.observe(k, m, a);
    }
    // The draft holds the sequence + all m drafts: roll back to the accepted ones, then give it
    // the correction/bonus token. Both happen lazily with its next Propose.
    if (a < m) {
      draftTruncateTo = draftLength - m + a;
    }
    draftPending = new int[] {v.getNextTokenId()};
    loop.emitVerified(p.getTokenIdsList(), v, Provenance.PROVENANCE_DRAFT_ACCEPTED);
  }

  /** Ends speculation: cancel the draft's stream and go on with the target alone. */
  private void dropDraft(String reason) {
    log.warn("request {}: continuing without the draft: {}", plan.label(), reason);
    stats.fallback = true;
    stats.fallbackReason = reason == null ? "draft failed" : reason;
    if (draft != null) {
      draft.cancel("router dropped the draft: " + stats.fallbackReason);
    }
    draft = null;
    draftPending = new int[0];
    draftTruncateTo = -1;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
