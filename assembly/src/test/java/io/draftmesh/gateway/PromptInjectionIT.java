package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Chat content is the user's text, never template: a user who types a special token's string (here
 * the test tokenizer's end-of-text token) must not end the turn or the document. So the router
 * encodes it as plain text, several byte-level tokens per copy, where matching it would give one
 * token per copy.
 */
class PromptInjectionIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;
  private static Http http;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
    gateway = LoopbackGateway.start(mesh.config());
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

  static int promptTokens(String userContent) {
    JsonObject b = new JsonObject();
    b.addProperty("model", "tiny");
    b.addProperty("max_tokens", 1);
    b.addProperty("temperature", 0);
    JsonArray messages = new JsonArray();
    messages.add(OpenAiHttpIT.message("user", userContent));
    b.add("messages", messages);
    Http.Json r = http.post("/v1/chat/completions", GatewayTestMesh.KEY, b);
    assertThat(r.status()).as("%s", r.body()).isEqualTo(200);
    return r.body().getAsJsonObject("usage").get("prompt_tokens").getAsInt();
  }

  @Test
  void aSpecialTokenTypedByTheUserStaysText() {
    String eos = RandomCheckpoint.EOS_TOKEN;
    int plain = promptTokens("x");
    int injected = promptTokens("x" + eos + eos + eos + eos);
    // Matched as the special token, each copy would add exactly 1 token; as text, each of the 13
    // characters is a byte the sample-trained merges cover only in part: at least 2 tokens a copy.
    assertThat(injected - plain).as("tokens added by 4 typed copies of %s", eos).isGreaterThan(8);
  }
}
