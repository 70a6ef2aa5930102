package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
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
            new KvCacheBench.Options(
                false, List.of(3), 64, 2, 4, KvCacheBench.LLAMA_110M_BLOCK_BYTES));
    assertThat(KvCacheBench.parse(new String[] {"--streams", "1,2,8"}).streams())
        .containsExactly(1, 2, 8);
    assertThat(KvCacheBench.parse(new String[0]).streams()).containsExactly(1, 2, 4);
    for (String bad : new String[] {"0", "1,1", "2,", "x"}) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteArrayOutputStream err = new ByteArrayOutputStream();
      int rc =
          KvCacheBench.run(
              new String[] {"--streams", bad},
              new PrintStream(out, true, StandardCharsets.UTF_8),
              new PrintStream(err, true, StandardCharsets.UTF_8));
      assertThat(rc).as(bad).isEqualTo(2);
      assertThat(err.toString(StandardCharsets.UTF_8))
          .contains("--streams: " + bad + " (expected: N[,N...], each 1..64, none twice)");
    }

    KvCacheBench.Report r =
        new KvCacheBench.Report(
            new KvCacheBench.Options(true, List.of(1, 2), 64, 5, 1, 1000),
            List.of(
                new KvCacheBench.Row(
                    1,
                    new KvCacheBench.Throughput(0.75, 100, 1, 2.5, 1.2),
                    new KvCacheBench.Throughput(0.5, 100, 1, 2, 1),
                    new KvCacheBench.Throughput(0.25, 100, 1, 4, 2),
                    new KvCacheBench.Throughput(0.5, 100, 1, 3, 1.5)),
                new KvCacheBench.Row(
                    2,
                    new KvCacheBench.Throughput(1.5, 100, 1, 2.5, 1.2),
                    new KvCacheBench.Throughput(2.25, 100, 1, 2, 1),
                    new KvCacheBench.Throughput(0.5, 100, 1, 4, 2),
                    new KvCacheBench.Throughput(0.75, 100, 1, 3, 1.5))),
            new KvCacheBench.Latency(120, 100, 300, 1000),
            new KvCacheBench.Latency(80, 70, 90, 1000),
            128);
    assertThat(KvCacheBench.table(r))
        .contains(
            "1        memory  0.75      2.5 [1.2]          0.50      2.0 [1.0]",
            "2        memory  1.50      2.5 [1.2]          2.25      2.0 [1.0]",
            "2        disk    0.50      4.0 [2.0]          0.75      3.0 [1.5]",
            "lookup us, 128 blocks hit: 120 [100-300]; miss: 80 [70-90]");
    assertThat(KvCacheBench.json(r))
        .contains(
            "\"streams\": [\n    1,\n    2\n  ]",
            "\"memory_get\": {\n        \"gb_per_s\": 2.25",
            "\"transfer_cpu_s_per_gb\": 2.0",
            "\"lookup_miss_us\"",
            "\"p90\": 90.0");
  }

  @Test
  void aRoundFarSlowerThanItsPhasesMedianIsReportedAsAStall() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    KvCacheBench.Stalls stalls =
        new KvCacheBench.Stalls(
            new PrintStream(err, true, StandardCharsets.UTF_8), "2 streams, memory");
    for (long ms : new long[] {100, 110, 90, 2000, 105}) {
      assertThat(stalls.round("put", ms * 1_000_000)).isEqualTo(ms * 1_000_000);
    }
    for (long ms : new long[] {100, 300, 120}) { // 3x the median: not a stall
      stalls.round("get", ms * 1_000_000);
    }
    stalls.report();
    assertThat(err.toString(StandardCharsets.UTF_8))
        .isEqualTo(
            "kvcache bench: 2 streams, memory put: timed round 4 took 2.00 s (median 0.11 s): the"
                + " process stalled or was stopped; that row's GB/s is lowered by it\n");
  }
}
