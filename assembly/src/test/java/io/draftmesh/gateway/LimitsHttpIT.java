package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Per-key limits and the body size limit over HTTP, each on a gateway configured for it. */
class LimitsHttpIT {
  private static GatewayTestMesh mesh;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
  }

  @AfterEach
  void everySessionClosed() {
    mesh.assertFreed(Duration.ofSeconds(5));
  }

  @Test
  void tokenRateOverTheKeyLimitIs429() {
    try (GatewayServer g = LoopbackGateway.start(mesh.config().withLimits(8, 20, 20))) {
      Http http = new Http(g);
      Http.Json first =
          http.post("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(20, false));
      assertThat(first.status()).as("%s", first.body()).isEqualTo(200);

      Http.Json second =
          http.post("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(4, false));
      JsonObject e = OpenAiHttpIT.assertError(second, 429, "tokens", "rate_limit_exceeded");
      assertThat(e.get("message").getAsString())
          .startsWith("completion tokens: key-1 used its 20 tokens per minute");
      assertThat(second.raw().headers().firstValue("Retry-After"))
          .hasValueSatisfying(v -> assertThat(Long.parseLong(v)).isBetween(1L, 60L));

      // Per key: the other key is unaffected.
      assertThat(
              http.post(
                      "/v1/completions",
                      GatewayTestMesh.OTHER_KEY,
                      OpenAiHttpIT.completion(4, false))
                  .status())
          .isEqualTo(200);
    }
  }

  @Test
  void concurrencyOverTheKeyLimitIs429() throws IOException {
    try (GatewayServer g = LoopbackGateway.start(mesh.config().withLimits(1, 0, 0))) {
      Http http = new Http(g);
      JsonObject longOne = OpenAiHttpIT.completion(6000, true);
      try (Http.Stream open = http.stream("/v1/completions", GatewayTestMesh.KEY, longOne)) {
        assertThat(open.next()).isNotNull();
        Http.Json second =
            http.post("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(4, false));
        JsonObject e = OpenAiHttpIT.assertError(second, 429, "requests", "rate_limit_exceeded");
        assertThat(e.get("message").getAsString())
            .isEqualTo(
                "concurrent requests: key-1 has 1 in flight, running or waiting (expected: at most 1 per API key;"
                    + " retry when one ends)");
      }
      // The slot is given back once the stream is gone.
      long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
      int status;
      do {
        status =
            http.post("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(4, false))
                .status();
      } while (status == 429 && System.nanoTime() < deadline);
      assertThat(status).isEqualTo(200);
    }
  }

  @Test
  void bodyOverTheLimitIs413() {
    try (GatewayServer g = LoopbackGateway.start(mesh.config().withMaxBodyBytes(2048))) {
      Http http = new Http(g);
      JsonObject big = OpenAiHttpIT.completion(4, false);
      big.addProperty("prompt", "x".repeat(4096));
      JsonObject e =
          OpenAiHttpIT.assertError(
              http.post("/v1/completions", GatewayTestMesh.KEY, big),
              413,
              "invalid_request_error",
              "request_too_large");
      assertThat(e.get("message").getAsString()).endsWith("bytes (expected: at most 2048)");
      // Just under the limit is fine.
      assertThat(
              http.post("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(4, false))
                  .status())
          .isEqualTo(200);
    }
  }
}
