package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.proto.v1.GenerateRequest;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code draftmesh.kv_compression} over real HTTP: the options reach the router's request as sent,
 * and a bad one is a 400 in OpenAI's error shape that never reaches the router.
 */
class KvCompressionOverHttpIT {
  private static final String KEY = "kv-http-key-0123";

  @Test
  void prefixTokensReachTheRouterAndABadOneIs400NamingIt() throws Exception {
    try (HeldRouter router = new HeldRouter();
        GatewayServer g =
            LoopbackGateway.start(GatewayConfig.of("127.0.0.1:" + router.port(), List.of(KEY)))) {
      router.release(); // every generation ends at once: this test is about the request
      Http http = new Http(g);

      Http.Json served =
          http.post(
              "/v1/completions", KEY, completion("{\"method\":\"snapkv\",\"prefix_tokens\":3}"));
      assertThat(served.status()).as("%s", served.body()).isEqualTo(200);
      assertThat(router.requests()).hasSize(1);
      GenerateRequest asked = router.requests().get(0);
      assertThat(asked.getKvCompression().getMethod()).isEqualTo("snapkv");
      assertThat(asked.getKvCompression().getPrefixTokens()).isEqualTo(3);

      Http.Json refused = http.post("/v1/completions", KEY, completion("{\"prefix_tokens\":-2}"));
      assertThat(refused.status()).as("%s", refused.body()).isEqualTo(400);
      JsonObject e = refused.body().getAsJsonObject("error");
      assertThat(e.get("type").getAsString()).isEqualTo("invalid_request_error");
      assertThat(e.get("code").getAsString()).isEqualTo("invalid_value");
      assertThat(e.get("param").getAsString()).isEqualTo("draftmesh.kv_compression.prefix_tokens");
      assertThat(e.get("message").getAsString())
          .isEqualTo("draftmesh.kv_compression.prefix_tokens: -2 (expected: 0..1048576)");
      assertThat(router.started()).isEqualTo(1);
    }
  }

  private static JsonObject completion(String kvCompression) {
    JsonObject b = new JsonObject();
    b.addProperty("model", GatewayConfig.DEFAULT_MODEL);
    b.addProperty("prompt", "In the beginning was the word");
    b.addProperty("max_tokens", 2);
    JsonObject dm = new JsonObject();
    dm.add("kv_compression", JsonParser.parseString(kvCompression));
    b.add("draftmesh", dm);
    return b;
  }
}
