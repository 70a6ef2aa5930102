package io.draftmesh.gateway;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP surface: the OpenAI-compatible API under {@code /v1} and the playground at {@code /}.
 *
 * <table>
 *   <caption>routes</caption>
 *   <tr><td>POST /v1/completions</td><td>text completion, SSE with {@code stream: true}</td></tr>
 *   <tr><td>POST /v1/chat/completions</td><td>chat completion, SSE with {@code stream:
 *       true}</td></tr>
 *   <tr><td>GET /v1/models, /v1/models/{id}</td><td>the catalog</td></tr>
 *   <tr><td>GET /healthz</td><td>liveness, no key needed</td></tr>
 *   <tr><td>GET /, /app.js, /style.css</td><td>the playground, no key needed (it asks for
 *       one)</td></tr>
 * </table>
 *
 * <p>Each request runs on one thread of the server's executor (never on the transport's event
 * loops), which calls the router with the blocking stub inside a {@link
 * Context.CancellableContext}: the router call ends with the request in every way (completion,
 * error, client disconnect, which the transport reports at once). Completions are admitted by
 * {@link HttpAdmission} (a bounded number served and waiting, the rest refused at once).
 */
final class HttpApi implements NettyHttpServer.Handler {
  private static final Logger log = LoggerFactory.getLogger(HttpApi.class);
  // serializeNulls: OpenAI objects carry explicit nulls (finish_reason, logprobs, param, ...).
  private static final Gson GSON = new com.google.gson.GsonBuilder().serializeNulls().create();
  private static final String CSP =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
          + " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
  private static final Map<String, String[]> STATIC =
      Map.of(
          "/", new String[] {"index.html", "text/html; charset=utf-8"},
          "/index.html", new String[] {"index.html", "text/html; charset=utf-8"},
          "/app.js", new String[] {"app.js", "text/javascript; charset=utf-8"},
          "/style.css", new String[] {"style.css", "text/css; charset=utf-8"});

  private final GatewayConfig config;
  private final ApiKeys keys;
  private final KeyLimits limits;
  private final Catalog catalog;
  private final RouterClient router;
  private final ScheduledExecutorService scheduler;
  private final HttpAdmission admission;

  private final io.draftmesh.telemetry.HttpServerTracing tracing;

  HttpApi(
      GatewayConfig config,
      ApiKeys keys,
      KeyLimits limits,
      HttpAdmission admission,
      Catalog catalog,
      RouterClient router,
      ScheduledExecutorService scheduler,
      io.draftmesh.telemetry.HttpServerTracing tracing) {
    this.tracing = tracing;
    this.config = config;
    this.keys = keys;
    this.limits = limits;
    this.admission = admission;
    this.catalog = catalog;
    this.router = router;
    this.scheduler = scheduler;
  }

  private final java.util.concurrent.atomic.AtomicInteger active =
      new java.util.concurrent.atomic.AtomicInteger();
  private volatile boolean draining;

  /** From now on every request gets 503 (the server is shutting down). */
  void drain() {
    draining = true;
  }

  /** Requests being handled now. */
  int active() {
    return active.get();
  }

  @Override
  public void handle(Exchange ex) {
    active.incrementAndGet();
    try (ex;
        io.draftmesh.telemetry.HttpServerTracing.Exchange traced = tracing.start(ex)) {
      String method = ex.method();
      String path = ex.path();
      ex.setHeader("X-Content-Type-Options", "nosniff");
      try {
        if (draining) {
          throw Status.UNAVAILABLE
              .withDescription("the gateway is shutting down (expected: retry on another replica)")
              .asRuntimeException();
        }
        route(ex, method, path);
      } catch (StatusRuntimeException e) {
        sendError(ex, Errors.toHttp(e));
      } catch (HttpFailure e) {
        sendError(ex, e.error);
      } catch (IOException e) {
        log.debug("{} {}: client went away: {}", method, path, e.toString());
      } catch (RuntimeException e) {
        sendError(ex, Errors.toHttp(e));
      }
    } finally {
      active.decrementAndGet();
    }
  }

  private void route(Exchange ex, String method, String path) throws IOException {
    String[] asset = STATIC.get(path);
    if (asset != null) {
      requireMethod(ex, method, "GET", path);
      serveAsset(ex, asset[0], asset[1]);
      return;
    }
    switch (path) {
      case "/healthz" -> {
        requireMethod(ex, method, "GET", path);
        JsonObject ok = new JsonObject();
        ok.addProperty("status", "ok");
        sendJson(ex, 200, ok);
      }
      case "/v1/models" -> {
        requireMethod(ex, method, "GET", path);
        keys.authenticate(ex.header("Authorization"));
        sendJson(ex, 200, OpenAiResponses.modelList(catalog));
      }
      case "/v1/completions" -> generate(ex, method, path, OpenAiRequests.Kind.COMPLETION);
      case "/v1/chat/completions" -> generate(ex, method, path, OpenAiRequests.Kind.CHAT);
      default -> {
        if (path.startsWith("/v1/models/")) {
          requireMethod(ex, method, "GET", path);
          keys.authenticate(ex.header("Authorization"));
          String id = path.substring("/v1/models/".length());
          Catalog.Entry e = catalog.get(id);
          if (e == null) {
            throw Status.NOT_FOUND
                .withDescription(
                    "model: "
                        + id
                        + " (expected: one of "
                        + catalog.entries().stream().map(c -> c.spec().id()).toList()
                        + ")")
                .asRuntimeException();
          }
          sendJson(ex, 200, OpenAiResponses.model(e, catalog.created()));
        } else {
          sendError(ex, Errors.noRoute(method, path));
        }
      }
    }
  }

  private static void requireMethod(Exchange ex, String method, String expected, String path) {
    if (!method.equals(expected)) {
      ex.setHeader("Allow", expected);
      throw new HttpFailure(Errors.methodNotAllowed(method, path, expected));
    }
  }

  private void generate(Exchange ex, String method, String path, OpenAiRequests.Kind kind)
      throws IOException {
    requireMethod(ex, method, "POST", path);
    ApiKeys.Caller caller = keys.authenticate(ex.header("Authorization"));
    // Refused here, before the body is read, when the gateway's places are taken. A request that
    // waits for a place is validated and charged to its key first: a bad one, or one its key has
    // no room for, is answered at once, and no key holds more of the queue than its own limit.
    try (HttpAdmission.Ticket ticket = admission.admit()) {
      JsonObject body = readJsonObject(ex);
      OpenAiRequests.Parsed p = OpenAiRequests.parse(kind, body, catalog, config.maxTokensLimit());
      // One id for the response object, the X-Request-Id header, public errors and the router's
      // logs.
      String id = (kind == OpenAiRequests.Kind.CHAT ? "chatcmpl-" : "cmpl-") + RouterClient.newId();
      GenerateRequest request =
          router.prepare(p.request().toBuilder().setRequestId(id).build(), caller);
      ex.setHeader("X-Request-Id", id);
      try (KeyLimits.Lease lease = limits.acquire(caller)) {
        ticket.awaitTurn();
        callRouter(ex, kind, p, id, request, lease);
      }
    }
  }

  /** The router call of one admitted, valid request, answered as a stream or one JSON object. */
  private void callRouter(
      Exchange ex,
      OpenAiRequests.Kind kind,
      OpenAiRequests.Parsed p,
      String id,
      GenerateRequest request,
      KeyLimits.Lease lease)
      throws IOException {
    long created = System.currentTimeMillis() / 1000;
    Context.CancellableContext upstream = Context.current().withCancellation();
    // A client that closes its connection cancels the router call at once, streaming or not.
    ex.onClientGone(
        () ->
            upstream.cancel(
                Status.CANCELLED.withDescription("HTTP client disconnected").asRuntimeException()));
    Context previous = upstream.attach();
    try {
      Iterator<GenerateChunk> chunks = router.blocking().generate(request);
      // The first chunk (or the router's refusal) decides the HTTP status.
      GenerateChunk first;
      try {
        first = chunks.next();
      } catch (StatusRuntimeException e) {
        if (ex.clientGone()) {
          return; // cancelled because the client left: nobody to answer, nothing to report
        }
        throw Errors.fromRouter(e, id, p.request());
      }
      lease.charge(first.getTokenIdsCount());
      if (p.stream()) {
        stream(ex, kind, p, id, created, first, chunks, lease, upstream);
      } else {
        collect(ex, kind, p, id, created, first, chunks, lease, upstream);
      }
    } finally {
      upstream.detach(previous);
      upstream.cancel(null); // no-op once the call completed
    }
  }

  private void stream(
      Exchange ex,
      OpenAiRequests.Kind kind,
      OpenAiRequests.Parsed p,
      String id,
      long created,
      GenerateChunk first,
      Iterator<GenerateChunk> rest,
      KeyLimits.Lease lease,
      Context.CancellableContext upstream)
      throws IOException {
    boolean chat = kind == OpenAiRequests.Kind.CHAT;
    boolean usageField = p.includeUsage();
    try (Sse sse = new Sse(ex, upstream, scheduler, config.sseHeartbeat())) {
      if (chat) {
        JsonObject delta = new JsonObject();
        delta.addProperty("role", "assistant");
        delta.addProperty("content", "");
        if (!sse.event(
            GSON.toJson(
                OpenAiResponses.chatChunk(
                    id, created, p.model(), delta, null, null, usageField)))) {
          return;
        }
      }
      GenerateChunk chunk = first;
      while (true) {
        String reason = OpenAiResponses.finishReason(chunk.getFinishReason());
        JsonObject ext = OpenAiResponses.extension(chunk);
        boolean ok;
        if (chat) {
          JsonObject delta = new JsonObject();
          delta.addProperty("content", chunk.getText());
          ok =
              sse.event(
                  GSON.toJson(
                      OpenAiResponses.chatChunk(
                          id, created, p.model(), delta, null, ext, usageField)));
          if (ok && reason != null) {
            ok =
                sse.event(
                    GSON.toJson(
                        OpenAiResponses.chatChunk(
                            id, created, p.model(), new JsonObject(), reason, ext, usageField)));
          }
        } else {
          ok =
              sse.event(
                  GSON.toJson(
                      OpenAiResponses.completionChunk(
                          id, created, p.model(), chunk.getText(), reason, ext, usageField)));
        }
        if (!ok) {
          return; // the client is gone; Sse cancelled the router call
        }
        if (reason != null) {
          if (usageField) {
            sse.event(GSON.toJson(OpenAiResponses.usageChunk(kind, id, created, p.model(), chunk)));
          }
          sse.event("[DONE]");
          return;
        }
        try {
          if (!rest.hasNext()) {
            break;
          }
          chunk = rest.next();
        } catch (StatusRuntimeException e) {
          if (!sse.clientGone()) {
            Errors.HttpError err = Errors.toHttp(Errors.fromRouter(e, id, p.request()));
            sse.event(GSON.toJson(err.toJson()));
          }
          return;
        }
        lease.charge(chunk.getTokenIdsCount());
      }
      // The router ended the stream without a last chunk: a bug somewhere upstream.
      sse.event(
          GSON.toJson(
              Errors.toHttp(
                      Status.INTERNAL
                          .withDescription("the router's stream ended without a finish reason")
                          .asRuntimeException())
                  .toJson()));
    }
  }

  private void collect(
      Exchange ex,
      OpenAiRequests.Kind kind,
      OpenAiRequests.Parsed p,
      String id,
      long created,
      GenerateChunk first,
      Iterator<GenerateChunk> rest,
      KeyLimits.Lease lease,
      Context.CancellableContext upstream)
      throws IOException {
    try (HeldJson held = new HeldJson(ex, upstream, scheduler, config.sseHeartbeat())) {
      JsonObject body;
      int status = 200;
      Errors.HttpError error = null;
      try {
        body = collectBody(kind, p, id, created, first, rest, lease);
      } catch (StatusRuntimeException e) {
        if (held.clientGone()) {
          return; // the client left; the router call was cancelled because of it
        }
        error = Errors.toHttp(Errors.fromRouter(e, id, p.request()));
        body = error.toJson();
        status = error.status();
      }
      if (held.stopUncommitted()) {
        if (error != null) {
          sendError(ex, error);
        } else {
          sendJson(ex, status, body);
        }
      } else {
        held.finish(GSON.toJson(body));
      }
    }
  }

  /** The whole completion object, from the first chunk to the one with a finish reason. */
  private static JsonObject collectBody(
      OpenAiRequests.Kind kind,
      OpenAiRequests.Parsed p,
      String id,
      long created,
      GenerateChunk first,
      Iterator<GenerateChunk> rest,
      KeyLimits.Lease lease) {
    GenerateChunk.Builder all = GenerateChunk.newBuilder();
    StringBuilder text = new StringBuilder();
    GenerateChunk chunk = first;
    while (true) {
      text.append(chunk.getText());
      all.addAllTokenIds(chunk.getTokenIdsList());
      all.addAllProvenanceValue(chunk.getProvenanceValueList());
      mergeRepeated(all, chunk);
      if (chunk.getFinishReason() != io.draftmesh.proto.v1.FinishReason.FINISH_REASON_UNSPECIFIED
          || !rest.hasNext()) {
        break;
      }
      chunk = rest.next();
      lease.charge(chunk.getTokenIdsCount());
    }
    String reason = OpenAiResponses.finishReason(chunk.getFinishReason());
    if (reason == null) {
      throw Status.INTERNAL
          .withDescription("the router's stream ended without a finish reason")
          .asRuntimeException();
    }
    all.setStats(chunk.getStats());
    JsonObject ext = OpenAiResponses.extension(all.build());
    return kind == OpenAiRequests.Kind.CHAT
        ? OpenAiResponses.chatCompletion(
            id, created, p.model(), text.toString(), reason, chunk, ext)
        : OpenAiResponses.completion(id, created, p.model(), text.toString(), reason, chunk, ext);
  }

  /** Appends repeated per-token fields other than ids and provenance (added by newer routers). */
  private static void mergeRepeated(GenerateChunk.Builder all, GenerateChunk chunk) {
    for (com.google.protobuf.Descriptors.FieldDescriptor f :
        GenerateChunk.getDescriptor().getFields()) {
      if (f.isRepeated()
          && f.getNumber() != GenerateChunk.TOKEN_IDS_FIELD_NUMBER
          && f.getNumber() != GenerateChunk.PROVENANCE_FIELD_NUMBER) {
        for (Object v : (java.util.List<?>) chunk.getField(f)) {
          all.addRepeatedField(f, v);
        }
      }
    }
  }

  /** A refusal that exists only in HTTP (no gRPC status): too large, wrong method. */
  private static final class HttpFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final transient Errors.HttpError error;

    HttpFailure(Errors.HttpError error) {
      super(error.message(), null, false, false);
      this.error = error;
    }
  }

  /** Deeper JSON than any request needs (messages[i].content[j].text is 5 levels). */
  static final int MAX_NESTING = 64;

  private JsonObject readJsonObject(Exchange ex) throws IOException {
    String type = ex.header("Content-Type");
    if (type != null
        && !type.split(";", 2)[0]
            .trim()
            .toLowerCase(java.util.Locale.ROOT)
            .equals("application/json")) {
      throw new HttpFailure(Errors.unsupportedMediaType(type));
    }
    int limit = config.maxBodyBytes();
    String length = ex.header("Content-Length");
    if (length != null) {
      try {
        long n = Long.parseLong(length.trim());
        if (n > limit) {
          throw new HttpFailure(Errors.tooLarge(n, limit));
        }
      } catch (NumberFormatException e) {
        throw Errors.invalid("Content-Length: " + length + " (expected: a number of bytes)");
      }
    }
    // The body arrives on the transport's event loop (no thread waits for a slow client's bytes
    // until its head is complete); this thread waits for the rest at most --body-timeout-ms.
    byte[] body;
    try {
      body = ex.readBody(limit, config.bodyTimeout());
    } catch (Exchange.BodyTooLarge e) {
      throw new HttpFailure(Errors.tooLarge(-1, limit));
    } catch (Exchange.BodyTimeout e) {
      ex.setHeader("Connection", "close");
      throw new HttpFailure(Errors.bodyTimeout(config.bodyTimeout()));
    }
    return parseJsonObject(body);
  }

  /**
   * A request body as one strict JSON object: at most {@link #MAX_NESTING} levels, nothing after
   * it, no lone surrogate; anything else is INVALID_ARGUMENT naming what was wrong.
   */
  static JsonObject parseJsonObject(byte[] body) {
    if (body.length == 0) {
      throw Errors.invalid("body: empty (expected: a JSON object)");
    }
    JsonElement root;
    try (JsonReader reader =
        new JsonReader(
            new InputStreamReader(
                new java.io.ByteArrayInputStream(body), StandardCharsets.UTF_8))) {
      reader.setStrictness(Strictness.STRICT);
      reader.setNestingLimit(MAX_NESTING);
      root = GSON.getAdapter(JsonElement.class).read(reader);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw Errors.invalid("body: data after the JSON value (expected: one JSON object)");
      }
    } catch (IOException | RuntimeException e) {
      if (e instanceof StatusRuntimeException sre) {
        throw sre;
      }
      String why = firstLine(e.getMessage());
      if (why.startsWith("Nesting limit")) {
        throw Errors.invalid(
            "body: JSON nested deeper than " + MAX_NESTING + " levels (expected: at most that)");
      }
      throw Errors.invalid(
          "body: not valid JSON (expected: a JSON object; "
              + (why.length() > 200 ? why.substring(0, 200) + "..." : why)
              + ")");
    }
    if (root == null || !root.isJsonObject()) {
      throw Errors.invalid(
          "body: " + OpenAiRequests.abbreviate(root) + " (expected: a JSON object)");
    }
    checkUnicode(root, "");
    return root.getAsJsonObject();
  }

  /**
   * Refuses a lone UTF-16 surrogate anywhere (JSON's {@code \ud800} escapes can spell one): it is
   * no character, and would reach the tokenizer as a replacement character or an encoding error.
   */
  private static void checkUnicode(JsonElement e, String path) {
    if (e.isJsonObject()) {
      for (Map.Entry<String, JsonElement> m : e.getAsJsonObject().entrySet()) {
        String field = path.isEmpty() ? m.getKey() : path + "." + m.getKey();
        checkString(m.getKey(), path.isEmpty() ? "body" : path);
        checkUnicode(m.getValue(), field);
      }
    } else if (e.isJsonArray()) {
      for (int i = 0; i < e.getAsJsonArray().size(); i++) {
        checkUnicode(e.getAsJsonArray().get(i), path + "[" + i + "]");
      }
    } else if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
      checkString(e.getAsString(), path);
    }
  }

  private static void checkString(String s, String field) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < s.length()
          && Character.isLowSurrogate(s.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw Errors.invalid(
            field
                + ": lone surrogate U+"
                + Integer.toHexString(c).toUpperCase(java.util.Locale.ROOT)
                + " at character "
                + i
                + " (expected: valid Unicode text)");
      }
    }
  }

  private static String firstLine(String s) {
    if (s == null) {
      return "malformed";
    }
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  private static void serveAsset(Exchange ex, String name, String type) throws IOException {
    byte[] bytes;
    try (InputStream in = HttpApi.class.getResourceAsStream("/playground/" + name)) {
      if (in == null) {
        sendError(ex, Errors.noRoute("GET", "/" + name));
        return;
      }
      bytes = in.readAllBytes();
    }
    ex.setHeader("Content-Type", type);
    ex.setHeader("Content-Security-Policy", CSP);
    ex.setHeader("Referrer-Policy", "no-referrer");
    ex.setHeader("Cache-Control", "no-cache");
    ex.respond(200, bytes);
  }

  private static void sendJson(Exchange ex, int status, JsonObject body) throws IOException {
    byte[] bytes = GSON.toJson(body).getBytes(StandardCharsets.UTF_8);
    ex.setHeader("Content-Type", "application/json");
    ex.respond(status, bytes);
  }

  private static void sendError(Exchange ex, Errors.HttpError e) {
    if (e.status() == 401) {
      ex.setHeader("WWW-Authenticate", "Bearer");
    }
    if (e.retryAfter() > 0) {
      ex.setHeader("Retry-After", Long.toString(e.retryAfter()));
    }
    try {
      sendJson(ex, e.status(), e.toJson());
    } catch (IOException | IllegalStateException alreadySent) {
      log.debug("error {} not sent: {}", e.status(), alreadySent.toString());
    }
  }
}
