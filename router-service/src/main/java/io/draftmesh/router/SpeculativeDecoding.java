package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
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
 * <p>While the target verifies, the draft already proposes the next round as if all its drafts are
 * accepted (when the request sets {@code draft_ahead}): when they were and the draft's first token
 * ahead equals the target's bonus token, the next round verifies the rest at once, without a draft
 * round trip; otherwise the draft is rolled back as after any rejection and asked again. On
 * separate machines the draft's work is free; on shared cores it competes with the verify
 * (docs/speculative.md has the measurements).
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

  /** Chunks of {@code ar_chunk} tokens in one plain stretch of an adaptive request. */
  static final int PLAIN_CHUNKS = 2;

  private int[] draftPending = new int[0]; // committed, not yet appended to the draft session
  private int draftTruncateTo = -1; // draft session length to roll back to before its next op
  private Prefetched prefetched; // the next round's drafts, brought by a Propose ahead; or null

  /**
   * Drafts a Propose ahead brought, already in the draft session.
   *
   * @param k the tokens the round asked for
   * @param draftLength the draft session's length with them in it
   */
  private record Prefetched(Proposed drafts, int k, int draftLength) {}

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
    SpeculationGate gate = plan.adaptive() ? new SpeculationGate() : null;
    while (!out.finished() && loop.room() >= 1 && draft != null) {
      int draftRoom = draftInfo.getMaxContext() - loop.length();
      int k =
          Math.min(
              Math.min(Math.min(adaptive.k(), out.remaining() - 1), loop.room() - 1),
              Math.min(
                  Math.min(draftRoom, loop.opLimit()), Math.max(1, draftInfo.getMaxTokensPerOp())));
      if (k >= 1 && gate != null && prefetched == null && !gate.speculateNext()) {
        plainStretch(gate);
        continue;
      }
      if (k >= 1) {
        if (draftPending.length > 1 && !catchUpDraft()) {
          continue; // the draft was dropped
        }
        long t0 = System.nanoTime();
        int before = loop.length();
        round(k, adaptive, firstRound ? firstDraftWait : settings.draftTimeout());
        firstRound = false;
        if (gate != null) {
          gate.speculated(System.nanoTime() - t0, loop.length() - before);
        }
        continue;
      }
      if (prefetched != null) {
        // Not reached while the limits hold (a Propose ahead asks only for a round that can run),
        // but a draft holding tokens the committed sequence lacks must be rolled back.
        draftTruncateTo = loop.length();
        prefetched = null;
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

  /**
   * Adaptive requests, when speculation does not pay ({@link SpeculationGate}): the target writes
   * {@link #PLAIN_CHUNKS} chunks alone, pipelined as in plain decoding. The draft idles meanwhile
   * (on shared cores its work would slow the target); it reads the tokens before the next round.
   */
  private void plainStretch(SpeculationGate gate) {
    long t0 = System.nanoTime();
    int before = loop.length();
    int written = loop.runAutoregressive(PLAIN_CHUNKS * settings.arChunk());
    stats.plainTokens += written;
    gate.plain(System.nanoTime() - t0, written);
    draftPending =
        concat(draftPending, Arrays.copyOfRange(loop.sequence(), before, before + written));
  }

  /**
   * Feeds the draft what plain stretches wrote (a Score, awaited), so the round after them is
   * measured without the draft's catch-up in it. False if the draft failed and was dropped.
   */
  private boolean catchUpDraft() {
    sendTruncate();
    int step = Math.max(1, draftInfo.getMaxTokensPerOp());
    CompletableFuture<SessionResponse> last = null;
    for (int i = 0; i < draftPending.length; i += step) {
      Score.Builder score = Score.newBuilder();
      for (int j = i; j < Math.min(draftPending.length, i + step); j++) {
        score.addTokenIds(draftPending[j]);
      }
      last = draft.send(SessionRequest.newBuilder().setScore(score));
    }
    draftPending = new int[0];
    return last == null || awaitDraft(last, settings.draftTimeout(), "score") != null;
  }

  /** Sends the draft its pending rollback, if it has one. */
  private void sendTruncate() {
    if (draftTruncateTo >= 0) {
      draft.send(
          SessionRequest.newBuilder()
              .setTruncate(Truncate.newBuilder().setLength(draftTruncateTo)));
      draftTruncateTo = -1;
    }
  }

  /**
   * The draft's answer to {@code sent}, its wait counted; null if the draft failed or missed {@code
   * wait}, which drops it. A failure that only says the client left is rethrown: nothing to fall
   * back for.
   */
  private SessionResponse awaitDraft(
      CompletableFuture<SessionResponse> sent, Duration wait, String op) {
    long t0 = System.nanoTime();
    try {
      return draft.await(sent, wait, op);
    } catch (WorkerFailure e) {
      if (e.callerGone()) {
        throw e;
      }
      dropDraft(e.getMessage());
      return null;
    } finally {
      stats.draftNanos += System.nanoTime() - t0;
    }
  }

  /** Whether {@code p}, asked for k tokens, can go to the target; drops the draft if not. */
  private boolean verifiable(Proposed p, int k) {
    String garbage = DraftProposals.problem(p, k, loop.vocabSize(), !plan.greedy());
    if (garbage != null) {
      dropDraft("draft worker " + draft.address() + ": " + garbage);
      return false;
    }
    return true;
  }

  /**
   * Draft proposes up to k tokens (or the round uses the tokens a draft-ahead Propose already
   * brought), target verifies them.
   */
  private void round(int k, AdaptiveK adaptive, Duration draftWait) {
    Proposed p;
    int draftLength; // the draft session's length with this round's drafts in it
    if (prefetched != null) {
      p = prefetched.drafts();
      k = prefetched.k();
      draftLength = prefetched.draftLength();
      prefetched = null;
    } else {
      SessionResponse r = propose(k, draftWait);
      if (r == null) {
        return; // the draft was dropped
      }
      p = r.getProposed();
      draftLength = r.getLength();
    }
    stats.currentK = k;
    int m = p.getTokenIdsCount();
    draftTruncateTo = -1;
    draftPending = new int[0];

    Verify.Builder verify = Verify.newBuilder();
    for (int i = 0; i < m; i++) {
      verify.addDraftTokenIds(p.getTokenIds(i));
      if (!plan.greedy()) {
        verify.addDraftDistributions(p.getPositions(i).getFull());
      }
    }
    Ahead ahead = sendAhead(k, m, draftLength, adaptive);
    Verified v = loop.verify(verify);
    int a = v.getAccepted();
    stats.round(m, a);
    if (plan.adaptive()) {
      adaptive.observe(k, m, a);
    }
    boolean taken = ahead != null && a == m && take(ahead, v.getNextTokenId(), draftLength);
    if (!taken && draft != null) {
      // The draft holds the sequence + all m drafts (+ what a Propose ahead added): roll back to
      // the accepted ones, then give it the correction/bonus token. Both happen lazily with its
      // next Propose.
      if (a < m || ahead != null) {
        draftTruncateTo = draftLength - m + a;
      }
      draftPending = new int[] {v.getNextTokenId()};
    }
    loop.emitVerified(p.getTokenIdsList(), v, Provenance.PROVENANCE_DRAFT_ACCEPTED);
  }

  /**
   * Sends [Truncate] [Append] Propose(k) to the draft; null if the draft failed and was dropped.
   */
  private SessionResponse propose(int k, Duration draftWait) {
    sendTruncate();
    if (draftPending.length > 0) {
      draft.send(TargetLoop.append(draftPending));
    }
    SessionResponse r = awaitDraft(draft.send(proposeRequest(k)), draftWait, "propose");
    if (r == null) {
      return null;
    }
    stats.draftCalls++;
    return verifiable(r.getProposed(), k) ? r : null;
  }

  private SessionRequest.Builder proposeRequest(int k) {
    Propose.Builder propose =
        Propose.newBuilder().setK(k).setMinTokenProb(plan.minDraftTokenProb());
    if (!plan.greedy()) {
      propose.setOptions(ResultOptions.newBuilder().setFullDistribution(true));
    }
    return SessionRequest.newBuilder().setPropose(propose);
  }

  /**
   * A Propose sent while the target verifies: it continues the draft from this round's m drafts.
   *
   * @param k tokens asked for: the first guesses the target's bonus token, the rest are the next
   *     round's drafts
   */
  private record Ahead(CompletableFuture<SessionResponse> response, int k) {}

  /**
   * Asks the draft for the next round now, as if the target accepts all m drafts: what the next
   * round would ask for then, plus one token for the bonus position. Null when that round would not
   * run (no room, no tokens left) or draft-ahead is off.
   */
  private Ahead sendAhead(int k, int m, int draftLength, AdaptiveK adaptive) {
    if (!plan.draftAhead()) {
      return null;
    }
    int emitted = m + 1; // the drafts and the bonus token
    int next =
        Math.min(
            Math.min(adaptive.ifAllAccepted(k, m), out.remaining() - emitted - 1),
            Math.min(loop.room() - emitted - 1, loop.opLimit()));
    int kAhead =
        Math.min(
            Math.min(next + 1, draftInfo.getMaxContext() - draftLength),
            Math.max(1, draftInfo.getMaxTokensPerOp()));
    if (kAhead < 2) {
      return null; // no next round's draft beyond the bonus guess
    }
    stats.draftCalls++;
    stats.draftAheadCalls++;
    return new Ahead(draft.send(proposeRequest(kAhead)), kAhead);
  }

  /**
   * After a round the target accepted in full: if the draft's first token ahead is the target's
   * bonus token, the rest of the ahead proposal is the next round's draft, already in the draft
   * session (returns true). Lossless as any draft: each of those tokens was drawn from the draft
   * given exactly the committed sequence, and the target verifies them.
   */
  private boolean take(Ahead ahead, int bonus, int draftLength) {
    SessionResponse r = awaitDraft(ahead.response(), settings.draftTimeout(), "propose");
    if (r == null || !verifiable(r.getProposed(), ahead.k())) {
      return false;
    }
    Proposed p = r.getProposed();
    if (p.getTokenIds(0) != bonus) {
      return false;
    }
    stats.draftAheadHits++;
    int m = p.getTokenIdsCount();
    if (m > 1) {
      Proposed.Builder rest =
          Proposed.newBuilder().addAllTokenIds(p.getTokenIdsList().subList(1, m));
      if (p.getPositionsCount() == m) {
        rest.addAllPositions(p.getPositionsList().subList(1, m));
      }
      prefetched = new Prefetched(rest.build(), ahead.k() - 1, draftLength + m);
    }
    return true;
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
    prefetched = null;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
