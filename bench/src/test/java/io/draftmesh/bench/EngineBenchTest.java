package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The harness runs end to end and reports every figure. Timings are measured, never asserted. */
class EngineBenchTest {
  @TempDir Path cache;

  private static final List<String> STATS =
      List.of(
          "decode_ms",
          "decode_raw_ms",
          "verify_ms",
          "verify_raw_ms",
          "prefill_ms",
          "prefill_raw_ms",
          "prefill_256_raw_ms",
          "prefill_512_raw_ms");
  private static final List<String> DJL_ONLY =
      List.of(
          "matmul_floor_ms",
          "matmul_floor_bytes",
          "matmul_floor_gbps",
          "decode_over_matmul_floor",
          "decode_raw_over_matmul_floor");
  private static final List<String> NUMBERS =
      List.of(
          "params",
          "context_tokens",
          "weight_bytes_per_step",
          "kv_bytes_per_step",
          "verify_over_decode",
          "verify_over_decode_raw",
          "weight_gbps",
          "weight_bandwidth_fraction",
          "read_floor_ms",
          "decode_over_read_floor",
          "decode_raw_over_read_floor");

  @Test
  void quickJsonHasEveryFigureAsAPositiveFiniteNumber() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        EngineBench.run(
            new String[] {"--json", "--quick", "--cache-dir", cache.toString()},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(rc).as(err.toString(StandardCharsets.UTF_8)).isZero();

    JsonObject root =
        JsonParser.parseString(out.toString(StandardCharsets.UTF_8)).getAsJsonObject();
    assertThat(root.getAsJsonObject("machine").keySet())
        .contains("cores", "cpu", "jvm", "djl", "pytorch", "intra_op_threads", "interop_threads");
    JsonObject memory = root.getAsJsonObject("memory_bandwidth");
    assertThat(memory.keySet()).contains("djl_sum_gbps", "java_stream_gbps", "bytes", "reps");

    JsonObject models = root.getAsJsonObject("models");
    // --quick skips the zoo and the 110M model; both backends run the tiny one, the vector backend
    // with a float32 and a float16 KV pool.
    assertThat(models.keySet()).containsExactly("tiny_djl", "tiny_vector", "tiny_vector-kv16");
    assertThat(models.getAsJsonObject("tiny_vector-kv16").get("kv_bytes_per_step").getAsLong() * 2)
        .isEqualTo(models.getAsJsonObject("tiny_vector").get("kv_bytes_per_step").getAsLong());
    for (String name : models.keySet()) {
      JsonObject tiny = models.getAsJsonObject(name);
      assertThat(tiny.keySet())
          .as(name)
          .containsAll(NUMBERS)
          .containsAll(STATS)
          .contains("sessions");
      if (name.endsWith("_djl")) {
        assertThat(tiny.keySet()).containsAll(DJL_ONLY);
      } else {
        assertThat(tiny.keySet()).doesNotContainAnyElementsOf(DJL_ONLY);
      }
      assertThat(tiny.get("backend").getAsString()).isEqualTo(name.substring(5));
      for (String key : STATS) {
        assertThat(tiny.getAsJsonObject(key).keySet())
            .as(key)
            .contains("median", "p10", "p90", "min", "max", "n");
      }
      JsonObject sessions = tiny.getAsJsonObject("sessions");
      assertThat(sessions.keySet()).containsExactly("1", "4", "8");
      for (Map.Entry<String, JsonElement> e : sessions.entrySet()) {
        assertThat(e.getValue().getAsJsonObject().keySet())
            .as(e.getKey())
            .contains(
                "tokens_per_s",
                "speedup_vs_1",
                "avg_batch",
                "raw_tokens_per_s",
                "raw_speedup_vs_1");
      }
    }
    assertPositiveFinite("", root);
  }

  @Test
  void rejectsUnknownArguments() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        EngineBench.run(
            new String[] {"--fast"},
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown argument \"--fast\"");
    ByteArrayOutputStream badKv = new ByteArrayOutputStream();
    assertThat(
            EngineBench.run(
                new String[] {"--kv-dtypes", "float32,int8"},
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(badKv, true, StandardCharsets.UTF_8)))
        .isEqualTo(2);
    assertThat(badKv.toString(StandardCharsets.UTF_8))
        .contains("--kv-dtypes: int8 (expected: float32 or float16, comma-separated)");
  }

  /** Every number anywhere in the tree is finite and > 0. */
  private static void assertPositiveFinite(String path, JsonElement e) {
    if (e.isJsonObject()) {
      for (Map.Entry<String, JsonElement> child : e.getAsJsonObject().entrySet()) {
        assertPositiveFinite(path + "." + child.getKey(), child.getValue());
      }
    } else if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
      double v = e.getAsDouble();
      assertThat(Double.isFinite(v) && v > 0).as(path + " = " + v).isTrue();
    }
  }
}
