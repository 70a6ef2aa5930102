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
import java.util.function.Supplier;

/**
 * A real worker behind a proxy on a real port that passes each session op through a per-session
 * {@link Rule}: forwarded as it came, rewritten (a router bug that a test must catch), or answered
 * by cancelling the worker's stream and failing the caller's with {@code UNAVAILABLE} — what the
 * router sees when a worker process is killed mid-generation, but at a deterministic point of the
 * protocol. Responses come back unchanged.
 */
final class WorkerProxy implements AutoCloseable {
  /** What the proxy does with the ops of one session, in order. */
  interface Rule {
    /** The op to forward to the worker, or null to fail the session here. */
    SessionRequest apply(SessionRequest op);
  }

  private final Server server;
  private final ManagedChannel upstream;
  final AtomicInteger failures = new AtomicInteger();

  /** A draft that dies at the {@code failAt}-th Propose of every session. */
  static WorkerProxy failingAtPropose(int workerPort, int failAt) throws IOException {
    return new WorkerProxy(
        workerPort,
        () -> {
          int[] proposals = {0};
          return op -> op.hasPropose() && ++proposals[0] == failAt ? null : op;
        });
  }

  WorkerProxy(int workerPort, Supplier<Rule> perSession) throws IOException {
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
                    return new Session(worker, out, perSession.get());
                  }
                })
            .build()
            .start();
  }

  /** One caller's session, forwarded to one worker session. */
  private final class Session implements StreamObserver<SessionRequest> {
    private final StreamObserver<SessionResponse> out;
    private final StreamObserver<SessionRequest> toWorker;
    private final Rule rule;
    private ClientCallStreamObserver<SessionRequest> call;
    private boolean failed;

    Session(
        ModelWorkerGrpc.ModelWorkerStub worker, StreamObserver<SessionResponse> out, Rule rule) {
      this.out = out;
      this.rule = rule;
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
      SessionRequest forward = rule.apply(r);
      if (forward == null) {
        failed = true;
        failures.incrementAndGet();
        call.cancel("worker proxy: dying mid-session", null);
        out.onError(Status.UNAVAILABLE.withDescription("draft died").asRuntimeException());
        return;
      }
      toWorker.onNext(forward);
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
