package io.draftmesh.router;

import io.draftmesh.proto.v1.Appended;
import io.draftmesh.proto.v1.Closed;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Opened;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncated;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiFunction;

/**
 * A ModelWorker test double on a real port that follows the session protocol (answers every op in
 * order, tracks the length) but answers Propose with whatever {@code proposal} makes of the
 * request's k and the vocab size: a draft that returns garbage.
 */
final class GarbageDraft implements AutoCloseable {
  final Server server;
  final AtomicInteger proposals = new AtomicInteger();
  final AtomicInteger open = new AtomicInteger(); // sessions not yet ended

  GarbageDraft(ModelInfo info, BiFunction<Integer, Integer, Proposed> proposal) throws IOException {
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
                    open.incrementAndGet();
                    return new StreamObserver<>() {
                      int length;
                      boolean ended;

                      @Override
                      public void onNext(SessionRequest r) {
                        SessionResponse.Builder b =
                            SessionResponse.newBuilder().setRequestId(r.getRequestId());
                        switch (r.getOpCase()) {
                          case OPEN -> {
                            length = r.getOpen().getPromptIdsCount();
                            b.setOpened(
                                Opened.newBuilder()
                                    .setSessionId("garbage")
                                    .setNext(Position.newBuilder().setTokenId(2)));
                          }
                          case APPEND -> {
                            length += r.getAppend().getTokenIdsCount();
                            b.setAppended(Appended.getDefaultInstance());
                          }
                          case TRUNCATE -> {
                            length = r.getTruncate().getLength();
                            b.setTruncated(Truncated.getDefaultInstance());
                          }
                          case PROPOSE -> {
                            proposals.incrementAndGet();
                            Proposed p = proposal.apply(r.getPropose().getK(), info.getVocabSize());
                            length += p.getTokenIdsCount();
                            b.setProposed(p);
                          }
                          case CLOSE -> b.setClosed(Closed.getDefaultInstance());
                          default -> {}
                        }
                        out.onNext(b.setLength(length).build());
                        if (r.hasClose()) {
                          end();
                          out.onCompleted();
                        }
                      }

                      private void end() {
                        if (!ended) {
                          ended = true;
                          open.decrementAndGet();
                        }
                      }

                      @Override
                      public void onError(Throwable t) {
                        end();
                      }

                      @Override
                      public void onCompleted() {
                        if (!ended) {
                          end();
                          out.onCompleted();
                        }
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

  @Override
  public void close() {
    server.shutdownNow();
  }
}
