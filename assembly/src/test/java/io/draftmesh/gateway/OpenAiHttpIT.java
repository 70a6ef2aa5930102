package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI-compatible HTTP API in front of the real mesh. Response shapes are checked field by
 * field against the OpenAI API reference (completions, chat completions, their stream chunks,
 * models, errors).
 */
class OpenAiHttpIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
    gateway = LoopbackGateway.start(mesh.config().withLimits(4, 0, 0));
    http = new Http(gateway);
  }

  @AfterAll
  static void stop() {
    gateway.close();
  }

  @AfterEach
  void everySessionClosed() {
    mesh.assertFreed(Duration.ofSeconds(5));
  }

  static JsonObject completion(int maxTokens, boolean stream) {
    JsonObject b = new JsonObject();
    b.addProperty("model", "tiny");
    b.addProperty("prompt", "In the beginning");
    b.addProperty("max_tokens", maxTokens);
    b.addProperty("temperature", 0);
    b.addProperty("stream", stream);
    JsonObject dm = new JsonObject();
    dm.addProperty("strategy", "speculative");
    dm.addProperty("k", 4);
    dm.addProperty("ignore_eos", true);
    b.add("draftmesh", dm);
    return b;
  }

  static JsonObject chat(int maxTokens, boolean stream) {
    JsonObject b = completion(maxTokens, stream);
    b.remove("prompt");
    JsonArray messages = new JsonArray();
    messages.add(message("system", "Answer briefly."));
    messages.add(message("user", "Say something."));
    b.add("messages", messages);
    return b;
  }

  static JsonObject message(String role, String content) {
    JsonObject m = new JsonObject();
    m.addProperty("role", role);
    m.addProperty("content", content);
    return m;
  }

  /** The fields every completion object has: id with its prefix, object, created, model. */
  static void assertHead(JsonObject o, String idPrefix, String object) {
    assertThat(o.get("id").getAsString())
        .startsWith(idPrefix)
        .hasSizeGreaterThan(idPrefix.length());
    assertThat(o.get("object").getAsString()).isEqualTo(object);
    long created = o.get("created").getAsLong();
    assertThat(created)
        .isBetween(System.currentTimeMillis() / 1000 - 120, System.currentTimeMillis() / 1000 + 1);
    assertThat(o.get("model").getAsString()).isEqualTo("tiny");
    assertThat(o.has("system_fingerprint")).isTrue();
  }

  /** OpenAI's usage object; returns its {@code prompt_tokens_details.cached_tokens}. */
  static int assertUsage(JsonObject usage, int completionTokens) {
    assertThat(usage.keySet())
        .containsExactlyInAnyOrder(
            "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details");
    int prompt = usage.get("prompt_tokens").getAsInt();
    assertThat(prompt).isPositive();
    assertThat(usage.get("completion_tokens").getAsInt()).isEqualTo(completionTokens);
    assertThat(usage.get("total_tokens").getAsInt()).isEqualTo(prompt + completionTokens);
    JsonObject details = usage.getAsJsonObject("prompt_tokens_details");
    assertThat(details.keySet()).containsExactly("cached_tokens");
    int cached = details.get("cached_tokens").getAsInt();
    assertThat(cached).isBetween(0, prompt);
    return cached;
  }

  /** The draftmesh extension: token ids with one provenance each, and the running stats. */
  static int assertExtension(JsonObject dm) {
    JsonArray ids = dm.getAsJsonArray("token_ids");
    JsonArray prov = dm.getAsJsonArray("provenance");
    assertThat(prov.size()).isEqualTo(ids.size());
    for (JsonElement p : prov) {
      assertThat(p.getAsString()).isIn("draft_accepted", "target", "ngram_accepted");
    }
    JsonObject stats = dm.getAsJsonObject("stats");
    assertThat(stats.get("strategy").getAsString()).isEqualTo("speculative");
    assertThat(stats.get("target_model").getAsString()).isEqualTo("tiny-llama");
    assertThat(stats.has("acceptance_rate")).isTrue();
    assertThat(stats.has("mean_accepted_length")).isTrue();
    return ids.size();
  }

  @Test
  void completionWithoutStreaming() {
    Http.Json r = http.post("/v1/completions", GatewayTestMesh.KEY, completion(12, false));
    assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
    assertThat(r.raw().headers().firstValue("Content-Type")).hasValue("application/json");
    JsonObject o = r.body();
    assertThat(o.keySet())
        .containsExactlyInAnyOrder(
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "choices",
            "usage",
            "draftmesh");
    assertHead(o, "cmpl-", "text_completion");
    JsonArray choices = o.getAsJsonArray("choices");
    assertThat(choices).hasSize(1);
    JsonObject c = choices.get(0).getAsJsonObject();
    assertThat(c.keySet()).containsExactlyInAnyOrder("text", "index", "logprobs", "finish_reason");
    assertThat(c.get("text").isJsonPrimitive()).isTrue();
    assertThat(c.get("index").getAsInt()).isZero();
    assertThat(c.get("logprobs").isJsonNull()).isTrue();
    assertThat(c.get("finish_reason").getAsString()).isEqualTo("length");
    assertUsage(o.getAsJsonObject("usage"), 12);
    assertThat(assertExtension(o.getAsJsonObject("draftmesh"))).isEqualTo(12);
    // The target's prompt: every token either reused from a cache or prefilled; no kvcache here.
    JsonObject stats = o.getAsJsonObject("draftmesh").getAsJsonObject("stats");
    assertThat(
            stats.get("cached_prompt_tokens").getAsInt()
                + stats.get("prefilled_prompt_tokens").getAsInt())
        .isEqualTo(o.getAsJsonObject("usage").get("prompt_tokens").getAsInt());
    assertThat(stats.get("fetched_prompt_tokens").getAsInt()).isZero();
  }

  @Test
  void cachedPromptTokensAreReportedInUsageAsOpenAiDoes() throws IOException {
    // A prompt no other test sends, long enough for full KV blocks of 16 tokens.
    JsonObject body = completion(4, false);
    body.addProperty(
        "prompt",
        "Cache probe. " + "In the beginning was the word, and the word was long. ".repeat(4));
    Http.Json cold = http.post("/v1/completions", GatewayTestMesh.KEY, body);
    assertThat(cold.status()).as("%s", cold.body()).isEqualTo(200);
    assertThat(assertUsage(cold.body().getAsJsonObject("usage"), 4)).as("cold").isZero();

    // Again: the target worker's prefix cache holds every full block but the last prompt token's.
    Http.Json warm = http.post("/v1/completions", GatewayTestMesh.KEY, body);
    JsonObject usage = warm.body().getAsJsonObject("usage");
    int cached = assertUsage(usage, 4);
    JsonObject stats = warm.body().getAsJsonObject("draftmesh").getAsJsonObject("stats");
    assertThat(cached)
        .isPositive()
        .isEqualTo(stats.get("cached_prompt_tokens").getAsInt())
        .isEqualTo(
            usage.get("prompt_tokens").getAsInt()
                - stats.get("prefilled_prompt_tokens").getAsInt());

    // Streamed: the last chunk's usage says the same.
    body.addProperty("stream", true);
    JsonObject so = new JsonObject();
    so.addProperty("include_usage", true);
    body.add("stream_options", so);
    List<String> events;
    try (Http.Stream s = http.stream("/v1/completions", GatewayTestMesh.KEY, body)) {
      assertThat(s.response.statusCode()).isEqualTo(200);
      events = s.rest();
    }
    assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
    JsonObject last = JsonParser.parseString(events.get(events.size() - 2)).getAsJsonObject();
    assertThat(last.getAsJsonArray("choices")).isEmpty();
    assertThat(assertUsage(last.getAsJsonObject("usage"), 4)).isEqualTo(cached);
  }

  @Test
  void completionStreamsSseChunksThenUsageThenDone() throws IOException {
    JsonObject body = completion(16, true);
    JsonObject so = new JsonObject();
    so.addProperty("include_usage", true);
    body.add("stream_options", so);
    List<String> events;
    try (Http.Stream s = http.stream("/v1/completions", GatewayTestMesh.KEY, body)) {
      assertThat(s.response.statusCode()).isEqualTo(200);
      assertThat(s.response.headers().firstValue("Content-Type"))
          .hasValueSatisfying(v -> assertThat(v).startsWith("text/event-stream"));
      events = s.rest();
    }
    assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
    List<JsonObject> chunks = new ArrayList<>();
    for (String e : events.subList(0, events.size() - 1)) {
      chunks.add(JsonParser.parseString(e).getAsJsonObject());
    }
    assertThat(chunks).hasSizeGreaterThanOrEqualTo(3); // content, last content, usage
    String id = chunks.get(0).get("id").getAsString();
    int tokens = 0;
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < chunks.size() - 1; i++) {
      JsonObject c = chunks.get(i);
      assertHead(c, "cmpl-", "text_completion");
      assertThat(c.get("id").getAsString()).isEqualTo(id);
      assertThat(c.get("usage").isJsonNull()).isTrue(); // include_usage: null until the last
      JsonObject choice = c.getAsJsonArray("choices").get(0).getAsJsonObject();
      assertThat(choice.keySet())
          .containsExactlyInAnyOrder("text", "index", "logprobs", "finish_reason");
      text.append(choice.get("text").getAsString());
      boolean last = i == chunks.size() - 2;
      if (last) {
        assertThat(choice.get("finish_reason").getAsString()).isEqualTo("length");
      } else {
        assertThat(choice.get("finish_reason").isJsonNull()).isTrue();
      }
      tokens += assertExtension(c.getAsJsonObject("draftmesh"));
    }
    assertThat(tokens).isEqualTo(16);
    JsonObject usage = chunks.get(chunks.size() - 1);
    assertHead(usage, "cmpl-", "text_completion");
    assertThat(usage.getAsJsonArray("choices")).isEmpty();
    assertUsage(usage.getAsJsonObject("usage"), 16);

    // Streaming and not give the same text for the same greedy request.
    Http.Json whole = http.post("/v1/completions", GatewayTestMesh.KEY, completion(16, false));
    assertThat(text.toString())
        .isEqualTo(
            whole
                .body()
                .getAsJsonArray("choices")
                .get(0)
                .getAsJsonObject()
                .get("text")
                .getAsString());
  }

  @Test
  void chatCompletionWithoutStreaming() {
    Http.Json r = http.post("/v1/chat/completions", GatewayTestMesh.KEY, chat(10, false));
    assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
    JsonObject o = r.body();
    assertThat(o.keySet())
        .containsExactlyInAnyOrder(
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "choices",
            "usage",
            "draftmesh");
    assertHead(o, "chatcmpl-", "chat.completion");
    JsonObject c = o.getAsJsonArray("choices").get(0).getAsJsonObject();
    assertThat(c.keySet())
        .containsExactlyInAnyOrder("index", "message", "logprobs", "finish_reason");
    JsonObject m = c.getAsJsonObject("message");
    assertThat(m.get("role").getAsString()).isEqualTo("assistant");
    assertThat(m.get("content").isJsonPrimitive()).isTrue();
    assertThat(m.get("refusal").isJsonNull()).isTrue();
    assertThat(c.get("finish_reason").getAsString()).isEqualTo("length");
    assertUsage(o.getAsJsonObject("usage"), 10);
    assertThat(assertExtension(o.getAsJsonObject("draftmesh"))).isEqualTo(10);
  }

  @Test
  void chatCompletionStreamsRoleThenContentThenFinish() throws IOException {
    List<String> events;
    try (Http.Stream s = http.stream("/v1/chat/completions", GatewayTestMesh.KEY, chat(10, true))) {
      assertThat(s.response.statusCode()).isEqualTo(200);
      events = s.rest();
    }
    assertThat(events.get(events.size() - 1)).isEqualTo("[DONE]");
    List<JsonObject> chunks = new ArrayList<>();
    for (String e : events.subList(0, events.size() - 1)) {
      chunks.add(JsonParser.parseString(e).getAsJsonObject());
    }
    assertThat(chunks).hasSizeGreaterThanOrEqualTo(3);
    for (JsonObject c : chunks) {
      assertHead(c, "chatcmpl-", "chat.completion.chunk");
      assertThat(c.has("usage")).as("no usage field without include_usage").isFalse();
      JsonObject choice = c.getAsJsonArray("choices").get(0).getAsJsonObject();
      assertThat(choice.keySet())
          .containsExactlyInAnyOrder("index", "delta", "logprobs", "finish_reason");
    }
    JsonObject firstDelta =
        chunks.get(0).getAsJsonArray("choices").get(0).getAsJsonObject().getAsJsonObject("delta");
    assertThat(firstDelta.get("role").getAsString()).isEqualTo("assistant");
    assertThat(firstDelta.get("content").getAsString()).isEmpty();
    int tokens = 0;
    for (JsonObject c : chunks.subList(1, chunks.size() - 1)) {
      JsonObject choice = c.getAsJsonArray("choices").get(0).getAsJsonObject();
      assertThat(choice.getAsJsonObject("delta").keySet()).containsExactly("content");
      assertThat(choice.get("finish_reason").isJsonNull()).isTrue();
      tokens += assertExtension(c.getAsJsonObject("draftmesh"));
    }
    assertThat(tokens).isEqualTo(10);
    JsonObject last =
        chunks.get(chunks.size() - 1).getAsJsonArray("choices").get(0).getAsJsonObject();
    assertThat(last.getAsJsonObject("delta").keySet()).isEmpty();
    assertThat(last.get("finish_reason").getAsString()).isEqualTo("length");
  }

  @Test
  void listsModels() {
    Http.Json r = http.get("/v1/models", GatewayTestMesh.KEY);
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.body().get("object").getAsString()).isEqualTo("list");
    JsonArray data = r.body().getAsJsonArray("data");
    assertThat(data).hasSize(1);
    JsonObject m = data.get(0).getAsJsonObject();
    assertThat(m.get("id").getAsString()).isEqualTo("tiny");
    assertThat(m.get("object").getAsString()).isEqualTo("model");
    assertThat(m.get("created").getAsLong()).isPositive();
    assertThat(m.get("owned_by").getAsString()).isEqualTo("draftmesh");

    Http.Json one = http.get("/v1/models/tiny", GatewayTestMesh.KEY);
    assertThat(one.status()).isEqualTo(200);
    assertThat(one.body().get("id").getAsString()).isEqualTo("tiny");
    assertError(
        http.get("/v1/models/nope", GatewayTestMesh.KEY),
        404,
        "invalid_request_error",
        "model_not_found");
  }

  /** OpenAI's error shape: {"error": {"message", "type", "param", "code"}}. */
  static JsonObject assertError(Http.Json r, int status, String type, String code) {
    assertThat(r.status()).as("%s", r.body()).isEqualTo(status);
    assertThat(r.body().keySet()).containsExactly("error");
    JsonObject e = r.body().getAsJsonObject("error");
    assertThat(e.keySet()).containsExactlyInAnyOrder("message", "type", "param", "code");
    assertThat(e.get("message").getAsString()).isNotBlank();
    assertThat(e.get("type").getAsString()).isEqualTo(type);
    if (code == null) {
      assertThat(e.get("code").isJsonNull()).isTrue();
    } else {
      assertThat(e.get("code").getAsString()).isEqualTo(code);
    }
    return e;
  }

  @Test
  void authFailuresAre401() {
    Http.Json missing = http.post("/v1/completions", null, completion(4, false));
    JsonObject e = assertError(missing, 401, "invalid_request_error", "invalid_api_key");
    assertThat(e.get("message").getAsString()).contains("authorization: missing");
    assertThat(missing.raw().headers().firstValue("WWW-Authenticate")).hasValue("Bearer");

    Http.Json wrong = http.post("/v1/chat/completions", "wrong-key-123456", chat(4, false));
    assertError(wrong, 401, "invalid_request_error", "invalid_api_key");
    assertError(
        http.get("/v1/models", "wrong-key-123456"),
        401,
        "invalid_request_error",
        "invalid_api_key");
  }

  @Test
  void invalidRequestsNameTheField() {
    JsonObject zero = completion(0, false);
    JsonObject e =
        assertError(
            http.post("/v1/completions", GatewayTestMesh.KEY, zero),
            400,
            "invalid_request_error",
            "invalid_value");
    assertThat(e.get("message").getAsString()).isEqualTo("max_tokens: 0 (expected: 1..8192)");
    assertThat(e.get("param").getAsString()).isEqualTo("max_tokens");

    JsonObject hot = completion(4, false);
    hot.addProperty("temperature", 3);
    assertThat(
            assertError(
                    http.post("/v1/completions", GatewayTestMesh.KEY, hot),
                    400,
                    "invalid_request_error",
                    "invalid_value")
                .get("message")
                .getAsString())
        .isEqualTo("temperature: 3 (expected: 0..2)");

    JsonObject n = completion(4, false);
    n.addProperty("n", 2);
    assertThat(
            assertError(
                    http.post("/v1/completions", GatewayTestMesh.KEY, n),
                    400,
                    "invalid_request_error",
                    "invalid_value")
                .get("message")
                .getAsString())
        .isEqualTo("n: 2 (expected: 1)");

    JsonObject unknown = completion(4, false);
    unknown.getAsJsonObject("draftmesh").addProperty("kk", 3);
    assertThat(
            assertError(
                    http.post("/v1/completions", GatewayTestMesh.KEY, unknown),
                    400,
                    "invalid_request_error",
                    "invalid_value")
                .get("message")
                .getAsString())
        .startsWith("draftmesh.kk: unknown option");

    JsonObject noMessages = chat(4, false);
    noMessages.add("messages", new JsonArray());
    assertThat(
            assertError(
                    http.post("/v1/chat/completions", GatewayTestMesh.KEY, noMessages),
                    400,
                    "invalid_request_error",
                    "invalid_value")
                .get("param")
                .getAsString())
        .isEqualTo("messages");

    assertThat(
            assertError(
                    http.post("/v1/completions", GatewayTestMesh.KEY, "{\"model\": "),
                    400,
                    "invalid_request_error",
                    "invalid_value")
                .get("message")
                .getAsString())
        .startsWith("body: not valid JSON");

    // Refused by the router, mapped in the same place: an unknown model is a 404.
    JsonObject model = completion(4, false);
    model.addProperty("model", "no-such-model");
    assertThat(
            assertError(
                    http.post("/v1/completions", GatewayTestMesh.KEY, model),
                    404,
                    "invalid_request_error",
                    "model_not_found")
                .get("message")
                .getAsString())
        .startsWith("target: no-such-model");

    Http.Json route = http.get("/v1/nothing-here", GatewayTestMesh.KEY);
    assertError(route, 404, "invalid_request_error", "unknown_url");
    Http.Json method = http.get("/v1/completions", GatewayTestMesh.KEY);
    assertError(method, 405, "invalid_request_error", "method_not_allowed");
    assertThat(method.raw().headers().firstValue("Allow")).hasValue("POST");
  }

  @Test
  void disconnectMidStreamCancelsTheRouterStream() throws IOException {
    JsonObject body = completion(6000, true);
    body.getAsJsonObject("draftmesh").addProperty("strategy", "autoregressive");
    try (Http.Stream s = http.stream("/v1/completions", GatewayTestMesh.KEY, body)) {
      assertThat(s.response.statusCode()).isEqualTo(200);
      for (int i = 0; i < 3; i++) {
        assertThat(s.next()).isNotNull();
      }
      assertThat(mesh.activeTargetSessions()).as("a session is open while streaming").isEqualTo(1);
    } // closes the connection mid-stream
    // 6000 tokens take far longer: only the disconnect, noticed by the gateway and passed on as a
    // cancellation through the router, frees the session this fast.
    mesh.assertFreed(Duration.ofSeconds(3));
  }

  @Test
  void servesThePlayground() {
    HttpResponse<String> page = http.getText("/");
    assertThat(page.statusCode()).isEqualTo(200);
    assertThat(page.headers().firstValue("Content-Type")).hasValue("text/html; charset=utf-8");
    assertThat(page.headers().firstValue("Content-Security-Policy"))
        .hasValueSatisfying(v -> assertThat(v).contains("default-src 'self'"));
    assertThat(page.body()).contains("<script src=\"app.js\"", "id=\"entropy-chart\"");
    assertThat(page.body()).doesNotContain("http://", "https://"); // no CDN
    assertThat(http.getText("/app.js").statusCode()).isEqualTo(200);
    assertThat(http.getText("/style.css").statusCode()).isEqualTo(200);
    assertThat(http.getText("/healthz").body()).contains("ok");
  }
}
