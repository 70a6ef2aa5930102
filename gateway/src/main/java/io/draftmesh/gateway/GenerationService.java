package io.draftmesh.gateway;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.ListModelsRequest;
import io.draftmesh.proto.v1.ListModelsResponse;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The public {@code draftmesh.v1.Generation} service: relays {@code Router.Generate} chunk for
 * chunk, with flow control end to end (one chunk is asked of the router only when the client can
 * take one), the caller's limits, and cancellation: a client that cancels (or whose deadline
 * passes) cancels the router call, which closes the worker sessions.
 */
final class GenerationService extends GenerationGrpc.GenerationImplBase {
  private final RouterClient router;
  private final KeyLimits limits;
  private final Catalog catalog;

  GenerationService(RouterClient router, KeyLimits limits, Catalog catalog) {
    this.router = router;
    this.limits = limits;
    this.catalog = catalog;
  }

  @Override
  public void listModels(
      ListModelsRequest request, StreamObserver<ListModelsResponse> responseObserver) {
    responseObserver.onNext(catalog.toProto());
    responseObserver.onCompleted();
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateChunk> responseObserver) {
    ServerCallStreamObserver<GenerateChunk> call =
        (ServerCallStreamObserver<GenerateChunk>) responseObserver;
    ApiKeys.Caller caller = AuthInterceptor.CALLER.get();
    GenerateRequest upstream;
    KeyLimits.Lease lease;
    try {
      upstream = router.prepare(request, caller);
      lease = limits.acquire(caller);
    } catch (StatusRuntimeException e) {
      call.onError(e);
      return;
    }
    Relay relay = new Relay(call, lease, RouterClient.publicId(upstream), request);
    call.setOnReadyHandler(relay::clientReady);
    call.setOnCancelHandler(relay::clientCancelled);
    // Started in this call's context: its deadline and cancellation reach the router call too.
    router.async().generate(upstream, relay);
  }

  /** Chunks from the router to the client, one at a time. */
  private static final class Relay
      implements ClientResponseObserver<GenerateRequest, GenerateChunk> {
    private final ServerCallStreamObserver<GenerateChunk> client;
    private final KeyLimits.Lease lease;
    private final String requestId;
    private final GenerateRequest asked;
    private final AtomicBoolean wanted = new AtomicBoolean(); // a chunk waits for client readiness
    private final AtomicBoolean done = new AtomicBoolean();
    private volatile ClientCallStreamObserver<GenerateRequest> upstream;

    Relay(
        ServerCallStreamObserver<GenerateChunk> client,
        KeyLimits.Lease lease,
        String requestId,
        GenerateRequest asked) {
      this.client = client;
      this.lease = lease;
      this.requestId = requestId;
      this.asked = asked;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
      upstream = requestStream;
      requestStream.disableAutoRequestWithInitial(1);
    }

    @Override
    public void onNext(GenerateChunk chunk) {
      lease.charge(chunk.getTokenIdsCount());
      if (done.get()) {
        return;
      }
      client.onNext(RouterClient.publicChunk(chunk));
      wanted.set(true);
      if (client.isReady()) {
        clientReady();
      }
    }

    void clientReady() {
      ClientCallStreamObserver<GenerateRequest> u = upstream;
      if (u != null && wanted.compareAndSet(true, false)) {
        u.request(1);
      }
    }

    void clientCancelled() {
      done.set(true);
      lease.close();
      ClientCallStreamObserver<GenerateRequest> u = upstream;
      if (u != null) {
        u.cancel("client cancelled", null);
      }
    }

    @Override
    public void onError(Throwable t) {
      lease.close();
      if (done.compareAndSet(false, true)) {
        client.onError(Errors.fromRouter(t, requestId, asked));
      }
    }

    @Override
    public void onCompleted() {
      lease.close();
      if (done.compareAndSet(false, true)) {
        client.onCompleted();
      }
    }
  }
}
