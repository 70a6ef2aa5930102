package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GatewayConfigTest {
  private static final Map<String, String> KEYS =
      Map.of("DRAFTMESH_API_KEYS", "alpha-key-1,beta-key-22");

  @Test
  void defaultsFlagsAndVariables() {
    GatewayConfig c = GatewayConfig.parse(new String[0], KEYS);
    assertThat(c.grpcPort()).isEqualTo(50050);
    assertThat(c.httpPort()).isEqualTo(8080);
    assertThat(c.router()).isEqualTo("localhost:50051");
    assertThat(c.apiKeys()).containsExactly("alpha-key-1", "beta-key-22");
    assertThat(c.servedModels()).extracting(GatewayConfig.ModelSpec::id).containsExactly("default");
    assertThat(c.upstreamTimeout()).isEqualTo(Duration.ofMinutes(5));
    assertThat(c.httpThreads()).isEqualTo(64);
    assertThat(c.httpQueue()).isEqualTo(GatewayConfig.DEFAULT_HTTP_QUEUE).isEqualTo(16);

    Map<String, String> env =
        Map.of(
            "DRAFTMESH_API_KEYS", "alpha-key-1",
            "DRAFTMESH_GATEWAY_HTTP_PORT", "9000",
            "DRAFTMESH_GATEWAY_TOKENS_PER_MINUTE", "600",
            "DRAFTMESH_GATEWAY_HTTP_QUEUE", "0",
            "DRAFTMESH_GATEWAY_MODELS", "id=a,target=t1,draft=d1;b");
    GatewayConfig d =
        GatewayConfig.parse(new String[] {"--http-port", "9001", "--router=dns:///router:1"}, env);
    assertThat(d.httpPort()).isEqualTo(9001); // the flag wins
    assertThat(d.router()).isEqualTo("dns:///router:1");
    assertThat(d.tokensPerMinutePerKey()).isEqualTo(600);
    assertThat(d.tokenBurst()).isEqualTo(600);
    assertThat(d.httpQueue()).isZero();
    assertThat(d.models())
        .containsExactly(
            new GatewayConfig.ModelSpec("a", "t1", "d1", null, null),
            new GatewayConfig.ModelSpec("b", "b", "", null, null));
  }

  @Test
  void httpConnectionTimersAreReadAndChecked() {
    GatewayConfig c = GatewayConfig.parse(new String[0], KEYS);
    assertThat(c.headerTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(c.idleTimeout()).isEqualTo(Duration.ofSeconds(60));
    assertThat(c.writeTimeout()).isEqualTo(Duration.ofSeconds(60));
    java.util.Map<String, String> env = new java.util.HashMap<>(KEYS);
    env.put("DRAFTMESH_GATEWAY_IDLE_TIMEOUT_MS", "5000");
    GatewayConfig d =
        GatewayConfig.parse(
            new String[] {"--header-timeout-ms", "2500", "--write-timeout-ms", "7000"}, env);
    assertThat(d.headerTimeout()).isEqualTo(Duration.ofMillis(2500));
    assertThat(d.idleTimeout()).isEqualTo(Duration.ofSeconds(5));
    assertThat(d.writeTimeout()).isEqualTo(Duration.ofSeconds(7));
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--header-timeout-ms", "0"}, KEYS))
        .isInstanceOf(GatewayConfig.ConfigException.class)
        .hasMessage("--header-timeout-ms: 0 (expected: > 0)");
    assertThat(GatewayConfig.usage())
        .contains("--header-timeout-ms")
        .contains("DRAFTMESH_GATEWAY_IDLE_TIMEOUT_MS")
        .contains("--write-timeout-ms");
  }

  @Test
  void keepaliveFlagsAndVariablesAreReadAndChecked() {
    java.util.Map<String, String> env = new java.util.HashMap<>(KEYS);
    env.put("DRAFTMESH_GATEWAY_MAX_CONNECTION_AGE_SECONDS", "900");
    GatewayConfig c = GatewayConfig.parse(new String[] {"--keepalive-timeout-seconds", "4"}, env);
    assertThat(c.keepalive())
        .isEqualTo(
            new io.draftmesh.flags.Keepalive(
                Duration.ofSeconds(30), Duration.ofSeconds(4), Duration.ofMinutes(15)));
    assertThat(GatewayConfig.parse(new String[0], KEYS).keepalive())
        .isEqualTo(io.draftmesh.flags.Keepalive.DEFAULT);
    assertThatThrownBy(
            () -> GatewayConfig.parse(new String[] {"--max-connection-age-seconds", "-1"}, KEYS))
        .isInstanceOf(GatewayConfig.ConfigException.class)
        .hasMessage("--max-connection-age-seconds: -1 (expected: 0 (never) or 10..604800)");
  }

  @Test
  void keysFromAFileAndNeverPrinted(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("keys");
    Files.writeString(file, "# team keys\nfile-key-123\n\n  other-key-456  \n");
    GatewayConfig c =
        GatewayConfig.parse(new String[] {"--api-keys-file", file.toString()}, Map.of());
    assertThat(c.apiKeys()).containsExactly("file-key-123", "other-key-456");
    assertThat(c.toString()).doesNotContain("file-key-123").contains("apiKeys=2 (not shown)");
  }

  @Test
  void errorsNameTheFlagTheValueAndWhatWasExpected() {
    assertThatThrownBy(() -> GatewayConfig.parse(new String[0], Map.of()))
        .hasMessageStartingWith("DRAFTMESH_API_KEYS: no API key configured (expected:");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--http-port", "70000"}, KEYS))
        .hasMessage("--http-port: 70000 (expected: 0..65535)");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--http-queue", "-1"}, KEYS))
        .hasMessage("--http-queue: -1 (expected: 0..10000)");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--grpc-port", "x"}, KEYS))
        .hasMessage("--grpc-port: x (expected: an integer)");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--nope", "1"}, KEYS))
        .hasMessageStartingWith("--nope: unknown flag (expected one of: --host, --grpc-port");
    assertThatThrownBy(
            () -> GatewayConfig.parse(new String[0], Map.of("DRAFTMESH_API_KEYS", "short")))
        .hasMessage(
            "API key #1: 5 characters (expected: at least 8 printable ASCII characters, no"
                + " spaces)");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--model", "id=a,colour=red"}, KEYS))
        .hasMessage(
            "--model: key colour in id=a,colour=red (expected: id, target, draft, dir, chat)");
    assertThatThrownBy(
            () -> GatewayConfig.parse(new String[] {"--model", "a", "--model", "a"}, KEYS))
        .hasMessage("--model: id a given twice (expected: unique ids)");
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--model", "id=a,chat=jinja"}, KEYS))
        .hasMessage("--model: chat=jinja (expected: default, chatml or llama3)");
  }

  @Test
  void anonymousOnlyWhenAskedAndWithoutKeys() {
    GatewayConfig open = GatewayConfig.parse(new String[] {"--allow-anonymous", "true"}, Map.of());
    assertThat(open.allowAnonymous()).isTrue();
    assertThatThrownBy(() -> GatewayConfig.parse(new String[] {"--allow-anonymous", "true"}, KEYS))
        .hasMessage(
            "--allow-anonymous: true with 2 API keys configured (expected: one or the other)");
    assertThat(GatewayConfig.of("localhost:1", List.of()).allowAnonymous()).isTrue();
  }
}
