package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class RouterConfigTest {
  @Test
  void flagsWinOverEnvironmentAndDefaultsFillTheRest() {
    RouterConfig c =
        RouterConfig.parse(
            new String[] {
              "--target",
              "a:1,b:2",
              "--draft=dns:///drafts:7000",
              "--pool",
              "big=c:3",
              "--draft-timeout-ms",
              "150",
              "--tokenizers",
              "models,x/tokenizer.json"
            },
            Map.of(
                "DRAFTMESH_ROUTER_PORT",
                "6000",
                "DRAFTMESH_ROUTER_TARGET",
                "ignored:1",
                "DRAFTMESH_ROUTER_POOLS",
                "small=d:4;tiny=e:5"));
    assertThat(c.port()).isEqualTo(6000);
    assertThat(c.pools())
        .containsEntry("target", "a:1,b:2")
        .containsEntry("draft", "dns:///drafts:7000")
        .containsEntry("big", "c:3")
        .containsEntry("small", "d:4")
        .containsEntry("tiny", "e:5");
    assertThat(c.defaultTarget()).isEqualTo("target");
    assertThat(c.defaultDraft()).isEqualTo("draft");
    assertThat(c.draftTimeout()).isEqualTo(Duration.ofMillis(150));
    assertThat(c.tokenizers()).containsExactly(Path.of("models"), Path.of("x/tokenizer.json"));
    assertThat(c.defaultMaxTokens()).isEqualTo(256);
  }

  @Test
  void badFlagsNameTheFlagTheValueAndWhatWasExpected() {
    assertThatThrownBy(() -> RouterConfig.parse(new String[] {}, Map.of()))
        .hasMessageContaining("--target: missing");
    assertThatThrownBy(() -> RouterConfig.parse(new String[] {"--target", "nohost"}, Map.of()))
        .hasMessageContaining("nohost (expected: host:port");
    assertThatThrownBy(
            () -> RouterConfig.parse(new String[] {"--target", "a:1", "--port", "x"}, Map.of()))
        .hasMessageContaining("--port: x (expected: an integer)");
    assertThatThrownBy(
            () -> RouterConfig.parse(new String[] {"--target", "a:1", "--bogus", "1"}, Map.of()))
        .hasMessageContaining("--bogus: unknown flag");
    assertThatThrownBy(
            () ->
                RouterConfig.parse(
                    new String[] {"--target", "a:1", "--default-draft", "zzz"}, Map.of()))
        .hasMessageContaining("--default-draft: zzz");
    assertThatThrownBy(
            () ->
                RouterConfig.parse(new String[] {"--target", "a:1", "--max-tokens", "0"}, Map.of()))
        .hasMessageContaining("--max-tokens: 0 (expected: >= 1)");
  }

  @Test
  void keepaliveFlagsAndVariablesAreReadAndChecked() {
    RouterConfig c =
        RouterConfig.parse(
            new String[] {"--target", "a:1", "--keepalive-seconds", "15"},
            Map.of(
                "DRAFTMESH_ROUTER_KEEPALIVE_TIMEOUT_SECONDS", "3",
                "DRAFTMESH_ROUTER_MAX_CONNECTION_AGE_SECONDS", "600"));
    assertThat(c.keepalive())
        .isEqualTo(
            new io.draftmesh.flags.Keepalive(
                java.time.Duration.ofSeconds(15),
                java.time.Duration.ofSeconds(3),
                java.time.Duration.ofMinutes(10)));
    assertThat(RouterConfig.parse(new String[] {"--target", "a:1"}, Map.of()).keepalive())
        .isEqualTo(io.draftmesh.flags.Keepalive.DEFAULT);
    assertThatThrownBy(
            () ->
                RouterConfig.parse(
                    new String[] {"--target", "a:1", "--keepalive-seconds", "2"}, Map.of()))
        .isInstanceOf(RouterConfig.ConfigException.class)
        .hasMessage("--keepalive-seconds: 2 (expected: 10..86400)");
  }

  @Test
  void poolSpecsAreStaticListsOrOneTargetUri() {
    assertThat(WorkerPool.parseSpec("a:1, b:2")).containsExactly("a:1", "b:2");
    assertThat(WorkerPool.parseSpec("dns:///workers.ns.svc:50051"))
        .containsExactly("dns:///workers.ns.svc:50051");
    assertThatThrownBy(() -> WorkerPool.parseSpec("a:0")).hasMessageContaining("1..65535");
    assertThatThrownBy(() -> WorkerPool.parseSpec("dns:///a:1,b:2"))
        .hasMessageContaining("one target URI");
  }

  @Test
  void theDraftSeedIsNeverTheTargetSeed() {
    for (long seed : List.of(0L, 1L, -1L, 42L, Long.MAX_VALUE)) {
      assertThat(RouterService.mix(seed)).isNotEqualTo(seed);
    }
  }
}
