package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.Append;
import io.draftmesh.proto.v1.Close;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verify;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A test client for one Session stream: send a request, wait for its answer or the stream's end.
 */
final class SessionStream implements AutoCloseable {
  private final BlockingQueue<SessionResponse> responses = new LinkedBlockingQueue<>();
  private final CompletableFuture<Status> end = new CompletableFuture<>();
  private final CompletableFuture<ClientCallStreamObserver<SessionRequest>> requests =
      new CompletableFuture<>();
  private long nextId = 1;

  private SessionStream() {}

  static SessionStream start(ModelWorkerGrpc.ModelWorkerStub stub) {
    SessionStream s = new SessionStream();
    stub.session(
        new ClientResponseObserver<SessionRequest, SessionResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<SessionRequest> r) {
            s.requests.complete(r);
          }

          @Override
          public void onNext(SessionResponse value) {
            s.responses.add(value);
          }

          @Override
          public void onError(Throwable t) {
            s.end.complete(Status.fromThrowable(t));
          }

          @Override
          public void onCompleted() {
            s.end.complete(Status.OK);
          }
        });
    return s;
  }

  /** Sends without waiting. */
  long send(SessionRequest.Builder r) {
    long id = nextId++;
    requests.join().onNext(r.setRequestId(id).build());
    return id;
  }

  /** Sends and waits for the answer; fails the test if the stream ends instead. */
  SessionResponse call(SessionRequest.Builder r) throws InterruptedException {
    long id = send(r);
    SessionResponse resp = next();
    assertThat(resp)
        .withFailMessage(() -> "stream ended with " + end.getNow(null) + " instead of answering")
        .isNotNull();
    assertThat(resp.getRequestId()).isEqualTo(id);
    return resp;
  }

  /** The next answer, or null if the stream ended first. */
  SessionResponse next() throws InterruptedException {
    while (true) {
      SessionResponse r = responses.poll(20, TimeUnit.MILLISECONDS);
      if (r != null) {
        return r;
      }
      if (end.isDone() && responses.isEmpty()) {
        return null;
      }
    }
  }

  /** Sends a request that must fail the stream; returns the status. */
  Status fails(SessionRequest.Builder r) throws Exception {
    send(r);
    return awaitEnd();
  }

  Status awaitEnd() throws Exception {
    return end.get(30, TimeUnit.SECONDS);
  }

  boolean ended() {
    return end.isDone();
  }

  void halfClose() {
    requests.join().onCompleted();
  }

  void cancel() {
    requests.join().cancel("test cancels", null);
  }

  @Override
  public void close() {
    if (!end.isDone()) {
      cancel();
    }
  }

  // ---- request builders ----

  static SessionRequest.Builder open(int... prompt) {
    return open(SamplingParams.getDefaultInstance(), prompt);
  }

  static SessionRequest.Builder open(SamplingParams sampling, int... prompt) {
    return SessionRequest.newBuilder()
        .setOpen(
            Open.newBuilder()
                .addAllPromptIds(Arrays.stream(prompt).boxed().toList())
                .setSampling(sampling));
  }

  static SessionRequest.Builder append(int... ids) {
    return SessionRequest.newBuilder()
        .setAppend(Append.newBuilder().addAllTokenIds(Arrays.stream(ids).boxed().toList()));
  }

  static SessionRequest.Builder score(int... ids) {
    return SessionRequest.newBuilder()
        .setScore(Score.newBuilder().addAllTokenIds(Arrays.stream(ids).boxed().toList()));
  }

  static SessionRequest.Builder propose(int k) {
    return SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k));
  }

  static SessionRequest.Builder verify(int... draft) {
    return SessionRequest.newBuilder()
        .setVerify(Verify.newBuilder().addAllDraftTokenIds(Arrays.stream(draft).boxed().toList()));
  }

  static SessionRequest.Builder truncate(int length) {
    return SessionRequest.newBuilder().setTruncate(Truncate.newBuilder().setLength(length));
  }

  static SessionRequest.Builder closeOp() {
    return SessionRequest.newBuilder().setClose(Close.getDefaultInstance());
  }
}
