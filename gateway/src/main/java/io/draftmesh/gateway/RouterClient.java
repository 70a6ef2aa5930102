package io.draftmesh.gateway;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.RouterGrpc;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

/**
 * The gateway's side of {@code Router.Generate}: the checks the edge owns (model names, the token
 * limit), then stubs with the gateway's deadline. A call made inside a request's gRPC {@link
 * io.grpc.Context} also inherits that context's deadline (the shorter wins) and is cancelled with
 * it.
 */
final class RouterClient {
  private final ManagedChannel channel;
  private final Duration timeout;
  private final Catalog catalog;
  private final int maxTokensLimit;

  RouterClient(ManagedChannel channel, Duration timeout, Catalog catalog, int maxTokensLimit) {
    this.channel = channel;
    this.timeout = timeout;
    this.catalog = catalog;
    this.maxTokensLimit = maxTokensLimit;
  }

  /**
   * {@code request} as the router gets it: a public model name replaced by its pools, a request id
   * (prefixed with the caller) for the logs.
   *
   * @throws io.grpc.StatusRuntimeException INVALID_ARGUMENT naming the field
   */
  GenerateRequest prepare(GenerateRequest request, ApiKeys.Caller caller) {
    int maxTokens = request.getSampling().getMaxTokens();
    if (maxTokens < 0 || maxTokens > maxTokensLimit) {
      throw Errors.invalid(
          "sampling.max_tokens: "
              + maxTokens
              + " (expected: 0 for the default, or 1.."
              + maxTokensLimit
              + ")");
    }
    if (request.getRequestId().length() > 128) {
      throw Errors.invalid(
          "request_id: " + request.getRequestId().length() + " characters (expected: at most 128)");
    }
    GenerateRequest.Builder b = request.toBuilder();
    Catalog.Entry entry = catalog.get(request.getTarget());
    if (entry == null && request.getTarget().isEmpty()) {
      entry = catalog.get(GatewayConfig.DEFAULT_MODEL);
    }
    if (entry != null) {
      b.setTarget(entry.spec().target());
      if (request.getDraft().isEmpty()) {
        b.setDraft(entry.spec().draft());
      } else if (catalog.get(request.getDraft()) != null) {
        b.setDraft(catalog.get(request.getDraft()).spec().target());
      }
    }
    String id = request.getRequestId().isEmpty() ? newId() : request.getRequestId();
    b.setRequestId(caller.id() + "/" + id);
    return b.build();
  }

  /** The request id the client knows {@code prepared} by (without the caller prefix). */
  static String publicId(GenerateRequest prepared) {
    String id = prepared.getRequestId();
    int slash = id.indexOf('/');
    return slash < 0 ? id : id.substring(slash + 1);
  }

  /**
   * {@code chunk} as the public sees it: the stats keep {@code fallback} but lose {@code
   * fallback_reason}, which names the draft worker's address and what it answered (design invariant
   * 6); the router logs the reason under the request id.
   */
  static GenerateChunk publicChunk(GenerateChunk chunk) {
    if (chunk.getStats().getFallbackReason().isEmpty()) {
      return chunk;
    }
    GenerateChunk.Builder b = chunk.toBuilder();
    b.getStatsBuilder().clearFallbackReason();
    return b.build();
  }

  static String newId() {
    return UUID.randomUUID().toString().replace("-", "");
  }

  /** An async stub whose calls have the gateway's deadline. */
  RouterGrpc.RouterStub async() {
    return RouterGrpc.newStub(channel).withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** A blocking stub whose calls have the gateway's deadline. */
  RouterGrpc.RouterBlockingStub blocking() {
    return RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS);
  }
}
