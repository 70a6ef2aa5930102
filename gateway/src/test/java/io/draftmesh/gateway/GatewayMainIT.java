package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The entry points a launcher uses. */
class GatewayMainIT {
  @Test
  void startReturnsTheBoundPorts() throws Exception {
    try (GatewayServer g =
        GatewayMain.start(
            new String[] {"--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0"},
            Map.of("DRAFTMESH_API_KEYS", "launcher-key-1", "OTEL_SDK_DISABLED", "true"))) {
      GatewayServer.Ports p = g.ports();
      assertThat(p.grpc()).isPositive();
      assertThat(p.http()).isPositive().isNotEqualTo(p.grpc());
      Http.Json models = new Http(g).get("/v1/models", "launcher-key-1");
      assertThat(models.status()).isEqualTo(200);
      assertThat(
              models.body().getAsJsonArray("data").get(0).getAsJsonObject().get("id").getAsString())
          .isEqualTo("default");
    }
  }

  @Test
  void badFlagsExitWithTwoAndSayWhy() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        GatewayMain.run(
            new String[] {"--http-port", "-1"},
            Map.of("DRAFTMESH_API_KEYS", "launcher-key-1"),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("gateway: --http-port: -1 (expected: 0..65535)");
  }
}
