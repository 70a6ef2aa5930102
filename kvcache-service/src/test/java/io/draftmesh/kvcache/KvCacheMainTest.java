package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The entry point and the bench's flag handling and output (nothing timed here). */
class KvCacheMainTest {
  @Test
  void helpPrintsTheFlagsAndBadFlagsExitWithTwoNamingTheFlag() throws Exception {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream p = new PrintStream(err, true, StandardCharsets.UTF_8);
    assertThat(KvCacheMain.run(new String[] {"--help"}, Map.of(), p)).isZero();
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("--data-dir DIR", "DRAFTMESH_KVCACHE_MEMORY_BYTES");
    err.reset();
    assertThat(KvCacheMain.run(new String[] {"--memory-bytes", "x"}, Map.of(), p)).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8))
        .contains("kvcache-service: --memory-bytes: x (expected: a byte size");
  }

  @Test
  void benchFlagsAreCheckedAndItsReportRendersAsATableAndJson() {
    assertThat(KvCacheBench.parse(new String[] {"--quick", "--streams", "3", "--warmup", "4"}))
        .isEqualTo(
            new KvCacheBench.Options(false, 3, 64, 2, 4, KvCacheBench.LLAMA_110M_BLOCK_BYTES));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        KvCacheBench.run(
            new String[] {"--streams", "0"},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--streams: 0 (expected: 1..64)");

    KvCacheBench.Report r =
        new KvCacheBench.Report(
            new KvCacheBench.Options(true, 2, 64, 5, 1, 1000),
            new KvCacheBench.Throughput(1.5, 100, 1, 2.5),
            new KvCacheBench.Throughput(2.25, 100, 1, 2),
            new KvCacheBench.Throughput(0.5, 100, 1, 4),
            new KvCacheBench.Throughput(0.75, 100, 1, 3),
            new KvCacheBench.Latency(120, 100, 300, 1000),
            new KvCacheBench.Latency(80, 70, 90, 1000),
            128);
    assertThat(KvCacheBench.table(r))
        .contains(
            "put GB/s, memory tier          1.50 (2.5 CPU s/GB)",
            "lookup us, 128 blocks hit      120 [100-300]");
    assertThat(KvCacheBench.json(r))
        .contains(
            "\"memory_get_gb_per_s\": 2.25",
            "\"disk_put_cpu_s_per_gb\": 4.0",
            "\"lookup_miss_us\"",
            "\"p90\": 90.0");
  }
}
