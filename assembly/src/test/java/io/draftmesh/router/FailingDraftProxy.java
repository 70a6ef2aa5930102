package io.draftmesh.router;

import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real draft worker behind a proxy on a real port that dies in the middle of every session: it
 * forwards each op to the worker until the session's {@code failAt}-th Propose, which it answers by
 * cancelling the worker's stream and failing the caller's with {@code UNAVAILABLE} — what the
 * router sees when a draft process is killed mid-generation, but at a deterministic point of the
 * protocol.
 */
final class FailingDraftProxy implements AutoCloseable {
  private final Server server;
  private final ManagedChannel upstream;
  final AtomicInteger failures = new AtomicInteger();

  FailingDraftProxy(int workerPort, int failAt) throws IOException {
    upstream =
        Grpc.newChannelBuilder("localhost:" + workerPort, InsecureChannelCredentials.create())
            .build();
    ModelWorkerGrpc.ModelWorkerStub worker = ModelWorkerGrpc.newStub(upstream);
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(
                new ModelWorkerGrpc.ModelWorkerImplBase() {
                  @Override
                  public void getModelInfo(GetModelInfoRequest r, StreamObserver<ModelInfo> out) {
                    worker.getModelInfo(r, out);
                  }

                  @Override
                  public StreamObserver<SessionRequest> session(
                      StreamObserver<SessionResponse> out) {
                    return new Session(worker, out, failAt);
                  }
                })
            .build()
            .start();
  }

  /** One caller's session, forwarded to one worker session. */
  private final class Session implements StreamObserver<SessionRequest> {
    private final StreamObserver<SessionResponse> out;
    private final StreamObserver<SessionRequest> toWorker;
    private final int failAt;
    private ClientCallStreamObserver<SessionRequest> call;
    private int proposals;
    private boolean failed;

    Session(ModelWorkerGrpc.ModelWorkerStub worker, StreamObserver<SessionResponse> out, int at) {
      this.out = out;
      this.failAt = at;
      this.toWorker =
          worker.session(
              new ClientResponseObserver<SessionRequest, SessionResponse>() {
                @Override
                public void beforeStart(ClientCallStreamObserver<SessionRequest> s) {
                  call = s;
                }

                @Override
                public void onNext(SessionResponse r) {
                  synchronized (Session.this) {
                    if (!failed) {
                      out.onNext(r);
                    }
                  }
                }

                @Override
                public void onError(Throwable t) {
                  synchronized (Session.this) {
                    if (!failed) {
                      failed = true;
                      out.onError(t);
                    }
                  }
                }

                @Override
                public void onCompleted() {
                  synchronized (Session.this) {
                    if (!failed) {
                      out.onCompleted();
                    }
                  }
                }
              });
    }

    @Override
    public synchronized void onNext(SessionRequest r) {
      if (failed) {
        return;
      }
      if (r.hasPropose() && ++proposals == failAt) {
        failed = true;
        failures.incrementAndGet();
        call.cancel("draft proxy: dying mid-session", null);
        out.onError(Status.UNAVAILABLE.withDescription("draft died").asRuntimeException());
        return;
      }
      toWorker.onNext(r);
    }

    @Override
    public synchronized void onError(Throwable t) {
      if (!failed) {
        failed = true;
        call.cancel("caller went away", t);
      }
    }

    @Override
    public synchronized void onCompleted() {
      if (!failed) {
        toWorker.onCompleted();
      }
    }
  }

  int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.shutdownNow();
    upstream.shutdownNow();
  }
}
