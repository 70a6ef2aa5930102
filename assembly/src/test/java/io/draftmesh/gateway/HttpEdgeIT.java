package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Hostile or broken HTTP input at the edge: each gets a 4xx with OpenAI's error shape ({@code
 * {"error": {"message", "type", "param", "code"}}}) and leaves nothing held (no session, no thread
 * still busy with it).
 */
class HttpEdgeIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;
  private static Http http;
  static final int MAX_BODY = 64 * 1024;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
    gateway =
        LoopbackGateway.start(
            mesh.config().withMaxBodyBytes(MAX_BODY).withBodyTimeout(Duration.ofMillis(500)));
    http = new Http(gateway);
  }

  @AfterAll
  static void stop() {
    gateway.close();
  }

  @AfterEach
  void nothingHeld() {
    mesh.assertFreed(Duration.ofSeconds(5));
  }

  static JsonObject error(int status, Http.Json r) {
    assertThat(r.status()).as("%s", r.raw().body()).isEqualTo(status);
    JsonObject e = r.body().getAsJsonObject("error");
    assertThat(e.keySet()).containsExactlyInAnyOrder("message", "type", "param", "code");
    assertThat(e.get("type").getAsString()).isEqualTo("invalid_request_error");
    return e;
  }

  @Test
  void aChunkedBodyOverTheLimitIs413() throws Exception {
    byte[] big = new byte[MAX_BODY * 4];
    java.util.Arrays.fill(big, (byte) ' ');
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create(
                            "http://127.0.0.1:" + gateway.ports().http() + "/v1/completions"))
                    .header("Authorization", "Bearer " + GatewayTestMesh.KEY)
                    .header("Content-Type", "application/json")
                    // an InputStream publisher has no length: the body goes chunked
                    .POST(
                        HttpRequest.BodyPublishers.ofInputStream(
                            () -> new java.io.ByteArrayInputStream(big)))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(413);
    assertThat(JsonParser.parseString(r.body()).getAsJsonObject().getAsJsonObject("error"))
        .isNotNull();
  }

  @Test
  void deepJsonNestingIs400() {
    String deep = "[".repeat(20_000) + "]".repeat(20_000);
    JsonObject e =
        error(
            400,
            http.post(
                "/v1/completions",
                GatewayTestMesh.KEY,
                "{\"model\":\"tiny\",\"max_tokens\":2,\"prompt\":" + deep + "}"));
    assertThat(e.get("message").getAsString()).contains("nest");
  }

  @Test
  void aLoneSurrogateIs400NamingTheField() {
    JsonObject e =
        error(
            400,
            http.post(
                "/v1/completions",
                GatewayTestMesh.KEY,
                "{\"model\":\"tiny\",\"max_tokens\":2,\"prompt\":\"abc\\ud800def\"}"));
    assertThat(e.get("message").getAsString()).startsWith("prompt: ").contains("surrogate");
    assertThat(e.get("param").getAsString()).isEqualTo("prompt");
  }

  @Test
  void aWrongContentTypeIs415() {
    Http.Json r =
        new Http(gateway)
            .send(
                http.request("/v1/completions", GatewayTestMesh.KEY)
                    .header("Content-Type", "text/plain")
                    .POST(
                        HttpRequest.BodyPublishers.ofString(
                            "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":2}"))
                    .build());
    JsonObject e = error(415, r);
    assertThat(e.get("message").getAsString())
        .isEqualTo("Content-Type: text/plain (expected: application/json)");
  }

  @Test
  void negativeTemperatureAndTopPAboveOneAre400() {
    JsonObject t = OpenAiHttpIT.completion(2, false);
    t.addProperty("temperature", -0.5);
    assertThat(
            error(400, http.post("/v1/completions", GatewayTestMesh.KEY, t))
                .get("param")
                .getAsString())
        .isEqualTo("temperature");
    JsonObject p = OpenAiHttpIT.completion(2, false);
    p.addProperty("top_p", 1.5);
    assertThat(
            error(400, http.post("/v1/completions", GatewayTestMesh.KEY, p))
                .get("param")
                .getAsString())
        .isEqualTo("top_p");
  }

  @Test
  void aClientTricklingItsBodyGets408() throws Exception {
    try (Socket s = new Socket("127.0.0.1", gateway.ports().http())) {
      OutputStream out = s.getOutputStream();
      out.write(
          ("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                  + GatewayTestMesh.KEY
                  + "\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
              .getBytes(StandardCharsets.US_ASCII));
      out.flush();
      InputStream in = s.getInputStream();
      // One space at a time until the gateway answers (it must, after its 500 ms body timeout;
      // at this pace the body would take 60 000 * 20 ms). The loop waits on the answer.
      s.setSoTimeout(20);
      ByteArrayOutputStream answer = new ByteArrayOutputStream();
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (System.nanoTime() < deadline) {
        try {
          int b = in.read();
          if (b < 0) {
            break;
          }
          answer.write(b);
          if (answer.toString(StandardCharsets.ISO_8859_1).contains("}}")) {
            break;
          }
        } catch (java.net.SocketTimeoutException nothingYet) {
          try {
            out.write(' ');
            out.flush();
          } catch (IOException closed) {
            break;
          }
        }
      }
      String text = answer.toString(StandardCharsets.UTF_8);
      assertThat(text).startsWith("HTTP/1.1 408");
      assertThat(text).contains("\"error\"").contains("body: not complete within 500 ms");
    }
  }
}
