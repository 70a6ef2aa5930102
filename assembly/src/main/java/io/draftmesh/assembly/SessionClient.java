package io.draftmesh.assembly;

import io.draftmesh.proto.v1.Close;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One Session stream used request by request: {@link #call} sends an op and blocks for its answer.
 * The stream's deadline comes from the stub it is opened on. Used by {@code draftmesh generate
 * --worker} and by the speculative bench to time single worker ops.
 */
public final class SessionClient implements AutoCloseable {
  /** What the response observer hands over: an answer, or the stream's end. */
  private record Event(SessionResponse response, Status end) {}

  private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
  private ClientCallStreamObserver<SessionRequest> requests;
  private Status ended;
  private long nextId = 1;

  private SessionClient() {}

  public static SessionClient open(ModelWorkerGrpc.ModelWorkerStub stub) {
    SessionClient c = new SessionClient();
    stub.session(
        new ClientResponseObserver<SessionRequest, SessionResponse>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<SessionRequest> r) {
            c.requests = r;
          }

          @Override
          public void onNext(SessionResponse value) {
            c.events.add(new Event(value, null));
          }

          @Override
          public void onError(Throwable t) {
            c.events.add(new Event(null, Status.fromThrowable(t)));
          }

          @Override
          public void onCompleted() {
            c.events.add(new Event(null, Status.OK));
          }
        });
    return c;
  }

  /** Sends {@code request} and waits for its answer; a failed stream throws its status. */
  public SessionResponse call(SessionRequest.Builder request) throws InterruptedException {
    if (ended != null) {
      throw ended
          .withDescription("session already ended: " + ended.getDescription())
          .asRuntimeException();
    }
    requests.onNext(request.setRequestId(nextId++).build());
    Event e = events.take();
    if (e.response() != null) {
      return e.response();
    }
    ended = e.end();
    throw (ended.isOk()
            ? Status.INTERNAL.withDescription("the worker ended the session without answering")
            : ended)
        .asRuntimeException();
  }

  /** Closes the session politely, or cancels it if that does not work. */
  @Override
  public void close() {
    if (ended != null) {
      return;
    }
    try {
      call(SessionRequest.newBuilder().setClose(Close.getDefaultInstance()));
      Event e = events.poll(5, TimeUnit.SECONDS);
      ended = e == null || e.end() == null ? Status.OK : e.end();
    } catch (StatusRuntimeException e) {
      // ended is set
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      requests.cancel("interrupted", null);
    }
  }
}
