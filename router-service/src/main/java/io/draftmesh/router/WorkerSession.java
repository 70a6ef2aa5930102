package io.draftmesh.router;

import io.draftmesh.proto.v1.Close;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A blocking-style client for one {@code ModelWorker.Session} stream (= one sequence on one
 * worker).
 *
 * <p>{@link #send} writes a request with a fresh {@code request_id} and returns the future of its
 * response, so several ops can be pipelined in one write burst (e.g. Truncate + Append + Propose)
 * and only the last awaited; {@link #await} waits with a per-call deadline. The worker ends the
 * stream on any error, which fails every outstanding future with that status.
 *
 * <p>The stream is started in the caller's gRPC {@code Context}, so the client request's deadline
 * and cancellation reach the worker on their own. {@link #close} ends the sequence politely; {@link
 * #cancel} tears the stream down (the worker frees the KV either way).
 */
final class WorkerSession {
  private final String role; // "target" or "draft", for messages
  private final String address;
  private final Map<Long, CompletableFuture<SessionResponse>> inFlight = new ConcurrentHashMap<>();
  private final ClientCallStreamObserver<SessionRequest> requests;
  private long nextId = 1; // guarded by this
  private boolean ended; // guarded by this: half-closed or cancelled by us
  private volatile boolean cancelled; // by us: the client left, or the strategy dropped this worker
  private volatile Status failure; // set when the stream ended

  private WorkerSession(Channel channel, String role, String address) {
    this.role = role;
    this.address = address;
    Observer observer = new Observer();
    ModelWorkerGrpc.newStub(channel).session(observer);
    this.requests = observer.requests;
  }

  /** Starts a Session stream; nothing is sent until the first {@link #send}. */
  static WorkerSession start(Channel channel, String role, String address) {
    return new WorkerSession(channel, role, address);
  }

  String role() {
    return role;
  }

  String address() {
    return address;
  }

  /** Writes {@code request} with a fresh request id; the future completes with its response. */
  synchronized CompletableFuture<SessionResponse> send(SessionRequest.Builder request) {
    long id = nextId++;
    CompletableFuture<SessionResponse> f = new CompletableFuture<>();
    Status failed = failure;
    if (failed != null || ended) {
      f.completeExceptionally(
          (failed != null ? failed : Status.CANCELLED.withDescription("session closed"))
              .asRuntimeException());
      return f;
    }
    inFlight.put(id, f);
    try {
      requests.onNext(request.setRequestId(id).build());
    } catch (RuntimeException e) {
      inFlight.remove(id);
      f.completeExceptionally(e);
    }
    return f;
  }

  /**
   * Waits for {@code response}; a worker error, the stream ending or the deadline passing throw a
   * {@link WorkerFailure} saying which worker, which op and why.
   */
  SessionResponse await(CompletableFuture<SessionResponse> response, Duration timeout, String op) {
    try {
      return response.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      throw new WorkerFailure(
          this,
          Status.DEADLINE_EXCEEDED.withDescription(
              role
                  + " worker "
                  + address
                  + " did not answer "
                  + op
                  + " within "
                  + timeout.toMillis()
                  + " ms"));
    } catch (ExecutionException e) {
      Status s = Statuses.toStatus(e.getCause());
      throw new WorkerFailure(
          this,
          s.withDescription(
              role
                  + " worker "
                  + address
                  + " failed "
                  + op
                  + ": "
                  + s.getCode()
                  + (s.getDescription() == null ? "" : " " + s.getDescription())));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WorkerFailure(this, Status.CANCELLED.withDescription("interrupted"));
    }
  }

  /** {@link #send} then {@link #await}. */
  SessionResponse call(SessionRequest.Builder request, Duration timeout, String op) {
    return await(send(request), timeout, op);
  }

  /**
   * Sends Close and half-closes; the worker frees the session. Idempotent, never throws; the future
   * completes (never exceptionally) when the worker answered or the stream ended.
   */
  synchronized CompletableFuture<Void> close() {
    if (ended || failure != null) {
      ended = true;
      return CompletableFuture.completedFuture(null);
    }
    ended = true;
    CompletableFuture<SessionResponse> f = new CompletableFuture<>();
    try {
      long id = nextId++;
      inFlight.put(id, f);
      requests.onNext(
          SessionRequest.newBuilder()
              .setRequestId(id)
              .setClose(Close.getDefaultInstance())
              .build());
      requests.onCompleted();
    } catch (RuntimeException e) {
      // The call ended meanwhile; the worker freed the session with it.
      f.complete(null);
    }
    return f.handle((r, t) -> null);
  }

  /** Tears the stream down (the worker frees the session). Idempotent, never throws. */
  synchronized void cancel(String why) {
    if (ended) {
      return; // closed or cancelled already
    }
    ended = true;
    cancelled = true;
    try {
      requests.cancel(why, null);
    } catch (RuntimeException e) {
      // already ended
    }
    failAll(Status.CANCELLED.withDescription(why));
  }

  private void failAll(Status status) {
    if (failure == null) {
      failure = status;
    }
    StatusRuntimeException ex = status.asRuntimeException();
    for (Long id : inFlight.keySet()) {
      CompletableFuture<SessionResponse> f = inFlight.remove(id);
      if (f != null) {
        f.completeExceptionally(ex);
      }
    }
  }

  private final class Observer implements ClientResponseObserver<SessionRequest, SessionResponse> {
    ClientCallStreamObserver<SessionRequest> requests;

    @Override
    public void beforeStart(ClientCallStreamObserver<SessionRequest> requestStream) {
      this.requests = requestStream;
    }

    @Override
    public void onNext(SessionResponse response) {
      CompletableFuture<SessionResponse> f = inFlight.remove(response.getRequestId());
      if (f != null) {
        f.complete(response);
      }
    }

    @Override
    public void onError(Throwable t) {
      failAll(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      failAll(
          Status.UNAVAILABLE.withDescription(role + " worker " + address + " ended the session"));
    }
  }

  /** A worker op that failed, timed out or was cut off, with the worker it came from. */
  static final class WorkerFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient WorkerSession session;
    private final transient Status status;

    WorkerFailure(WorkerSession session, Status status) {
      super(status.getDescription(), null, false, false);
      this.session = session;
      this.status = status;
    }

    WorkerSession session() {
      return session;
    }

    Status status() {
      return status;
    }

    /**
     * Whether the failure only says the caller is gone: the client's call was cancelled or its
     * deadline passed, or the router tore this session down for it (which can run a moment before
     * the call's context says so). Nothing to fall back for then.
     */
    boolean callerGone() {
      return io.grpc.Context.current().isCancelled() || (session != null && session.cancelled);
    }

    /**
     * The status a client that did not cancel sees for this failure. A worker that cut the session
     * off (killed, shut down without drain, connection lost) ends the stream CANCELLED on our side,
     * which would tell the client it cancelled; to the client the worker is UNAVAILABLE.
     */
    StatusRuntimeException toStatusException() {
      if (status.getCode() == Status.Code.CANCELLED) {
        return Status.UNAVAILABLE.withDescription(status.getDescription()).asRuntimeException();
      }
      return status.asRuntimeException();
    }
  }
}
