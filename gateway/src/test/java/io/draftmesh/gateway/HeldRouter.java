package io.draftmesh.gateway;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Usage;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A Router on a real loopback port whose generations the test holds open: each answers its first
 * chunk at once, then waits, sending nothing, until {@link #release()}; from then on every held and
 * later generation ends with a last chunk. No model and no timer, so a gateway test decides exactly
 * how many requests are in flight.
 */
final class HeldRouter implements AutoCloseable {
  private final Server server;
  private final List<ServerCallStreamObserver<GenerateChunk>> held = new ArrayList<>(); // guarded
  private final List<GenerateRequest> requests = new ArrayList<>(); // guarded by this
  private int started; // guarded by this
  private int open; // guarded by this
  private boolean released; // guarded by this

  HeldRouter() throws IOException {
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(
                new RouterGrpc.RouterImplBase() {
                  @Override
                  public void generate(GenerateRequest req, StreamObserver<GenerateChunk> out) {
                    hold(req, (ServerCallStreamObserver<GenerateChunk>) out);
                  }
                })
            .build()
            .start();
  }

  private synchronized void hold(GenerateRequest req, ServerCallStreamObserver<GenerateChunk> out) {
    requests.add(req);
    started++;
    open++;
    out.setOnCancelHandler(() -> ended(out));
    out.onNext(chunk(1).build());
    if (released) {
      finish(out);
    } else {
      held.add(out);
    }
  }

  /** A held generation the gateway cancelled (its client went away). */
  private synchronized void ended(ServerCallStreamObserver<GenerateChunk> out) {
    if (held.remove(out)) {
      open--;
    }
  }

  private void finish(ServerCallStreamObserver<GenerateChunk> out) {
    open--;
    try {
      out.onNext(
          chunk(2)
              .setFinishReason(FinishReason.FINISH_REASON_LENGTH)
              .setUsage(Usage.newBuilder().setPromptTokens(4).setCompletionTokens(2))
              .build());
      out.onCompleted();
    } catch (StatusRuntimeException cancelledMeanwhile) {
      // the gateway cancelled it as it was released: ended either way
    }
  }

  private static GenerateChunk.Builder chunk(int i) {
    return GenerateChunk.newBuilder()
        .addTokenIds(100 + i)
        .addTokenText(" t" + i)
        .addProvenanceValue(Provenance.PROVENANCE_TARGET_VALUE)
        .setText(" t" + i);
  }

  /** Ends every held generation, and every later one as soon as it starts. */
  synchronized void release() {
    released = true;
    for (ServerCallStreamObserver<GenerateChunk> out : held) {
      finish(out);
    }
    held.clear();
  }

  /** Generations that reached this router. */
  synchronized int started() {
    return started;
  }

  /** The requests of the generations that reached this router, in arrival order. */
  synchronized List<GenerateRequest> requests() {
    return List.copyOf(requests);
  }

  /** Generations neither finished nor cancelled. */
  synchronized int open() {
    return open;
  }

  int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
