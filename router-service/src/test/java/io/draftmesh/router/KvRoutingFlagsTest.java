package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The router's KV-aware placement flags, and how often dns:/// pools are resolved again. */
class KvRoutingFlagsTest {
  private static RouterConfig parse(String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "--target";
    all[1] = "a:1,b:2";
    System.arraycopy(args, 0, all, 2, args.length);
    return RouterConfig.parse(all, Map.of());
  }

  @Test
  void roundRobinUnlessAKvcacheIsGiven() {
    RouterConfig plain = parse();
    assertThat(plain.kvcache()).isNull();
    assertThat(plain.kvcacheDeadline()).isEqualTo(Duration.ofMillis(50));
    assertThat(plain.kvRouteWeight()).isEqualTo(1.0);
    RouterConfig kv =
        parse("--kvcache", "kv:50070", "--kvcache-deadline-ms", "20", "--kv-route-weight", "4");
    assertThat(kv.kvcache()).isEqualTo("kv:50070");
    assertThat(kv.kvcacheDeadline()).isEqualTo(Duration.ofMillis(20));
    assertThat(kv.kvRouteWeight()).isEqualTo(4.0);
    assertThat(kv.withDraftTimeout(Duration.ofSeconds(1)).kvcache()).isEqualTo("kv:50070");
  }

  @Test
  void badValuesAreNamed() {
    assertThatThrownBy(() -> parse("--kvcache", "kv"))
        .hasMessage("--kvcache: kv (expected: host:port with a port in 1..65535)");
    assertThatThrownBy(() -> parse("--kvcache", "a:1,b:2"))
        .hasMessage("--kvcache: a:1,b:2 (expected: one host:port)");
    assertThatThrownBy(() -> parse("--kvcache", "kv:1", "--kvcache-deadline-ms", "0"))
        .hasMessageContaining("--kvcache-deadline-ms: 0 (expected: 1..60000)");
    assertThatThrownBy(() -> parse("--kv-route-weight", "-1"))
        .hasMessage("--kv-route-weight: -1.0 (expected: a number in 0..1000000)");
    assertThatThrownBy(() -> parse("--kv-route-weight", "x"))
        .hasMessage("--kv-route-weight: x (expected: a number in 0..1000000)");
  }

  @Test
  void dnsPoolsAreResolvedAgainEveryFiveSecondsUnlessConfigured() {
    assertThat(parse().resolveInterval()).isEqualTo(Duration.ofSeconds(5));
    assertThat(parse("--resolve-interval-ms", "500").resolveInterval())
        .isEqualTo(Duration.ofMillis(500));
    RouterConfig fromEnv =
        RouterConfig.parse(
            new String[] {"--target", "dns:///w:1"},
            Map.of("DRAFTMESH_ROUTER_RESOLVE_INTERVAL_MS", "250"));
    assertThat(fromEnv.resolveInterval()).isEqualTo(Duration.ofMillis(250));
    assertThat(fromEnv.withTokenizers(java.util.List.of()).resolveInterval())
        .isEqualTo(Duration.ofMillis(250));
    assertThatThrownBy(() -> parse("--resolve-interval-ms", "50"))
        .hasMessage("--resolve-interval-ms: 50 (expected: 100..3600000)");
    assertThatThrownBy(() -> parse("--target", "dns:///w"))
        .hasMessage("pool target: dns:///w (expected: dns:///name:port)");
  }
}
