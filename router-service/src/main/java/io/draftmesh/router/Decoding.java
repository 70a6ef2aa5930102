package io.draftmesh.router;

import io.draftmesh.proto.v1.Append;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One request's decoding loop over its worker sessions: the strategies AUTOREGRESSIVE, SPECULATIVE
 * and NGRAM.
 *
 * <p>The router keeps the committed sequence ({@code seq}: prompt and every token accepted so far)
 * and, per session, what that session still lacks: tokens to Append (which the worker feeds with
 * its next forward pass, at no extra cost) and, for the draft, a length to Truncate back to. So:
 *
 * <ul>
 *   <li>Open on the target returns the first token (its prediction after the prompt), streamed at
 *       once; both sessions get it appended before their next op.
 *   <li>A speculative round pipelines [Truncate] [Append] Propose(k) to the draft, then [Append]
 *       Verify(draft tokens, draft distributions) to the target, which keeps the accepted tokens
 *       and the correction/bonus token. The draft is rolled back to the accepted prefix and given
 *       the correction/bonus token, lazily, with the next round's Propose.
 *   <li>An autoregressive step is [Append] Propose(k) on the target: the target generating on its
 *       own is plain decoding of the target; k grows 1, 2, 4 .. up to {@code arChunk} so the first
 *       tokens stream at once and later ones cost one round-trip per chunk.
 * </ul>
 *
 * <p>The draft only proposes: nothing is committed until the target verified it. So when the draft
 * fails or misses its per-round deadline, its stream is cancelled and decoding continues with
 * autoregressive steps from exactly {@code seq}: no token is lost or repeated.
 */
final class Decoding {
  private static final Logger log = LoggerFactory.getLogger(Decoding.class);

  /** What was asked, after validation and defaults. */
  record Plan(
      Strategy strategy,
      int[] prompt,
      SamplingParams targetSampling,
      SamplingParams draftSampling,
      int k,
      boolean adaptive,
      int maxK,
      float minDraftTokenProb,
      int ngramN,
      int ngramMinN,
      int ngramMaxMatch,
      String label) {
    boolean greedy() {
      return targetSampling.getTemperature() == 0f;
    }
  }

  /** Timeouts and sizes from the router's config. */
  record Settings(Duration targetTimeout, Duration draftTimeout, int arChunk) {}

  private final Plan plan;
  private final Settings settings;
  private final WorkerSession target;
  private final ModelInfo targetInfo;
  private WorkerSession draft; // null when none or dropped
  private final ModelInfo draftInfo;
  private final TokenStream out;
  private final RunStats stats;

  private int[] seq; // prompt + accepted tokens, [0, len)
  private int len;
  private int[] targetPending = new int[0]; // in seq, not yet appended to the target session
  private int[] draftPending = new int[0]; // in seq, not yet appended to the draft session
  private int draftTruncateTo = -1; // draft session length to roll back to before its next op
  private int arK = 1;

  Decoding(
      Plan plan,
      Settings settings,
      WorkerSession target,
      ModelInfo targetInfo,
      WorkerSession draft,
      ModelInfo draftInfo,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.settings = settings;
    this.target = target;
    this.targetInfo = targetInfo;
    this.draft = draft;
    this.draftInfo = draftInfo;
    this.out = out;
    this.stats = stats;
    this.seq = Arrays.copyOf(plan.prompt(), Math.max(16, plan.prompt().length * 2));
    this.len = plan.prompt().length;
  }

  /**
   * Runs to a stop condition and streams the final chunk. Target failures propagate as {@link
   * WorkerFailure}; draft failures only end speculation.
   */
  void run() {
    long t0 = System.nanoTime();
    CompletableFuture<SessionResponse> targetOpen = target.send(open(plan.targetSampling()));
    if (draft != null) {
      draft.send(open(plan.draftSampling())); // prefills alongside the target; awaited lazily
    }
    SessionResponse opened = target.await(targetOpen, settings.targetTimeout(), "open");
    long openNanos = System.nanoTime() - t0;
    stats.targetNanos += openNanos;
    stats.targetCalls++;
    int first = opened.getOpened().getNext().getTokenId();
    if (!commit(
        first, Provenance.PROVENANCE_TARGET, opened.getOpened().getNext().getEntropyBits())) {
      out.finish(FinishReason.FINISH_REASON_LENGTH);
      return;
    }
    targetPending = new int[] {first};
    draftPending = new int[] {first};
    out.flush();

    AdaptiveK adaptive =
        new AdaptiveK(plan.k(), plan.adaptive() ? plan.maxK() : Math.max(1, plan.k()));
    NgramDrafter ngram =
        plan.strategy() == Strategy.STRATEGY_NGRAM
            ? new NgramDrafter(plan.ngramN(), plan.ngramMinN())
            : null;
    // The draft's prefill ran alongside the target's; its first round may wait for both.
    Duration firstDraftWait = settings.draftTimeout().plusNanos(openNanos);
    boolean firstRound = true;
    while (!out.finished()) {
      int targetRoom = targetInfo.getMaxContext() - len; // tokens the target can still add
      if (targetRoom < 1) {
        break; // context full: FINISH_REASON_LENGTH
      }
      int remaining = out.remaining();
      int targetOp = Math.max(1, targetInfo.getMaxTokensPerOp());
      if (draft != null) {
        int draftRoom = draftInfo.getMaxContext() - len;
        int k =
            min(
                adaptive.k(),
                remaining - 1,
                targetRoom - 1,
                draftRoom,
                targetOp,
                Math.max(1, draftInfo.getMaxTokensPerOp()));
        if (k >= 1) {
          speculativeRound(k, adaptive, firstRound ? firstDraftWait : settings.draftTimeout());
          firstRound = false;
          continue;
        }
        if (draftRoom < 1) {
          dropDraft("the draft's context is full");
        }
      } else if (ngram != null) {
        int k = min(plan.ngramMaxMatch(), remaining - 1, targetRoom - 1, targetOp);
        int[] proposal = ngram.propose(seq, len, k);
        if (proposal.length > 0) {
          ngramRound(proposal);
          continue;
        }
        autoregressiveStep(1);
        continue;
      }
      int k = min(arK, remaining, targetRoom, targetOp);
      autoregressiveStep(k);
      arK = Math.min(arK * 2, settings.arChunk());
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  private SessionRequest.Builder open(SamplingParams sampling) {
    return SessionRequest.newBuilder()
        .setOpen(
            Open.newBuilder()
                .addAllPromptIds(asList(plan.prompt()))
                .setSampling(sampling)
                .setSessionLabel(plan.label()));
  }

  /** The target generates k tokens on its own. */
  private void autoregressiveStep(int k) {
    long t0 = System.nanoTime();
    if (targetPending.length > 0) {
      target.send(append(targetPending));
    }
    SessionResponse r =
        target.call(
            SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k)),
            settings.targetTimeout(),
            "propose");
    stats.targetNanos += System.nanoTime() - t0;
    stats.targetCalls++;
    targetPending = new int[0];
    Proposed p = r.getProposed();
    int[] tokens = new int[p.getTokenIdsCount()];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = p.getTokenIds(i);
      if (!commit(tokens[i], Provenance.PROVENANCE_TARGET, entropyAt(p.getPositionsList(), i))) {
        break;
      }
    }
    if (draft != null) {
      draftPending = concat(draftPending, tokens);
    }
    out.flush();
  }

  /** Draft proposes up to k tokens, target verifies them. */
  private void speculativeRound(int k, AdaptiveK adaptive, Duration draftWait) {
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
        draft.send(append(draftPending));
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
    int m = p.getTokenIdsCount();
    if (m < 1 || (!plan.greedy() && !hasDistributions(p))) {
      dropDraft("the draft's proposal came without tokens or distributions");
      return;
    }
    draftTruncateTo = -1;
    draftPending = new int[0];
    int draftLength = r.getLength(); // = len + m

    Verify.Builder verify = Verify.newBuilder();
    for (int i = 0; i < m; i++) {
      verify.addDraftTokenIds(p.getTokenIds(i));
      if (!plan.greedy()) {
        verify.addDraftDistributions(p.getPositions(i).getFull());
      }
    }
    Verified v = verifyOnTarget(verify);
    int a = v.getAccepted();
    stats.round(m, a);
    if (plan.adaptive()) {
      adaptive.observe(k, m, a);
    }
    // The draft holds seq + all m drafts: roll back to the accepted ones, then give it the
    // correction/bonus token. Both happen lazily with its next Propose.
    if (a < m) {
      draftTruncateTo = draftLength - m + a;
    }
    draftPending = new int[] {v.getNextTokenId()};
    emitVerified(p.getTokenIdsList(), v, Provenance.PROVENANCE_DRAFT_ACCEPTED);
  }

  /** The router's n-gram proposal, verified by the target. */
  private void ngramRound(int[] proposal) {
    Verify.Builder verify = Verify.newBuilder();
    for (int x : proposal) {
      verify.addDraftTokenIds(x);
      if (!plan.greedy()) {
        verify.addDraftDistributions(oneHot(x)); // a deterministic draft: q = one-hot
      }
    }
    stats.currentK = proposal.length;
    Verified v = verifyOnTarget(verify);
    stats.round(proposal.length, v.getAccepted());
    emitVerified(asList(proposal), v, Provenance.PROVENANCE_NGRAM_ACCEPTED);
  }

  private Verified verifyOnTarget(Verify.Builder verify) {
    long t0 = System.nanoTime();
    if (targetPending.length > 0) {
      target.send(append(targetPending));
    }
    SessionResponse r =
        target.call(
            SessionRequest.newBuilder().setVerify(verify), settings.targetTimeout(), "verify");
    stats.targetNanos += System.nanoTime() - t0;
    stats.targetCalls++;
    // The target now holds seq + the accepted drafts + the correction/bonus token.
    targetPending = new int[0];
    Verified v = r.getVerified();
    if (v.getAccepted() < 0 || v.getAccepted() > verify.getDraftTokenIdsCount()) {
      throw new WorkerFailure(
          target,
          io.grpc.Status.INTERNAL.withDescription(
              "target worker "
                  + target.address()
                  + " accepted "
                  + v.getAccepted()
                  + " of "
                  + verify.getDraftTokenIdsCount()
                  + " draft tokens"));
    }
    return v;
  }

  private void emitVerified(java.util.List<Integer> drafts, Verified v, Provenance draftSource) {
    int accepted = v.getAccepted();
    boolean more = true;
    for (int i = 0; i < accepted && more; i++) {
      more = commit(drafts.get(i), draftSource, entropyAt(v.getPositionsList(), i));
    }
    if (more) {
      commit(
          v.getNextTokenId(),
          Provenance.PROVENANCE_TARGET,
          entropyAt(v.getPositionsList(), accepted));
    }
    out.flush();
  }

  /** The entropy the worker reported for position i, or NaN if it sent none. */
  private static float entropyAt(java.util.List<Position> positions, int i) {
    return i < positions.size() ? positions.get(i).getEntropyBits() : Float.NaN;
  }

  /** Adds a token to the sequence and offers it to the output; false once generation is over. */
  private boolean commit(int token, Provenance source, float entropyBits) {
    if (!out.accept(token, source, entropyBits)) {
      return false;
    }
    if (len == seq.length) {
      seq = Arrays.copyOf(seq, len * 2);
    }
    seq[len++] = token;
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
  }

  private static boolean hasDistributions(Proposed p) {
    if (p.getPositionsCount() != p.getTokenIdsCount()) {
      return false;
    }
    for (Position pos : p.getPositionsList()) {
      if (!pos.hasFull()) {
        return false;
      }
    }
    return true;
  }

  private static SessionRequest.Builder append(int[] ids) {
    return SessionRequest.newBuilder().setAppend(Append.newBuilder().addAllTokenIds(asList(ids)));
  }

  /** A sparse distribution with all mass on {@code token}. */
  static ProbDistribution oneHot(int token) {
    ByteBuffer id = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, token);
    ByteBuffer p = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, 1f);
    return ProbDistribution.newBuilder()
        .setTokenIds(com.google.protobuf.ByteString.copyFrom(id.array()))
        .setProbs(com.google.protobuf.ByteString.copyFrom(p.array()))
        .build();
  }

  private static java.util.List<Integer> asList(int[] a) {
    return Arrays.stream(a).boxed().toList();
  }

  private static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }

  private static int min(int first, int... rest) {
    int m = first;
    for (int v : rest) {
      m = Math.min(m, v);
    }
    return m;
  }
}
