package io.draftmesh.bench;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Usage;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A Router on a real port that writes one token every {@code pace} per stream, from one timer
 * thread (no thread per stream): the upstream of the gateway load bench, slow enough that a
 * thousand streams stay open at once, with no model cost, so the figures are the gateway's own.
 */
final class PacedRouter implements AutoCloseable {
  private final Server server;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "paced-router");
            t.setDaemon(true);
            return t;
          });
  final AtomicInteger open = new AtomicInteger();
  final AtomicInteger cancelled = new AtomicInteger();

  PacedRouter(int tokens, long paceMillis) throws IOException {
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(
                new RouterGrpc.RouterImplBase() {
                  @Override
                  public void generate(GenerateRequest req, StreamObserver<GenerateChunk> out) {
                    stream(req, (ServerCallStreamObserver<GenerateChunk>) out, tokens, paceMillis);
                  }
                })
            .build()
            .start();
  }

  private void stream(
      GenerateRequest req, ServerCallStreamObserver<GenerateChunk> out, int tokens, long pace) {
    open.incrementAndGet();
    int n = req.getSampling().getMaxTokens() > 0 ? req.getSampling().getMaxTokens() : tokens;
    AtomicInteger sent = new AtomicInteger();
    ScheduledFuture<?>[] task = new ScheduledFuture<?>[1];
    Runnable done =
        () -> {
          if (task[0] != null) {
            task[0].cancel(false);
          }
          open.decrementAndGet();
        };
    out.setOnCancelHandler(
        () -> {
          cancelled.incrementAndGet();
          done.run();
        });
    synchronized (task) {
      task[0] =
          timer.scheduleAtFixedRate(
              () -> {
                synchronized (task) {
                  if (out.isCancelled()) {
                    return;
                  }
                  int i = sent.incrementAndGet();
                  GenerateChunk.Builder c =
                      GenerateChunk.newBuilder()
                          .addTokenIds(100 + i % 50)
                          .addTokenText(" t")
                          .addProvenanceValue(Provenance.PROVENANCE_TARGET_VALUE)
                          .addEntropyBits(1f)
                          .setText(" t");
                  if (i >= n) {
                    c.setFinishReason(FinishReason.FINISH_REASON_LENGTH)
                        .setUsage(Usage.newBuilder().setPromptTokens(4).setCompletionTokens(n));
                    out.onNext(c.build());
                    out.onCompleted();
                    done.run();
                    throw new IllegalStateException("done"); // ends the periodic task
                  }
                  out.onNext(c.build());
                }
              },
              pace,
              pace,
              TimeUnit.MILLISECONDS);
    }
  }

  int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.shutdownNow();
    timer.shutdownNow();
  }
}
