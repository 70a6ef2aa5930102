package io.draftmesh.router;

import io.draftmesh.proto.v1.Append;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.KvCompacted;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The target session and the committed sequence it holds, shared by the lossless strategies
 * (autoregressive, speculative, n-gram): the target is opened here, every token the target decided
 * is committed here, and the autoregressive tail that every strategy falls back to runs here.
 *
 * <p>The loop keeps {@code seq} (prompt and every token committed so far) and the tokens of it the
 * target session still lacks ({@code pending}), which go out as an Append in front of the next op:
 * the worker feeds them with its next forward pass, at no extra cost.
 */
final class TargetLoop {
  private final DecodingPlan plan;
  private final DecodingPlan.Settings settings;
  private final WorkerSession target;
  private final ModelInfo targetInfo;
  private final TokenStream out;
  private final RunStats stats;

  /** The target's vocabulary: drafted ids must fall inside it. */
  int vocabSize() {
    return targetInfo.getVocabSize();
  }

  private int[] seq; // prompt + committed tokens, [0, len)
  private int len;
  private int[] pending = new int[0]; // in seq, not yet appended to the target session
  private int arK = 1;

  TargetLoop(
      DecodingPlan plan,
      DecodingPlan.Settings settings,
      WorkerSession target,
      ModelInfo targetInfo,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.settings = settings;
    this.target = target;
    this.targetInfo = targetInfo;
    this.out = out;
    this.stats = stats;
    this.seq = Arrays.copyOf(plan.prompt(), Math.max(16, plan.prompt().length * 2));
    this.len = plan.prompt().length;
  }

  /** An Open of {@code prompt} with {@code sampling}, labelled with the request. */
  static SessionRequest.Builder open(DecodingPlan plan, int[] prompt, SamplingParams sampling) {
    return SessionRequest.newBuilder()
        .setOpen(
            Open.newBuilder()
                .addAllPromptIds(asList(prompt))
                .setSampling(sampling)
                .setSessionLabel(plan.label()));
  }

  /**
   * Sends the target's Open, runs {@code alongside} (e.g. the draft's Open, which then prefills at
   * the same time), awaits the target and commits its first token. Returns the nanoseconds the
   * target's prefill took, or -1 when that first token already ended the generation (the final
   * chunk is then sent).
   */
  long open(Runnable alongside) {
    long t0 = System.nanoTime();
    SessionRequest.Builder request = open(plan, plan.prompt(), plan.targetSampling());
    KvCompression compression = plan.compression();
    if (compression != null) {
      // SpecKV: the answer follows the prompt, is read for scoring, and the worker drops it.
      request.getOpenBuilder().addAllPromptIds(asList(plan.answer())).setCompression(compression);
    }
    CompletableFuture<SessionResponse> opened = target.send(request);
    alongside.run();
    SessionResponse r = target.await(opened, settings.targetTimeout(), "open");
    long openNanos = System.nanoTime() - t0;
    stats.targetNanos += openNanos;
    stats.targetCalls++;
    stats.targetOpened(request.getOpen().getPromptIdsCount(), r.getOpened());
    if (r.getOpened().hasCompaction()) {
      KvCompacted c = r.getOpened().getCompaction();
      stats.kvCompression =
          KvCompressionStats.newBuilder()
              .setMethod(c.getMethod())
              .setPromptTokens(c.getPromptTokens())
              .setBudget(compression.getBudget())
              .setKeptSlots(c.getKeptSlots())
              .setDroppedSlots(c.getDroppedSlots())
              .setKvBytesKept(c.getKvBytesKept())
              .setKvBytesDropped(c.getKvBytesDropped())
              .setDraftAnswerTokens(c.getAnswerTokens())
              .setRestored(c.getRestored())
              .setKvBytesRestored(c.getKvBytesRestored())
              .build();
    }
    Position next = r.getOpened().getNext();
    if (!commit(next.getTokenId(), Provenance.PROVENANCE_TARGET, next.getEntropyBits())) {
      out.finish(FinishReason.FINISH_REASON_LENGTH);
      return -1;
    }
    pending = new int[] {next.getTokenId()};
    out.flush();
    return openNanos;
  }

  /** Tokens the target can still add before its context is full. */
  int room() {
    return targetInfo.getMaxContext() - len;
  }

  /** The target's largest k per op. */
  int opLimit() {
    return Math.max(1, targetInfo.getMaxTokensPerOp());
  }

  int length() {
    return len;
  }

  /** The committed sequence; valid up to {@link #length()}, shared (do not modify). */
  int[] sequence() {
    return seq;
  }

  /**
   * Autoregressive steps until a stop condition or a full context; sends the final chunk.
   *
   * <p>One Propose stays in flight ahead of the one being read, sized as if the one being read
   * returns all its tokens: the worker starts it the moment the other finishes instead of a round
   * trip later (the worker runs a session's ops in order, so the sequence is the same). When a stop
   * ends the generation, the one ahead is wasted: the session then holds up to {@code arChunk}
   * tokens past the committed sequence, which nothing reads and its close frees.
   */
  void runAutoregressive() {
    runAutoregressive(Integer.MAX_VALUE);
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /**
   * {@link #runAutoregressive()} for at most {@code budget} tokens, without the final chunk; the
   * Proposes never ask past the budget, so unless a stop ended the generation the session then
   * holds exactly the committed sequence. Returns the tokens committed.
   */
  int runAutoregressive(int budget) {
    int start = len;
    CompletableFuture<SessionResponse> ahead = null;
    int aheadK = 0;
    while (!out.finished() && room() >= 1 && len - start < budget) {
      CompletableFuture<SessionResponse> now = ahead;
      int k = aheadK;
      if (now == null) {
        k = nextArK(Math.min(out.remaining(), budget - (len - start)), room());
        now = sendPropose(k, ResultOptions.getDefaultInstance());
      }
      int left = budget - (len - start) - k;
      int after = nextArK(Math.min(out.remaining() - k, left), room() - k);
      ahead = after >= 1 ? sendPropose(after, ResultOptions.getDefaultInstance()) : null;
      aheadK = after;
      readProposed(now);
    }
    return len - start;
  }

  /** The next autoregressive op's k with {@code remaining} tokens wanted and {@code room} left. */
  private int nextArK(int remaining, int room) {
    int k = Math.min(Math.min(arK, remaining), Math.min(room, opLimit()));
    arK = Math.min(arK * 2, settings.arChunk());
    return k;
  }

  /** Sends the pending tokens' Append and a Propose of k; the answer is read later. */
  private CompletableFuture<SessionResponse> sendPropose(int k, ResultOptions options) {
    if (pending.length > 0) {
      target.send(append(pending));
      pending = new int[0];
    }
    stats.targetCalls++;
    return target.send(
        SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k).setOptions(options)));
  }

  /**
   * Awaits a Propose sent by {@link #sendPropose}, commits its tokens up to a stop and returns the
   * worker's whole answer (the tokens past a stop included).
   */
  private Proposed readProposed(CompletableFuture<SessionResponse> sent) {
    long t0 = System.nanoTime();
    SessionResponse r = target.await(sent, settings.targetTimeout(), "propose");
    stats.targetNanos += System.nanoTime() - t0;
    Proposed p = r.getProposed();
    boolean more = true;
    for (int i = 0; i < p.getTokenIdsCount() && more; i++) {
      more =
          commit(
              p.getTokenIds(i), Provenance.PROVENANCE_TARGET, entropyAt(p.getPositionsList(), i));
    }
    out.flush();
    return p;
  }

  /**
   * The target generates up to k tokens on its own: plain decoding of the target. Returns the
   * tokens it generated (all of them, also those past a stop condition that were not committed).
   */
  int[] autoregressiveStep(int k) {
    Proposed p = autoregressiveStep(k, ResultOptions.getDefaultInstance());
    int[] tokens = new int[p.getTokenIdsCount()];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = p.getTokenIds(i);
    }
    return tokens;
  }

  /**
   * {@link #autoregressiveStep(int)} with what each position should report (a drafter that learns
   * from the target's candidates asks for its top-k); returns the worker's whole answer.
   */
  Proposed autoregressiveStep(int k, ResultOptions options) {
    return readProposed(sendPropose(k, options));
  }

  /** Sends {@code verify} to the target (after its pending tokens) and checks the answer. */
  Verified verify(Verify.Builder verify) {
    long t0 = System.nanoTime();
    if (pending.length > 0) {
      target.send(append(pending));
    }
    SessionResponse r =
        target.call(
            SessionRequest.newBuilder().setVerify(verify), settings.targetTimeout(), "verify");
    long waited = System.nanoTime() - t0;
    stats.targetNanos += waited;
    stats.verifyNanos += waited;
    stats.targetCalls++;
    // The target now holds seq + the accepted drafts + the correction/bonus token.
    pending = new int[0];
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

  /** Commits the accepted drafts (as {@code draftSource}) and the correction/bonus token. */
  void emitVerified(List<Integer> drafts, Verified v, Provenance draftSource) {
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
  static float entropyAt(List<Position> positions, int i) {
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

  /**
   * Appends of {@code ids} in pieces of at most {@code maxPerOp} (the worker's max_tokens_per_op);
   * Appends are free, so the worker still feeds them all in its next forward pass.
   */
  static List<SessionRequest.Builder> appends(int[] ids, int maxPerOp) {
    List<SessionRequest.Builder> ops = new java.util.ArrayList<>();
    int step = Math.max(1, maxPerOp);
    for (int i = 0; i < ids.length; i += step) {
      ops.add(append(Arrays.copyOfRange(ids, i, Math.min(ids.length, i + step))));
    }
    return ops;
  }

  static SessionRequest.Builder append(int[] ids) {
    return SessionRequest.newBuilder().setAppend(Append.newBuilder().addAllTokenIds(asList(ids)));
  }

  static List<Integer> asList(int[] a) {
    return Arrays.stream(a).boxed().toList();
  }
}
