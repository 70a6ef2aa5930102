package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class KvCacheConfigTest {
  @Test
  void defaults() {
    KvCacheConfig c = KvCacheConfig.parse(new String[0], Map.of());
    assertThat(c.port()).isEqualTo(50070);
    assertThat(c.dataDir()).isNull();
    assertThat(c.diskEnabled()).isFalse();
    assertThat(c.memoryBytes()).isEqualTo(1L << 30);
    assertThat(c.diskBytes()).isEqualTo(16L << 30);
    assertThat(c.maxChunkBytes()).isEqualTo(1 << 20);
    assertThat(c.maxBlockBytes()).isEqualTo(64 << 20);
    assertThat(c.defaultLease()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.maxLease()).isEqualTo(Duration.ofMinutes(10));
    assertThat(c.drainGrace()).isEqualTo(Duration.ofSeconds(10));
  }

  @Test
  void flagsWinOverEnvironmentAndSizesTakeSuffixes() {
    KvCacheConfig c =
        KvCacheConfig.parse(
            new String[] {"--memory-bytes", "512m", "--data-dir=/var/kv", "--lease-ms", "5000"},
            Map.of(
                "DRAFTMESH_KVCACHE_MEMORY_BYTES", "2g",
                "DRAFTMESH_KVCACHE_DISK_BYTES", "3g",
                "DRAFTMESH_KVCACHE_PORT", "6000"));
    assertThat(c.memoryBytes()).isEqualTo(512L << 20);
    assertThat(c.diskBytes()).isEqualTo(3L << 30);
    assertThat(c.port()).isEqualTo(6000);
    assertThat(c.dataDir()).isEqualTo(Path.of("/var/kv"));
    assertThat(c.diskEnabled()).isTrue();
    assertThat(c.defaultLease()).isEqualTo(Duration.ofSeconds(5));
  }

  @Test
  void everyErrorNamesTheFlagTheValueAndTheExpectation() {
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--memory-bytes", "lots"}, Map.of()))
        .hasMessage("--memory-bytes: lots (expected: a byte size such as 1073741824, 512m or 1g)");
    assertThatThrownBy(
            () -> KvCacheConfig.parse(new String[0], Map.of("DRAFTMESH_KVCACHE_DISK_BYTES", "-1")))
        .hasMessage(
            "DRAFTMESH_KVCACHE_DISK_BYTES: -1 (expected: a byte size such as 1073741824, 512m or 1g)");
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--port", "70000"}, Map.of()))
        .hasMessage("--port: 70000 (expected: 0..65535)");
    assertThatThrownBy(
            () -> KvCacheConfig.parse(new String[] {"--max-chunk-bytes", "100"}, Map.of()))
        .hasMessage("--max-chunk-bytes: 100 (expected: 1k..64m)");
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--lease-ms", "700000"}, Map.of()))
        .hasMessage("--lease-ms: 700000 (expected: 1..--max-lease-ms 600000)");
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--memory-bytes", "1k"}, Map.of()))
        .hasMessage(
            "--memory-bytes: 1024 (expected: at least one 64k page when there is no disk tier)");
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--disk"}, Map.of()))
        .hasMessageStartingWith("--disk: unknown flag (expected one of: --port, --data-dir");
    assertThatThrownBy(() -> KvCacheConfig.parse(new String[] {"--segment-bytes", "1m"}, Map.of()))
        .hasMessage("--segment-bytes: 1048576 (expected: --max-block-bytes + 1m .. 64g)");
  }

  @Test
  void aMemoryOnlyTierNeedsNoDataDirButADiskTierDoes() {
    KvCacheConfig c =
        KvCacheConfig.parse(new String[] {"--data-dir", "/d", "--disk-bytes", "0"}, Map.of());
    assertThat(c.diskEnabled()).isFalse();
    KvCacheConfig memoryZero =
        KvCacheConfig.parse(new String[] {"--data-dir", "/d", "--memory-bytes", "0"}, Map.of());
    assertThat(memoryZero.diskEnabled()).isTrue();
    assertThat(memoryZero.memoryBytes()).isZero();
  }

  @Test
  void usageListsEveryFlagWithItsVariable() {
    assertThat(KvCacheConfig.usage())
        .contains("--data-dir DIR", "DRAFTMESH_KVCACHE_DATA_DIR", "--max-chunk-bytes BYTES");
  }
}
