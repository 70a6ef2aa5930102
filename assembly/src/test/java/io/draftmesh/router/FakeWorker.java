package io.draftmesh.router;

import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Opened;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A ModelWorker test double on a real port: reports a given ModelInfo, answers Open, and never
 * answers anything else (a stalled draft). Counts sessions the client tore down.
 */
final class FakeWorker implements AutoCloseable {
  final Server server;
  final AtomicInteger opened = new AtomicInteger();
  final CountDownLatch cancelled = new CountDownLatch(1);
  private final Semaphore tornDown = new Semaphore(0); // one permit per session the client ended

  FakeWorker(ModelInfo info) throws IOException {
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(
                new ModelWorkerGrpc.ModelWorkerImplBase() {
                  @Override
                  public void getModelInfo(GetModelInfoRequest r, StreamObserver<ModelInfo> out) {
                    out.onNext(info);
                    out.onCompleted();
                  }

                  @Override
                  public StreamObserver<SessionRequest> session(
                      StreamObserver<SessionResponse> out) {
                    AtomicBoolean ended = new AtomicBoolean();
                    Runnable end =
                        () -> {
                          cancelled.countDown();
                          if (ended.compareAndSet(false, true)) {
                            tornDown.release();
                          }
                        };
                    ((ServerCallStreamObserver<SessionResponse>) out).setOnCancelHandler(end);
                    return new StreamObserver<>() {
                      @Override
                      public void onNext(SessionRequest r) {
                        if (r.hasOpen()) {
                          opened.incrementAndGet();
                          out.onNext(
                              SessionResponse.newBuilder()
                                  .setRequestId(r.getRequestId())
                                  .setLength(r.getOpen().getPromptIdsCount())
                                  .setOpened(
                                      Opened.newBuilder()
                                          .setSessionId("fake")
                                          .setNext(Position.newBuilder().setTokenId(2)))
                                  .build());
                        }
                        // Everything else: silence.
                      }

                      @Override
                      public void onError(Throwable t) {
                        end.run();
                      }

                      @Override
                      public void onCompleted() {
                        out.onCompleted();
                      }
                    };
                  }
                })
            .build()
            .start();
  }

  int port() {
    return server.getPort();
  }

  boolean awaitCancelled(long seconds) throws InterruptedException {
    return cancelled.await(seconds, TimeUnit.SECONDS);
  }

  /** Waits until the client ended {@code sessions} sessions (cancelled or failed them). */
  boolean awaitTornDown(int sessions, long seconds) throws InterruptedException {
    return tornDown.tryAcquire(sessions, seconds, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    server.shutdownNow();
  }
}
