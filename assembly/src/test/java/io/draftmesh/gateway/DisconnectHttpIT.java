package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A non-streaming client that goes away mid-generation: the gateway notices (its padding write
 * fails) and cancels the router call, so the sessions are freed long before the generation could
 * have finished. A short generation still answers a plain JSON body.
 */
class DisconnectHttpIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
    gateway = LoopbackGateway.start(mesh.config().withSseHeartbeat(Duration.ofMillis(100)));
  }

  @AfterAll
  static void stop() {
    gateway.close();
  }

  static JsonObject completion(int maxTokens) {
    JsonObject b = OpenAiHttpIT.completion(maxTokens, false);
    b.getAsJsonObject("draftmesh").addProperty("strategy", "autoregressive");
    return b;
  }

  @Test
  void aNonStreamingClientThatLeavesCancelsTheGeneration() throws Exception {
    byte[] body = completion(6000).toString().getBytes(StandardCharsets.UTF_8);
    try (Socket s = new Socket("127.0.0.1", gateway.ports().http())) {
      OutputStream out = s.getOutputStream();
      out.write(
          ("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                  + GatewayTestMesh.KEY
                  + "\r\nContent-Type: application/json\r\nContent-Length: "
                  + body.length
                  + "\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII));
      out.write(body);
      out.flush();
      // The first padding byte arrives once the generation has run for a heartbeat: it runs.
      int first = s.getInputStream().read();
      assertThat(first).isEqualTo('H'); // "HTTP/1.1 200 ..."
      assertThat(mesh.activeTargetSessions()).as("generating").isEqualTo(1);
    } // the client goes away without reading the answer
    // 6000 tokens take far longer: only the cancel frees the session this fast.
    mesh.assertFreed(Duration.ofSeconds(3));
  }

  @Test
  void aLongNonStreamingAnswerIsStillOneJsonValue() {
    Http.Json r = new Http(gateway).post("/v1/completions", GatewayTestMesh.KEY, completion(200));
    assertThat(r.status()).isEqualTo(200);
    assertThat(r.raw().body()).startsWith(" "); // padded while it ran (200 tokens > 100 ms)
    JsonObject o = JsonParser.parseString(r.raw().body()).getAsJsonObject();
    assertThat(o.getAsJsonObject("usage").get("completion_tokens").getAsInt()).isEqualTo(200);
    mesh.assertFreed(Duration.ofSeconds(5));
  }
}
