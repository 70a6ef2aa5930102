package io.draftmesh.gateway;

import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import io.draftmesh.serving.GrpcStatuses;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place failures become statuses, and statuses become OpenAI-shaped HTTP errors.
 *
 * <p>Everything the gateway refuses is a gRPC {@link Status} with a description that names the
 * field, its value and what was expected (as the router's are); {@link #toHttp} maps it for the
 * HTTP API. A failure that is no status is a bug: logged here with its cause and sent as INTERNAL
 * with a generic description, so no stack trace reaches a client.
 *
 * <table>
 *   <caption>gRPC status to HTTP</caption>
 *   <tr><th>status</th><th>HTTP</th><th>type</th><th>code</th></tr>
 *   <tr><td>INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION</td><td>400</td>
 *       <td>invalid_request_error</td><td>invalid_value (null for FAILED_PRECONDITION)</td></tr>
 *   <tr><td>UNAUTHENTICATED</td><td>401</td><td>invalid_request_error</td>
 *       <td>invalid_api_key</td></tr>
 *   <tr><td>PERMISSION_DENIED</td><td>403</td><td>invalid_request_error</td><td>null</td></tr>
 *   <tr><td>NOT_FOUND</td><td>404</td><td>invalid_request_error</td>
 *       <td>model_not_found</td></tr>
 *   <tr><td>RESOURCE_EXHAUSTED, a key's limit</td><td>429</td><td>requests or tokens</td>
 *       <td>rate_limit_exceeded</td></tr>
 *   <tr><td>RESOURCE_EXHAUSTED, the gateway's capacity</td><td>429</td><td>server_error</td>
 *       <td>server_busy</td></tr>
 *   <tr><td>UNAVAILABLE</td><td>503</td><td>server_error</td><td>service_unavailable</td></tr>
 *   <tr><td>DEADLINE_EXCEEDED</td><td>504</td><td>server_error</td><td>timeout</td></tr>
 *   <tr><td>UNIMPLEMENTED</td><td>501</td><td>invalid_request_error</td><td>null</td></tr>
 *   <tr><td>anything else</td><td>500</td><td>server_error</td><td>null</td></tr>
 * </table>
 */
final class Errors {
  private static final Logger log = LoggerFactory.getLogger(Errors.class);

  /**
   * Trailer naming the limit a RESOURCE_EXHAUSTED from the gateway hit: {@code requests} or {@code
   * tokens} (the caller's key), or {@link #SERVER_LIMIT} (the gateway's own capacity).
   */
  static final Metadata.Key<String> LIMIT_KEY =
      Metadata.Key.of("draftmesh-limit", Metadata.ASCII_STRING_MARSHALLER);

  /** The limit that is the gateway's own capacity, not one caller's share of it. */
  static final String SERVER_LIMIT = "server";

  /** Trailer with the seconds after which a rate-limited call may succeed. */
  static final Metadata.Key<String> RETRY_AFTER_KEY =
      Metadata.Key.of("retry-after", Metadata.ASCII_STRING_MARSHALLER);

  /** "field.path: value ..." or "field.path[3]: ..." at the start of a description. */
  private static final Pattern FIELD = Pattern.compile("^([a-z_][a-z0-9_.\\[\\]]*): ");

  private Errors() {}

  static StatusRuntimeException invalid(String description) {
    return Status.INVALID_ARGUMENT.withDescription(description).asRuntimeException();
  }

  static StatusRuntimeException unauthenticated(String description) {
    return Status.UNAUTHENTICATED.withDescription(description).asRuntimeException();
  }

  /** A limit: {@code limit} is "requests" or "tokens" (per key) or {@link #SERVER_LIMIT}. */
  static StatusRuntimeException limited(String limit, long retryAfterSeconds, String description) {
    Metadata trailers = new Metadata();
    trailers.put(LIMIT_KEY, limit);
    trailers.put(RETRY_AFTER_KEY, Long.toString(Math.max(1, retryAfterSeconds)));
    return Status.RESOURCE_EXHAUSTED.withDescription(description).asRuntimeException(trailers);
  }

  /** Any throwable (unwrapping future wrappers) as the status a client should see. */
  static StatusRuntimeException toStatus(Throwable t) {
    Status known = GrpcStatuses.statusOf(t);
    if (known != null) {
      // Keep code, description and trailers; the cause is dropped so it never crosses the wire.
      return known.asRuntimeException(GrpcStatuses.trailersOf(t));
    }
    log.error("unexpected failure", GrpcStatuses.unwrap(t));
    return Status.INTERNAL.withDescription("internal error in the gateway").asRuntimeException();
  }

  /** "target: NAME (" or "draft: NAME (": which of the two the router could not find. */
  private static final Pattern ASKED_FOR = Pattern.compile("^(target|draft): ");

  /**
   * A failure of the router call as the public sees it (design invariant 6: no internal address,
   * pool name or tokenizer hash leaves the gateway). The router's descriptions name workers' {@code
   * host:port}, its pools and tokenizer hashes, which help an operator and help an attacker map the
   * mesh; so every code gets a generic description with the request id, and the router's own goes
   * to the log under that id. INVALID_ARGUMENT and OUT_OF_RANGE keep theirs: they name the client's
   * own field, its value and what was expected, which is what a client needs to fix the request.
   * Trailers are dropped (they are the router's).
   *
   * @param asked the request as the client sent it (before the catalog mapped its model names)
   */
  static StatusRuntimeException fromRouter(
      Throwable t, String requestId, io.draftmesh.proto.v1.GenerateRequest asked) {
    Status s = GrpcStatuses.statusOf(t);
    if (s == null) {
      log.error(
          "request {}: unexpected failure of the router call", requestId, GrpcStatuses.unwrap(t));
      return Status.INTERNAL
          .withDescription("internal error (request id " + requestId + ")")
          .asRuntimeException();
    }
    String detail = s.getDescription() == null ? "" : s.getDescription();
    String id = "request id " + requestId;
    String description =
        switch (s.getCode()) {
          case INVALID_ARGUMENT, OUT_OF_RANGE -> detail;
          case NOT_FOUND -> {
            // The name the client sent, never the router's: for a catalog model that is the
            // router pool the model maps to.
            Matcher m = ASKED_FOR.matcher(detail);
            String field = m.find() ? m.group(1) : null;
            String value =
                field == null ? "" : field.equals("target") ? asked.getTarget() : asked.getDraft();
            yield (field == null
                    ? ""
                    : field + ": " + (value.isEmpty() ? "(default)" : value) + " ")
                + "not found (expected: a model this gateway serves, see ListModels or GET"
                + " /v1/models; "
                + id
                + ")";
          }
          case FAILED_PRECONDITION -> {
            Matcher m = FIELD.matcher(detail);
            yield (m.find() ? m.group(1) + ": " : "")
                + "this model cannot serve the request as configured (expected: another model or"
                + " option; "
                + id
                + ")";
          }
          case RESOURCE_EXHAUSTED ->
              "the service is at capacity (expected: retry later; " + id + ")";
          case UNAVAILABLE ->
              "the model service is unavailable (expected: retry later; " + id + ")";
          case DEADLINE_EXCEEDED -> "the request's deadline passed (" + id + ")";
          case CANCELLED -> "the request was cancelled (" + id + ")";
          default -> "internal error (" + id + ")";
        };
    if (s.getCode() != Status.Code.INVALID_ARGUMENT && s.getCode() != Status.Code.OUT_OF_RANGE) {
      log.warn("request {}: router answered {}: {}", requestId, s.getCode(), detail);
    }
    return Status.fromCode(s.getCode()).withDescription(description).asRuntimeException();
  }

  /**
   * An error as the HTTP API sends it.
   *
   * @param status the HTTP status
   * @param retryAfter seconds for a {@code Retry-After} header, or 0 for none
   */
  record HttpError(
      int status, String message, String type, String param, String code, long retryAfter) {

    /** {@code {"error": {"message", "type", "param", "code"}}}. */
    JsonObject toJson() {
      JsonObject error = new JsonObject();
      error.addProperty("message", message);
      error.addProperty("type", type);
      error.add(
          "param", param == null ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(param));
      error.add("code", code == null ? JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(code));
      JsonObject root = new JsonObject();
      root.add("error", error);
      return root;
    }
  }

  /** A request body over the limit (HTTP only: gRPC enforces its own max message size). */
  static HttpError tooLarge(long bytes, int limit) {
    return new HttpError(
        413,
        "body: "
            + (bytes < 0 ? "more than " + limit : Long.toString(bytes))
            + " bytes (expected: at most "
            + limit
            + ")",
        "invalid_request_error",
        null,
        "request_too_large",
        0);
  }

  /** A body that is not JSON by its Content-Type. */
  static HttpError unsupportedMediaType(String type) {
    return new HttpError(
        415,
        "Content-Type: " + type + " (expected: application/json)",
        "invalid_request_error",
        null,
        "unsupported_media_type",
        0);
  }

  /** A body that did not arrive in time (a slow or stalled client). */
  static HttpError bodyTimeout(java.time.Duration timeout) {
    return new HttpError(
        408,
        "body: not complete within "
            + timeout.toMillis()
            + " ms (expected: the whole body within the gateway's --body-timeout-ms)",
        "invalid_request_error",
        null,
        "request_timeout",
        0);
  }

  /** A request head (line and headers) that did not arrive in time: a slow or stalled client. */
  static HttpError headerTimeout(java.time.Duration timeout) {
    return new HttpError(
        408,
        "headers: not complete within "
            + timeout.toMillis()
            + " ms (expected: the request line and headers within the gateway's"
            + " --header-timeout-ms)",
        "invalid_request_error",
        null,
        "request_timeout",
        0);
  }

  /** A request the HTTP parser refused (400), or whose line (414) or headers (431) are too long. */
  static HttpError malformedRequest(int status, String message) {
    return new HttpError(status, message, "invalid_request_error", null, "invalid_request", 0);
  }

  /**
   * Every HTTP thread busy and the pool's queue full: a flood, answered by the transport without a
   * thread (the admitted completions are bounded before this by {@link HttpAdmission}).
   */
  static HttpError overloaded() {
    return new HttpError(
        503,
        "server busy: every HTTP thread is taken and the queue is full (expected: retry later)",
        "server_error",
        null,
        "server_busy",
        1);
  }

  /** A path or method the HTTP API does not serve. */
  static HttpError noRoute(String method, String path) {
    return new HttpError(
        404,
        "Unknown request URL: " + method + " " + path + ".",
        "invalid_request_error",
        null,
        "unknown_url",
        0);
  }

  /** A method the path does not serve. */
  static HttpError methodNotAllowed(String method, String path, String allowed) {
    return new HttpError(
        405,
        "method: " + method + " " + path + " (expected: " + allowed + ")",
        "invalid_request_error",
        null,
        "method_not_allowed",
        0);
  }

  /** The HTTP error for {@code t}: see the class comment. */
  static HttpError toHttp(Throwable t) {
    StatusRuntimeException sre = toStatus(t);
    Status s = sre.getStatus();
    String message = s.getDescription() != null ? s.getDescription() : s.getCode().toString();
    Metadata trailers = sre.getTrailers();
    String param = null;
    Matcher m = FIELD.matcher(message);
    if (m.find()) {
      param = m.group(1);
    }
    return switch (s.getCode()) {
      case INVALID_ARGUMENT, OUT_OF_RANGE ->
          new HttpError(400, message, "invalid_request_error", param, "invalid_value", 0);
      case FAILED_PRECONDITION ->
          new HttpError(400, message, "invalid_request_error", param, null, 0);
      case UNAUTHENTICATED ->
          new HttpError(401, message, "invalid_request_error", null, "invalid_api_key", 0);
      case PERMISSION_DENIED -> new HttpError(403, message, "invalid_request_error", null, null, 0);
      case NOT_FOUND ->
          new HttpError(404, message, "invalid_request_error", param, "model_not_found", 0);
      case RESOURCE_EXHAUSTED -> {
        String limit = trailers == null ? null : trailers.get(LIMIT_KEY);
        String retry = trailers == null ? null : trailers.get(RETRY_AFTER_KEY);
        long retryAfter = retry == null ? 1 : Long.parseLong(retry);
        yield SERVER_LIMIT.equals(limit)
            ? new HttpError(429, message, "server_error", null, "server_busy", retryAfter)
            : new HttpError(
                429,
                message,
                limit == null ? "requests" : limit,
                null,
                "rate_limit_exceeded",
                retryAfter);
      }
      case UNAVAILABLE ->
          new HttpError(503, message, "server_error", null, "service_unavailable", 1);
      case DEADLINE_EXCEEDED -> new HttpError(504, message, "server_error", null, "timeout", 0);
      case UNIMPLEMENTED -> new HttpError(501, message, "invalid_request_error", null, null, 0);
      case CANCELLED -> new HttpError(499, message, "invalid_request_error", null, "cancelled", 0);
      default -> new HttpError(500, message, "server_error", null, null, 0);
    };
  }
}
