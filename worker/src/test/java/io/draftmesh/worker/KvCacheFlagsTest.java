package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The worker's kvcache flags: defaults, environment, and each bad value named. */
class KvCacheFlagsTest {
  @TempDir Path model;

  private WorkerConfig parse(Map<String, String> env, String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "--model";
    all[1] = model.toString();
    System.arraycopy(args, 0, all, 2, args.length);
    return WorkerConfig.parse(all, env, WorkerConfig.Role.TARGET);
  }

  @Test
  void noKvcacheUnlessAskedAndDefaultsOtherwise() {
    assertThat(parse(Map.of()).kvcache()).isNull();
    KvCacheLink.Settings s = parse(Map.of(), "--kvcache", "kv.ns.svc:50070").kvcache();
    assertThat(s.target()).isEqualTo("kv.ns.svc:50070");
    assertThat(s.deadline()).isEqualTo(Duration.ofMillis(500));
    assertThat(s.publishQueue()).isEqualTo(256);
    assertThat(s.replica()).isNull();
    KvCacheLink.Settings e =
        parse(
                Map.of(
                    "DRAFTMESH_KVCACHE", "kv:1",
                    "DRAFTMESH_KVCACHE_DEADLINE_MS", "80",
                    "DRAFTMESH_KVCACHE_REPLICA", "10.0.0.7:50051"),
                "--kvcache-publish-queue",
                "9")
            .kvcache();
    assertThat(e.deadline()).isEqualTo(Duration.ofMillis(80));
    assertThat(e.publishQueue()).isEqualTo(9);
    assertThat(e.replica()).isEqualTo("10.0.0.7:50051");
  }

  @Test
  void thePrefixCacheIsOnUnlessTurnedOffAndTheKvcacheNeedsIt() {
    assertThat(parse(Map.of()).prefixCache()).isTrue();
    assertThat(parse(Map.of(), "--prefix-cache", "off").prefixCache()).isFalse();
    assertThat(parse(Map.of("DRAFTMESH_PREFIX_CACHE", "on")).prefixCache()).isTrue();
    assertThatThrownBy(() -> parse(Map.of(), "--prefix-cache", "no"))
        .hasMessage("--prefix-cache: no (expected: on or off)");
    assertThatThrownBy(() -> parse(Map.of(), "--prefix-cache", "off", "--kvcache", "h:1"))
        .hasMessage(
            "--prefix-cache: off (expected: on with --kvcache, which fetches into the prefix"
                + " cache)");
  }

  @Test
  void badValuesNameTheFlagTheValueAndWhatWasExpected() {
    assertThatThrownBy(() -> parse(Map.of(), "--kvcache", "nohost"))
        .hasMessage("--kvcache: nohost (expected: HOST:PORT with a port in 1..65535)");
    assertThatThrownBy(() -> parse(Map.of(), "--kvcache", "h:0"))
        .hasMessageContaining("--kvcache: h:0 (expected: HOST:PORT");
    assertThatThrownBy(() -> parse(Map.of(), "--kvcache", "h:1", "--kvcache-deadline-ms", "0"))
        .hasMessageContaining("--kvcache-deadline-ms: 0 (expected: 1..60000)");
    assertThatThrownBy(
            () -> parse(Map.of(), "--kvcache", "h:1", "--kvcache-publish-queue", "100000"))
        .hasMessageContaining("--kvcache-publish-queue: 100000 (expected: 1..65536)");
    assertThatThrownBy(() -> parse(Map.of(), "--kvcache", "h:1", "--kvcache-replica", ":5"))
        .hasMessageContaining("--kvcache-replica: :5 (expected: HOST:PORT");
    assertThatThrownBy(() -> parse(Map.of("DRAFTMESH_KVCACHE_DEADLINE_MS", "50")))
        .hasMessage("DRAFTMESH_KVCACHE_DEADLINE_MS: 50 (expected: only together with --kvcache)");
  }
}
