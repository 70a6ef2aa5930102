package io.draftmesh.worker;

import io.draftmesh.engine.compaction.CompactedCache;
import io.draftmesh.engine.compaction.KvPolicies;
import io.draftmesh.engine.compaction.KvPolicy;
import io.draftmesh.engine.runtime.Compaction;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.Proposal;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.runtime.TreeVerification;
import io.draftmesh.engine.runtime.Verification;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.kvcache.client.CompressedEntry;
import io.draftmesh.kvcache.client.CompressedKeys;
import io.draftmesh.proto.v1.Appended;
import io.draftmesh.proto.v1.Closed;
import io.draftmesh.proto.v1.KvCompacted;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Opened;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Scored;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncated;
import io.draftmesh.proto.v1.Verified;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * One {@code Session} stream: one engine {@link Sequence}.
 *
 * <p>Requests are parsed and validated on arrival (on a gRPC thread) and then run strictly one
 * after the other: op n+1 is handed to the engine only when op n has completed, so the length and
 * KV blocks a response reports are exactly those after its op. Ops run on the engine's scheduler
 * thread; responses are sent in request order, those carrying distributions converted on {@code
 * responses} and the rest from the thread that completed the op, and every {@code
 * onNext/onError/onCompleted} is serialized under one lock.
 *
 * <p>Every way the stream ends (close op, half-close, cancel, deadline, error, server shutdown)
 * closes the sequence exactly once, which cancels its queued work and frees its KV blocks.
 *
 * <p>Flow control: at most {@link #WINDOW} requests are in flight (received but not yet answered);
 * the next is requested only after an answer went out and the transport is ready for more.
 */
final class SessionCall implements StreamObserver<SessionRequest> {
  /** Requests received but not yet answered. Pipelining beyond a few ops gains nothing. */
  static final int WINDOW = 8;

  /** The result of one op, with the sequence's size right after it. */
  private record Done(Object result, int length, int kvBlocks) {}

  private final InferenceEngine engine;
  private final KvCacheLink kvcache; // null without one
  private volatile int fetchedTokens; // prompt tokens the open fetched from the kvcache
  private final ServerCallStreamObserver<SessionResponse> out;
  private final Executor responses;
  private final String sessionId = UUID.randomUUID().toString();

  // Read and written on gRPC's serialized inbound callbacks only.
  private boolean opened;
  private boolean closeQueued;
  private CompletableFuture<Void> ran = CompletableFuture.completedFuture(null); // last op finished
  private CompletableFuture<Void> sent =
      CompletableFuture.completedFuture(null); // last answer sent

  // Guarded by lock.
  private final Object lock = new Object();
  private boolean finished; // the call is over: nothing more may be sent
  private boolean sequenceClosed;
  private volatile Sequence sequence; // written under lock
  private int owed; // inbound requests to ask for once the transport is ready

  /**
   * Where sessions' idle timers run and how long a session may go without a request while none of
   * its ops runs (zero: forever). A caller that vanished while its connection stays up (a hung
   * process, a bug that forgets a session) would otherwise hold the session's KV until the worker
   * restarts.
   */
  record IdleTimer(ScheduledExecutorService timers, Duration idle) {}

  private final IdleTimer idleTimer;
  private int pending; // guarded by lock: requests received but not yet answered
  private long lastActivity = System.nanoTime(); // guarded by lock: latest request or answer
  private ScheduledFuture<?> idleCheck; // guarded by lock

  private SessionCall(
      InferenceEngine engine,
      KvCacheLink kvcache,
      ServerCallStreamObserver<SessionResponse> out,
      Executor responses,
      IdleTimer idleTimer) {
    this.engine = engine;
    this.kvcache = kvcache;
    this.out = out;
    this.responses = responses;
    this.idleTimer = idleTimer;
  }

  /** Must run inside the service method: it configures the call before gRPC starts delivering. */
  static SessionCall start(
      InferenceEngine engine,
      KvCacheLink kvcache,
      ServerCallStreamObserver<SessionResponse> out,
      Executor responses,
      IdleTimer idleTimer) {
    SessionCall call = new SessionCall(engine, kvcache, out, responses, idleTimer);
    out.disableAutoRequest();
    out.setOnCancelHandler(call::cancelled);
    out.setOnReadyHandler(call::transportReady);
    out.request(WINDOW);
    if (!idleTimer.idle().isZero()) {
      synchronized (call.lock) {
        call.scheduleIdleCheck(idleTimer.idle().toNanos());
      }
    }
    return call;
  }

  /** Ends the call if it has been idle for the timeout, else looks again when it could be. */
  private void checkIdle() {
    long timeout = idleTimer.idle().toNanos();
    synchronized (lock) {
      if (finished) {
        return;
      }
      long quiet = System.nanoTime() - lastActivity;
      if (pending > 0 || quiet < timeout) {
        // Work in flight is not idleness: look again a whole timeout later.
        scheduleIdleCheck(pending > 0 ? timeout : timeout - quiet);
        return;
      }
    }
    fail(
        Status.DEADLINE_EXCEEDED
            .withDescription(
                "session: idle for "
                    + idleTimer.idle().toMillis()
                    + " ms (expected: a request or close within the worker's"
                    + " --session-idle-seconds)")
            .asRuntimeException());
  }

  // Called under lock.
  private void scheduleIdleCheck(long nanos) {
    try {
      idleCheck = idleTimer.timers().schedule(this::checkIdle, nanos, TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException shuttingDown) {
      // The server is closing; it cancels every call itself.
    }
  }

  /** An inbound observer for a call that was already refused. */
  static StreamObserver<SessionRequest> ignoring() {
    return new StreamObserver<>() {
      @Override
      public void onNext(SessionRequest value) {}

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {}
    };
  }

  // ---- inbound ----

  @Override
  public void onNext(SessionRequest request) {
    synchronized (lock) {
      pending++;
      lastActivity = System.nanoTime();
    }
    Function<Void, CompletableFuture<Done>> op;
    try {
      op = prepare(request);
    } catch (RuntimeException e) {
      op = ignored -> CompletableFuture.failedFuture(e);
    }
    if (op == null) {
      return; // the stream already failed
    }
    Function<Void, CompletableFuture<Done>> body = op;
    // A failed op fails every later one with the same error; only the first is reported.
    CompletableFuture<Done> done =
        ran.thenCompose(
            ignored ->
                isFinished()
                    ? CompletableFuture.failedFuture(Status.CANCELLED.asRuntimeException())
                    : body.apply(null));
    ran = done.thenApply(d -> null);
    BiFunction<Void, Outcome, Void> reply =
        (ignored, outcome) -> {
          try {
            answer(request, outcome);
          } catch (RuntimeException e) {
            fail(e);
          }
          return null;
        };
    sent =
        asksForDistributions(request)
            ? sent.thenCombineAsync(done.handle(Outcome::new), reply, responses)
            : sent.thenCombine(done.handle(Outcome::new), reply);
  }

  /**
   * Top-k answers up to this k are small (k ids and probabilities a position: a tree verify of 8
   * nodes with k = 8 answers 144 pairs) and are sent from the thread that completes the op, like
   * answers without distributions.
   */
  static final int INLINE_TOP_K = 64;

  /**
   * Whether the answer carries distributions (a vocabulary's worth of floats a position, or a top-k
   * over {@link #INLINE_TOP_K}): those are converted on {@code responses}, off the scheduler
   * thread. Any other answer is a few ids and counts, sent from the thread that completes the op:
   * the hand-off to {@code responses} cost ~0.1 ms a response (a Truncate's engine work 0.04 ms,
   * its answer out after 0.14 ms), and a speculative round waits for three answers in a row
   * (Truncate, Append, Propose). A token-recycling round's verify (top-8 per position and node)
   * waited 0.17 to 0.50 ms from the op's end to its answer going out through {@code responses},
   * 0.02 to 0.07 ms sent inline (docs/speculative.md, "Where a round's time goes").
   */
  static boolean asksForDistributions(SessionRequest r) {
    io.draftmesh.proto.v1.ResultOptions o =
        switch (r.getOpCase()) {
          case OPEN -> r.getOpen().getOptions();
          case SCORE -> r.getScore().getOptions();
          case PROPOSE -> r.getPropose().getOptions();
          case VERIFY -> r.getVerify().getOptions();
          default -> io.draftmesh.proto.v1.ResultOptions.getDefaultInstance();
        };
    return o.getFullDistribution()
        || o.getTopKProbs() > INLINE_TOP_K
        || o.getNodeTopK() > INLINE_TOP_K
        || o.getRawAttention();
  }

  /** The client half-closed: finish what it asked for, then close the sequence and the call. */
  @Override
  public void onCompleted() {
    sent.thenRunAsync(
        () -> {
          closeSequence();
          synchronized (lock) {
            if (!finished) {
              finished = true;
              out.onCompleted();
            }
          }
        },
        responses);
  }

  /** The client cancelled or the transport failed; gRPC also runs the cancel handler. */
  @Override
  public void onError(Throwable t) {
    cancelled();
  }

  private void cancelled() {
    synchronized (lock) {
      finished = true;
    }
    closeSequence();
  }

  private void transportReady() {
    int n;
    synchronized (lock) {
      n = owed;
      owed = 0;
    }
    if (n > 0) {
      out.request(n);
    }
  }

  // ---- ops ----

  /**
   * Parses and validates one request; the returned function runs it on the engine once every
   * earlier op has finished. Returns null when the call already failed.
   */
  private Function<Void, CompletableFuture<Done>> prepare(SessionRequest r) {
    if (!opened) {
      if (r.getOpCase() != SessionRequest.OpCase.OPEN) {
        fail(
            Statuses.precondition(
                "first request: "
                    + opName(r)
                    + " (expected: open, the first request of a session)"));
        return null;
      }
      opened = true;
      return prepareOpen(r.getOpen());
    }
    if (closeQueued) {
      throw Statuses.precondition(
          opName(r) + ": the session is closing (expected: no requests after close)");
    }
    int vocab = engine.vocabSize();
    switch (r.getOpCase()) {
      case OPEN:
        throw Statuses.precondition(
            "open: the session is already open (expected: open only as the first request)");
      case APPEND:
        {
          int[] ids = ProtoCodec.ids(r.getAppend().getTokenIdsList());
          return v -> withSize(sequence.append(ids));
        }
      case SCORE:
        {
          int[] ids = ProtoCodec.ids(r.getScore().getTokenIdsList());
          ResultOptions o = ProtoCodec.fromProto(r.getScore().getOptions(), vocab, "score.options");
          if (r.getScore().getTreeParentsCount() > 0) {
            int[] parents = ProtoCodec.ids(r.getScore().getTreeParentsList());
            return v -> withSize(sequence.scoreTree(ids, parents, o));
          }
          return v -> withSize(sequence.score(ids, o));
        }
      case PROPOSE:
        {
          int k = r.getPropose().getK();
          float minProb = r.getPropose().getMinTokenProb();
          ResultOptions o =
              ProtoCodec.fromProto(r.getPropose().getOptions(), vocab, "propose.options");
          return v -> withSize(sequence.propose(k, minProb, o));
        }
      case VERIFY:
        {
          int[] ids = ProtoCodec.ids(r.getVerify().getDraftTokenIdsList());
          List<ProbDistribution> given = r.getVerify().getDraftDistributionsList();
          List<ProbDist> dists = given.isEmpty() ? null : new ArrayList<>(given.size());
          for (int i = 0; i < given.size(); i++) {
            dists.add(
                ProtoCodec.fromProto(given.get(i), vocab, "verify.draft_distributions[" + i + "]"));
          }
          ResultOptions o =
              ProtoCodec.fromProto(r.getVerify().getOptions(), vocab, "verify.options");
          if (r.getVerify().getTreeParentsCount() > 0) {
            int[] parents = ProtoCodec.ids(r.getVerify().getTreeParentsList());
            return v -> withSize(sequence.verifyTree(ids, parents, dists, o));
          }
          return v -> withSize(sequence.verify(ids, dists, o));
        }
      case TRUNCATE:
        {
          int length = r.getTruncate().getLength();
          return v -> withSize(sequence.truncate(length));
        }
      case CLOSE:
        closeQueued = true;
        return v -> {
          int length = sequence.length();
          return closeSequence().thenApply(freed -> new Done(freed, length, 0));
        };
      case OP_NOT_SET:
      default:
        throw Statuses.invalid(
            "op: not set (expected: one of open, append, score, propose, verify, truncate, close)");
    }
  }

  private Function<Void, CompletableFuture<Done>> prepareOpen(Open open) {
    int[] prompt = ProtoCodec.ids(open.getPromptIdsList());
    var sampling = ProtoCodec.fromProto(open.getSampling());
    ResultOptions o = ProtoCodec.fromProto(open.getOptions(), engine.vocabSize(), "open.options");
    String label = open.getSessionLabel().isEmpty() ? sessionId : open.getSessionLabel();
    KvPolicy policy = null;
    int promptLength = prompt.length;
    KvCompression c = open.getCompression();
    if (open.hasCompression()) {
      int sinks = c.hasSinks() ? c.getSinks() : -1;
      if (c.hasSinks() && c.getSinks() < 0) {
        throw Statuses.invalid("open.compression.sinks: " + c.getSinks() + " (expected: >= 0)");
      }
      policy =
          KvPolicies.of(
              "open.compression.",
              c.getMethod(),
              c.getBudget(),
              c.getWindow(),
              c.getKernel(),
              sinks);
      int answer = c.getAnswerTokens();
      if (answer < 0 || answer >= prompt.length) {
        throw Statuses.invalid(
            "open.compression.answer_tokens: "
                + answer
                + " (expected: 0.."
                + (prompt.length - 1)
                + ", fewer than open.prompt_ids)");
      }
      if (answer > 0 && !c.getMethod().equals(KvPolicies.SPECKV)) {
        throw Statuses.invalid(
            "open.compression.answer_tokens: "
                + answer
                + " with method "
                + c.getMethod()
                + " (expected: 0; only speckv reads a draft answer)");
      }
      promptLength = prompt.length - answer;
      int prefix = c.getPrefixTokens();
      if (prefix != 0) {
        if (!CompressedKeys.queryAgnostic(c.getMethod())) {
          throw Statuses.invalid(
              "open.compression.prefix_tokens: "
                  + prefix
                  + " with method "
                  + c.getMethod()
                  + " (expected: 0; only the query-agnostic "
                  + String.join(", ", CompressedKeys.QUERY_AGNOSTIC)
                  + " compact a prefix)");
        }
        if (prefix < 0 || prefix >= prompt.length) {
          throw Statuses.invalid(
              "open.compression.prefix_tokens: "
                  + prefix
                  + " (expected: 0 for the whole prompt, or 1.."
                  + (prompt.length - 1)
                  + ", fewer than open.prompt_ids)");
        }
        promptLength = prefix;
      }
    }
    if (policy == null) {
      return v -> fetchAndOpen(prompt, sampling, label).thenCompose(s -> withSize(s.prefill(o)));
    }
    KvPolicy compaction = policy;
    int budget = c.getBudget();
    int kept = promptLength;
    if (c.getPrefixTokens() == 0) {
      // The whole prompt is compacted (stored when query-agnostic: a later open may name it as
      // its prefix).
      KvCacheLink.CompactedName name =
          KvCacheLink.CompactedName.of(java.util.Arrays.copyOf(prompt, kept), compaction, budget);
      return v ->
          fetchAndOpen(prompt, sampling, label)
              .thenCompose(s -> s.compact(compaction, budget, kept, o, storing(name)))
              .thenApply(r -> stored(name, r))
              .thenCompose(r -> withSize(CompletableFuture.completedFuture(r)));
    }
    int[] prefixIds = java.util.Arrays.copyOf(prompt, promptLength);
    int[] rest = java.util.Arrays.copyOfRange(prompt, promptLength, prompt.length);
    KvCacheLink.CompactedName name = KvCacheLink.CompactedName.of(prefixIds, compaction, budget);
    return v ->
        // A prefix within the budget is kept whole: never stored, so never looked up.
        (kvcache == null || prefixIds.length <= budget
                ? CompletableFuture.<CompactedCache>completedFuture(null)
                : kvcache.fetchCompacted(name))
            .thenCompose(
                restored ->
                    restored != null
                        ? openRestored(prompt, restored, compaction, sampling, label, o)
                        : compactPrefix(
                            prefixIds, rest, compaction, budget, name, sampling, o, label));
  }

  /** An open on a compacted prefix restored from kvcache-service: only the rest is prefilled. */
  private CompletableFuture<Done> openRestored(
      int[] prompt,
      CompactedCache cache,
      KvPolicy policy,
      io.draftmesh.engine.sampling.SamplingParams sampling,
      String label,
      ResultOptions o) {
    Sequence s;
    try {
      s = register(engine.openCompacted(prompt, cache, sampling, label));
    } catch (CancelledOpen e) {
      return CompletableFuture.failedFuture(Status.CANCELLED.asRuntimeException());
    }
    long bytesPerSlot =
        CompressedEntry.kvBytes(
            engine.pool().layers(), engine.pool().kvHeads(), engine.pool().headDim(), 1);
    int n = cache.promptTokens();
    Compaction restored =
        new Compaction(
            null, policy.name(), n, cache.kept(), n - cache.kept(), 0, 0, bytesPerSlot, null);
    return withSize(s.prefill(o).thenApply(next -> new PrefixOpen(restored, next, true)));
  }

  /**
   * An open that compacts its prompt's prefix and then feeds the rest whole on the compacted cache:
   * the compacted prefix is offered to kvcache-service for later opens with the same prefix.
   */
  private CompletableFuture<Done> compactPrefix(
      int[] prefix,
      int[] rest,
      KvPolicy policy,
      int budget,
      KvCacheLink.CompactedName name,
      io.draftmesh.engine.sampling.SamplingParams sampling,
      ResultOptions o,
      String label) {
    return fetchAndOpen(prefix, sampling, label)
        .thenCompose(
            s ->
                s.compact(policy, budget, prefix.length, ResultOptions.NONE, storing(name))
                    .thenApply(r -> stored(name, r))
                    .thenCompose(
                        r ->
                            s.appendPrompt(rest)
                                .thenCompose(x -> s.prefill(o))
                                .thenApply(next -> new PrefixOpen(r, next, false))))
        .thenCompose(r -> withSize(CompletableFuture.completedFuture(r)));
  }

  /** Whether a compaction of {@code name} should be copied out to be stored. */
  private boolean storing(KvCacheLink.CompactedName name) {
    return kvcache != null && CompressedKeys.queryAgnostic(name.method());
  }

  /** Offers the compacted cache (if one was copied out) to kvcache-service; returns {@code c}. */
  private Compaction stored(KvCacheLink.CompactedName name, Compaction c) {
    if (c.cache() != null) {
      kvcache.storeCompacted(name, c.cache());
    }
    return c;
  }

  /** What an open with a compacted prefix reports: the compaction, and the prediction after all. */
  private record PrefixOpen(Compaction compaction, Position next, boolean restored) {}

  /** Thrown by {@link #register} when the call was cancelled while the open was queued. */
  private static final class CancelledOpen extends RuntimeException {
    private static final long serialVersionUID = 1L;

    CancelledOpen() {
      super("cancelled", null, false, false);
    }
  }

  /**
   * With a kvcache, the prompt's blocks this worker lacks are fetched first (bounded by the link's
   * deadline, never failing), so the engine finds them in its prefix cache; then the sequence is
   * opened and becomes this call's.
   */
  private CompletableFuture<Sequence> fetchAndOpen(
      int[] prompt, io.draftmesh.engine.sampling.SamplingParams sampling, String label) {
    return (kvcache == null ? CompletableFuture.completedFuture(0) : kvcache.fetch(prompt))
        .thenCompose(
            fetched -> {
              Sequence s;
              try {
                s = register(engine.open(prompt, sampling, label));
              } catch (CancelledOpen e) {
                return CompletableFuture.failedFuture(Status.CANCELLED.asRuntimeException());
              }
              // Fetched blocks another session's open took first count as local hits.
              fetchedTokens = Math.min(fetched, s.cachedPromptTokens());
              return CompletableFuture.completedFuture(s);
            });
  }

  /** Makes {@code s} this call's sequence, or closes it when the call was cancelled meanwhile. */
  private Sequence register(Sequence s) {
    synchronized (lock) {
      if (sequenceClosed) {
        // Cancelled while the open was queued: give the session straight back.
        s.closeAsync();
        throw new CancelledOpen();
      }
      sequence = s;
    }
    return s;
  }

  /**
   * Pairs a result with the sequence's size. Nothing else of this session is queued in the engine
   * while the op runs, and the future's completion publishes the scheduler thread's writes, so this
   * is exact.
   */
  private <T> CompletableFuture<Done> withSize(CompletableFuture<T> result) {
    Sequence s = sequence;
    return result.thenApply(r -> new Done(r, s.length(), s.kvBlocks()));
  }

  /** Closes the sequence once; completes with the KV blocks freed (0 if there was none). */
  private CompletableFuture<Integer> closeSequence() {
    Sequence s;
    synchronized (lock) {
      if (idleCheck != null) {
        idleCheck.cancel(false); // every way the call ends comes through here
      }
      if (sequenceClosed) {
        return CompletableFuture.completedFuture(0);
      }
      sequenceClosed = true;
      s = sequence;
    }
    return s == null ? CompletableFuture.completedFuture(0) : s.closeAsync();
  }

  // ---- outbound ----

  private record Outcome(Done done, Throwable error) {}

  private void answer(SessionRequest request, Outcome o) {
    if (o.error() != null) {
      fail(o.error());
      return;
    }
    SessionResponse response;
    try {
      response = response(request, o.done());
    } catch (RuntimeException e) {
      fail(e);
      return;
    }
    boolean last = request.getOpCase() == SessionRequest.OpCase.CLOSE;
    synchronized (lock) {
      if (finished) {
        return;
      }
      pending--;
      lastActivity = System.nanoTime();
      out.onNext(response);
      if (last) {
        finished = true;
        out.onCompleted();
        return;
      }
      if (!out.isReady()) {
        owed++;
        return;
      }
    }
    out.request(1);
  }

  private void fail(Throwable t) {
    Status status = Statuses.toStatus(t);
    closeSequence();
    synchronized (lock) {
      if (finished) {
        return;
      }
      finished = true;
      try {
        out.onError(status.asRuntimeException());
      } catch (RuntimeException alreadyClosed) {
        // The call was cancelled under us; the cancel handler has freed the session.
      }
    }
  }

  private boolean isFinished() {
    synchronized (lock) {
      return finished;
    }
  }

  private SessionResponse response(SessionRequest request, Done d) {
    SessionResponse.Builder b =
        SessionResponse.newBuilder()
            .setRequestId(request.getRequestId())
            .setLength(d.length())
            .setKvBlocks(d.kvBlocks());
    switch (request.getOpCase()) {
      case OPEN -> {
        Opened.Builder opened =
            Opened.newBuilder()
                .setSessionId(sessionId)
                .setCachedPromptTokens(sequence.cachedPromptTokens())
                .setFetchedPromptTokens(fetchedTokens);
        if (d.result() instanceof PrefixOpen p) {
          if (p.restored()) {
            // The prefix's (compacted) KV came from the service: reused, not prefilled.
            int n = p.compaction().promptTokens();
            opened.setCachedPromptTokens(n).setFetchedPromptTokens(n);
          }
          opened
              .setNext(ProtoCodec.toProto(p.next()))
              .setCompaction(
                  compacted(p.compaction())
                      .setRestored(p.restored())
                      .setKvBytesRestored(p.restored() ? p.compaction().keptBytes() : 0));
        } else if (d.result() instanceof Compaction c) {
          opened.setNext(ProtoCodec.toProto(c.next())).setCompaction(compacted(c));
        } else {
          opened.setNext(ProtoCodec.toProto((Position) d.result()));
        }
        b.setOpened(opened);
      }
      case APPEND -> b.setAppended(Appended.getDefaultInstance());
      case SCORE -> {
        Scored.Builder s = Scored.newBuilder();
        for (Object p : (List<?>) d.result()) {
          s.addPositions(ProtoCodec.toProto((Position) p));
        }
        b.setScored(s);
      }
      case PROPOSE -> {
        Proposal p = (Proposal) d.result();
        Proposed.Builder s = Proposed.newBuilder();
        for (int t : p.tokens()) {
          s.addTokenIds(t);
        }
        for (Position pos : p.positions()) {
          s.addPositions(ProtoCodec.toProto(pos));
        }
        b.setProposed(s);
      }
      case VERIFY -> {
        if (d.result() instanceof TreeVerification t) {
          Verified.Builder s =
              Verified.newBuilder()
                  .setAccepted(t.accepted())
                  .setNextTokenId(t.nextToken())
                  .setBonus(t.bonus());
          for (int node : t.path()) {
            s.addAcceptedPath(node);
          }
          for (Position pos : t.positions()) {
            s.addPositions(ProtoCodec.toProto(pos));
          }
          for (ProbDist top : t.nodeTop()) {
            s.addNodeTop(ProtoCodec.toProto(top));
          }
          b.setVerified(s);
          break;
        }
        Verification v = (Verification) d.result();
        Verified.Builder s =
            Verified.newBuilder()
                .setAccepted(v.accepted())
                .setNextTokenId(v.nextToken())
                .setBonus(v.bonus());
        for (Position pos : v.positions()) {
          s.addPositions(ProtoCodec.toProto(pos));
        }
        b.setVerified(s);
      }
      case TRUNCATE -> b.setTruncated(Truncated.getDefaultInstance());
      case CLOSE -> b.setClosed(Closed.newBuilder().setKvBlocksFreed((Integer) d.result()));
      default -> throw new IllegalStateException("no response for " + request.getOpCase());
    }
    return b.build();
  }

  private static KvCompacted.Builder compacted(Compaction c) {
    return KvCompacted.newBuilder()
        .setMethod(c.method())
        .setPromptTokens(c.promptTokens())
        .setKeptSlots(c.keptSlots())
        .setDroppedSlots(c.droppedSlots())
        .setAnswerTokens(c.answerTokens())
        .setKvBytesKept(c.keptBytes())
        .setKvBytesDropped(c.droppedBytes())
        .setKvBlocksFreed(c.freedBlocks());
  }

  private static String opName(SessionRequest r) {
    return r.getOpCase() == SessionRequest.OpCase.OP_NOT_SET
        ? "no op"
        : r.getOpCase().name().toLowerCase(java.util.Locale.ROOT);
  }
}
