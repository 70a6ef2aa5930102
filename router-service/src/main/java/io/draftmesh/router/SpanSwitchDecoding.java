package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * STRATEGY_ENTROPY_SWITCH and STRATEGY_LEAD_IN: a small model (the draft pool) and a large one (the
 * target pool) of one tokenizer take turns writing the answer; a {@link SpanRule} ({@link
 * EntropySwitchRule}, {@link LeadInRule}) says who writes each token.
 *
 * <p>Both sessions prefill the prompt at the same time. The writer proposes as many tokens as the
 * rule guarantees it keeps ({@link SpanRule#safeTokens}; the small model up to {@link
 * #SMALL_LOOKAHEAD} more, as its surplus is cheap); tokens are committed one by one and the rule
 * decides after each; at a switch the writer's surplus is truncated and the incoming model ingests
 * everything the other wrote since its last turn in one Append, fed with its first Propose: one
 * batched catch-up pass.
 *
 * <p>The small model is a helper: when it fails or misses its deadline, it is dropped and the large
 * model writes the rest from exactly the committed tokens (stats say so).
 */
final class SpanSwitchDecoding implements DecodingStrategy {
  private static final Logger log = LoggerFactory.getLogger(SpanSwitchDecoding.class);
  static final int SMALL_LOOKAHEAD = 4;

  private final DecodingPlan plan;
  private final DecodingPlan.Settings settings;
  private final SpanRule rule;
  private final Side large;
  private Side small; // null once dropped
  private final BpeTokenizer tokenizer; // null: rules see "" as token text
  private final TokenStream out;
  private final RunStats stats;
  private int arK = 1; // the large model's chunk when alone

  /** One model's session and what it lacks of the committed sequence. */
  private static final class Side {
    final WorkerSession session;
    final ModelInfo info;
    final Provenance provenance;
    int length; // tokens the session holds, surplus included
    int truncateTo = -1; // roll back to this before the next op
    int[] pending = new int[0]; // committed by the other model, not yet appended
    Duration nextWait;

    Side(WorkerSession session, ModelInfo info, Provenance provenance, int promptLength) {
      this.session = session;
      this.info = info;
      this.provenance = provenance;
      this.length = promptLength;
    }
  }

  SpanSwitchDecoding(
      DecodingPlan plan,
      DecodingPlan.Settings settings,
      SpanRule rule,
      WorkerSession largeSession,
      ModelInfo largeInfo,
      WorkerSession smallSession,
      ModelInfo smallInfo,
      BpeTokenizer tokenizer,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.settings = settings;
    this.rule = rule;
    int p = plan.prompt().length;
    this.large = new Side(largeSession, largeInfo, Provenance.PROVENANCE_LARGE_SPAN, p);
    this.small =
        smallSession == null
            ? null
            : new Side(smallSession, smallInfo, Provenance.PROVENANCE_SMALL_SPAN, p);
    this.tokenizer = tokenizer;
    this.out = out;
    this.stats = stats;
  }

  @Override
  public void run() {
    long t0 = System.nanoTime();
    var largeOpen = large.session.send(TargetLoop.open(plan, plan.prompt(), plan.targetSampling()));
    if (small != null) {
      small.session.send(TargetLoop.open(plan, plan.prompt(), plan.draftSampling()));
    }
    SessionResponse opened = large.session.await(largeOpen, settings.targetTimeout(), "open");
    long openNanos = System.nanoTime() - t0;
    stats.targetNanos += openNanos;
    stats.targetCalls++;
    stats.targetOpened(plan.prompt().length, opened.getOpened());
    large.nextWait = settings.targetTimeout();
    if (small != null) {
      // Its prefill ran alongside the large model's; the first Propose may wait for both.
      small.nextWait = settings.draftTimeout().plusNanos(openNanos);
    }
    Side writer = null;
    while (!out.finished()) {
      Side next = small != null && !rule.large() ? small : large;
      if (next != writer) {
        out.switchTo(next.provenance, rule.signal());
        writer = next;
      }
      int room = writer.info.getMaxContext() - committedLength(writer);
      if (room < 1) {
        if (writer == small) {
          dropSmall("the small model's context is full");
          continue;
        }
        break; // the large model's context is full: FINISH_REASON_LENGTH
      }
      int k = writer == small ? rule.safeTokens() + SMALL_LOOKAHEAD : rule.safeTokens();
      if (small == null) {
        k = arK; // the large model alone: growing chunks, as autoregressive decoding
        arK = Math.min(arK * 2, settings.arChunk());
      }
      k = Math.min(Math.min(k, out.remaining()), Math.min(room, opLimit(writer)));
      if (!step(writer, k)) {
        writer = null; // the small model was dropped
      }
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /**
   * The writer proposes k tokens; they are committed until the rule switches or the output ends.
   * False when the writer (the small model) failed and was dropped, nothing committed.
   */
  private boolean step(Side writer, int k) {
    long t0 = System.nanoTime();
    SessionResponse r;
    try {
      if (writer.truncateTo >= 0) {
        writer.session.send(
            SessionRequest.newBuilder()
                .setTruncate(Truncate.newBuilder().setLength(writer.truncateTo)));
        writer.length = writer.truncateTo;
        writer.truncateTo = -1;
      }
      if (writer.pending.length > 0) {
        // The catch-up: fed in one pass with the Propose below.
        for (SessionRequest.Builder op : TargetLoop.appends(writer.pending, opLimit(writer))) {
          writer.session.send(op);
        }
        writer.length += writer.pending.length;
        writer.pending = new int[0];
      }
      r =
          writer.session.call(
              SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k)),
              writer.nextWait,
              "propose");
    } catch (WorkerFailure e) {
      if (writer != small || e.callerGone()) {
        throw e;
      }
      stats.draftNanos += System.nanoTime() - t0;
      log.warn("request {}: small model: {}", plan.label(), e.getMessage());
      dropSmall(NudgingDecoding.reason("small model", writer.info, e));
      return false;
    }
    long nanos = System.nanoTime() - t0;
    if (writer == small) {
      stats.draftNanos += nanos;
      stats.draftCalls++;
      writer.nextWait = settings.draftTimeout();
    } else {
      stats.targetNanos += nanos;
      stats.targetCalls++;
    }
    Proposed p = r.getProposed();
    int m = p.getTokenIdsCount();
    writer.length = r.getLength();
    Side other = writer == small ? large : small;
    int kept = 0;
    boolean more = true;
    while (kept < m && more) {
      int token = p.getTokenIds(kept);
      Position pos = kept < p.getPositionsCount() ? p.getPositions(kept) : null;
      float h = pos == null ? Float.NaN : pos.getEntropyBits();
      more = out.accept(token, writer.provenance, h);
      kept++;
      if (more && rule.observe(text(token), h)) {
        break;
      }
    }
    if (kept < m) {
      writer.truncateTo = writer.length - (m - kept);
    }
    if (other != null) {
      int[] ids = new int[kept];
      for (int i = 0; i < kept; i++) {
        ids[i] = p.getTokenIds(i);
      }
      other.pending = concat(other.pending, ids);
    }
    out.flush();
    return true;
  }

  /** The committed sequence's length as {@code side} will hold it after its pending ops. */
  private int committedLength(Side side) {
    int held = side.truncateTo >= 0 ? side.truncateTo : side.length;
    return held + side.pending.length;
  }

  private static int opLimit(Side side) {
    return Math.max(1, side.info.getMaxTokensPerOp());
  }

  private String text(int token) {
    if (tokenizer == null || tokenizer.isSpecial(token)) {
      return "";
    }
    return new String(tokenizer.tokenBytes(token), StandardCharsets.UTF_8);
  }

  /** Ends the collaboration: cancel the small model's stream, the large one writes the rest. */
  private void dropSmall(String reason) {
    log.warn("request {}: continuing without the small model: {}", plan.label(), reason);
    stats.fallback = true;
    stats.fallbackReason = reason == null ? "small model failed" : reason;
    if (small != null) {
      small.session.cancel("router dropped the small model: " + stats.fallbackReason);
    }
    small = null;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] r = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, r, a.length, b.length);
    return r;
  }
}
