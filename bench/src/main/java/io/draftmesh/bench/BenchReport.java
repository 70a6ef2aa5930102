package io.draftmesh.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/** Renders a {@link EngineBench.Report} as an aligned text table or as one JSON object. */
final class BenchReport {
  private BenchReport() {}

  // ---- table ----

  static String table(EngineBench.Report r) {
    List<ModelBench.Result> models = r.models();
    List<String[]> rows = new ArrayList<>();
    String[] header = new String[models.size() + 2];
    header[0] = "metric";
    for (int i = 0; i < models.size(); i++) {
      header[i + 1] = models.get(i).label();
    }
    header[header.length - 1] = "target / notes";
    rows.add(header);

    ModelBench.Result first = models.get(0);
    row(rows, models, "parameters", m -> String.format(Locale.ROOT, "%.1fM", m.params() / 1e6), "");
    row(
        rows,
        models,
        "context (tokens)",
        m -> Integer.toString(m.context()),
        "prefill length; decode/verify run at it");
    row(
        rows,
        models,
        "decode ms, runtime",
        m -> stats(m.decodeRuntime()),
        "propose(1); median [p10-p90]");
    row(
        rows,
        models,
        "decode ms, raw forward",
        m -> stats(m.decodeRaw()),
        "LlamaModel.forward, 1 row");
    row(
        rows,
        models,
        "  runtime overhead ms",
        m -> num(m.runtimeOverheadMs()),
        "runtime - raw medians");
    row(
        rows,
        models,
        "verify ms (5 tok), runtime",
        m -> stats(m.verifyRuntime()),
        "verify(k=4): 5 fed, 5 logit rows");
    row(rows, models, "verify ms (5 tok), raw", m -> stats(m.verifyRaw()), "");
    row(
        rows,
        models,
        "verify / decode",
        m -> ratio(m.verifyOverDecode()) + " (raw " + ratio(m.rawVerifyOverDecode()) + ")",
        "ideal ~1x");
    row(
        rows,
        models,
        "prefill ms, runtime",
        m -> stats(m.prefillRuntime()),
        first.context() + " tokens, 1 logit row");
    row(rows, models, "prefill ms, raw forward", m -> stats(m.prefillRaw()), "");
    if (models.size() > 1) {
      String[] c = blank(models.size());
      c[0] = "draft/target c";
      c[models.size()] = num(c(models, false)) + " (raw " + num(c(models, true)) + ")";
      c[c.length - 1] =
          models.get(0).label() + " decode / " + models.get(models.size() - 1).label() + " decode";
      rows.add(c);
    }
    for (ModelBench.Batch b : first.batches()) {
      int n = b.sessions();
      String note =
          n == 1
              ? "runtime, median [min-max]; b = sequences per step"
              : n == 8
                  ? "target >= " + ratio(EngineBench.TARGET_BATCH8_SPEEDUP) + " of 1 session"
                  : "";
      row(
          rows,
          models,
          "decode tok/s, " + n + " session" + (n == 1 ? "" : "s"),
          m -> batch(m, n),
          note);
    }
    for (ModelBench.Batch b : first.batches()) {
      int n = b.sessions();
      row(
          rows,
          models,
          "  raw forward tok/s, " + n + " seq" + (n == 1 ? "" : "s"),
          m -> rawBatch(m, n),
          n == 1 ? "one batched forward, median [p10-p90]: the ceiling" : "");
    }
    row(
        rows,
        models,
        "weight MB read / decode step",
        m -> num(m.weightBytesPerStep() / 1e6),
        "fp32 params minus embedding gather");
    row(
        rows,
        models,
        "KV MB gathered / decode step",
        m -> num(m.kvBytesPerStep() / 1e6),
        "K+V of all layers at this context");
    row(
        rows,
        models,
        "weight GB/s in decode",
        m -> num(m.weightGbps()) + " (" + pct(m.weightGbps() / r.memory().referenceGbps()) + ")",
        "% of measured memory bandwidth (faster method)");
    row(
        rows,
        models,
        "matmul floor ms",
        m -> stats(m.matmulFloor()),
        "Linear.linear only, same shapes");
    row(
        rows,
        models,
        "matmul floor GB/s",
        m -> num(m.floorGbps()) + " (" + pct(m.floorGbps() / r.memory().referenceGbps()) + ")",
        "weights / floor time");
    row(
        rows,
        models,
        "decode / matmul floor",
        m -> ratio(m.decodeOverFloor()) + " (raw " + ratio(m.rawDecodeOverFloor()) + ")",
        "target <= " + ratio(EngineBench.TARGET_DECODE_OVER_FLOOR));

    StringBuilder sb = new StringBuilder();
    EngineBench.Machine mc = r.machine();
    sb.append(
        String.format(
            Locale.ROOT,
            "DraftMesh engine bench%s%n"
                + "machine: %d cores (%s), %s, DJL %s, PyTorch %s, threads %s intra / %s interop,"
                + " fp32%n"
                + "memory bandwidth: %s GB/s DJL sum over %d MiB fp32, %s GB/s Java 1-thread long[]"
                + " read (best of %d reps, at start and end)%n%n",
            r.options().quick() ? " (--quick)" : "",
            mc.cores(),
            mc.cpu(),
            mc.jvm(),
            mc.djl(),
            mc.pytorch(),
            mc.intraThreads(),
            mc.interopThreads(),
            num(r.memory().djlSumGbps()),
            r.memory().bytes() >> 20,
            num(r.memory().javaStreamGbps()),
            r.memory().reps()));
    sb.append(align(rows));
    return sb.toString();
  }

  /** Rows of cells as left-aligned columns two spaces apart, one line per row. */
  static String align(List<String[]> rows) {
    int columns = 0;
    for (String[] row : rows) {
      columns = Math.max(columns, row.length);
    }
    int[] width = new int[columns];
    for (String[] row : rows) {
      for (int i = 0; i < row.length; i++) {
        width[i] = Math.max(width[i], row[i].length());
      }
    }
    StringBuilder sb = new StringBuilder();
    for (String[] row : rows) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < row.length; i++) {
        line.append(row[i]);
        if (i < row.length - 1) {
          line.append(" ".repeat(width[i] - row[i].length() + 2));
        }
      }
      sb.append(line.toString().stripTrailing()).append('\n');
    }
    return sb.toString();
  }

  private static void row(
      List<String[]> rows,
      List<ModelBench.Result> models,
      String metric,
      Function<ModelBench.Result, String> cell,
      String note) {
    String[] row = blank(models.size());
    row[0] = metric;
    for (int i = 0; i < models.size(); i++) {
      row[i + 1] = cell.apply(models.get(i));
    }
    row[row.length - 1] = note;
    rows.add(row);
  }

  private static String[] blank(int models) {
    String[] row = new String[models + 2];
    java.util.Arrays.fill(row, "");
    return row;
  }

  private static String batch(ModelBench.Result m, int sessions) {
    ModelBench.Batch b = m.batch(sessions);
    String s =
        num(b.tokensPerSec().median())
            + " ["
            + num(b.tokensPerSec().min())
            + "-"
            + num(b.tokensPerSec().max())
            + "]";
    if (sessions > 1) {
      s += " " + ratio(m.batchSpeedup(sessions));
    }
    return s + " b=" + String.format(Locale.ROOT, "%.1f", b.avgBatch());
  }

  private static String rawBatch(ModelBench.Result m, int sessions) {
    String s = stats(m.batch(sessions).rawTokensPerSec());
    return sessions > 1 ? s + " " + ratio(m.rawBatchSpeedup(sessions)) : s;
  }

  private static double c(List<ModelBench.Result> models, boolean raw) {
    ModelBench.Result draft = models.get(0);
    ModelBench.Result target = models.get(models.size() - 1);
    return raw
        ? draft.decodeRaw().median() / target.decodeRaw().median()
        : draft.decodeRuntime().median() / target.decodeRuntime().median();
  }

  static String stats(Stats s) {
    return num(s.median()) + " [" + num(s.p10()) + "-" + num(s.p90()) + "]";
  }

  /** Three significant digits, no exponent. */
  static String num(double v) {
    double a = Math.abs(v);
    String f = a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : a >= 1 ? "%.2f" : "%.3f";
    return String.format(Locale.ROOT, f, v);
  }

  static String ratio(double v) {
    return String.format(Locale.ROOT, "%.2fx", v);
  }

  private static String pct(double v) {
    return String.format(Locale.ROOT, "%.0f%%", v * 100);
  }

  // ---- JSON ----

  static String json(EngineBench.Report r) {
    JsonObject root = new JsonObject();
    root.addProperty("bench", "engine");
    root.addProperty("quick", r.options().quick());
    root.add("machine", r.machine().toJson());

    JsonObject memory = new JsonObject();
    memory.addProperty("bytes", r.memory().bytes());
    memory.addProperty("reps", r.memory().reps());
    memory.addProperty("djl_sum_gbps", r.memory().djlSumGbps());
    memory.addProperty("java_stream_gbps", r.memory().javaStreamGbps());
    memory.addProperty("reference_gbps", r.memory().referenceGbps());
    root.add("memory_bandwidth", memory);

    JsonObject models = new JsonObject();
    for (ModelBench.Result m : r.models()) {
      models.add(m.name(), model(m, r.memory()));
    }
    root.add("models", models);
    if (r.models().size() > 1) {
      root.addProperty("draft_target_c", c(r.models(), false));
      root.addProperty("draft_target_c_raw", c(r.models(), true));
    }
    JsonObject targets = new JsonObject();
    targets.addProperty("batch8_speedup_min", EngineBench.TARGET_BATCH8_SPEEDUP);
    targets.addProperty("decode_over_matmul_floor_max", EngineBench.TARGET_DECODE_OVER_FLOOR);
    root.add("targets", targets);
    return toJson(root);
  }

  /** Pretty-printed JSON; non-finite numbers are written (as NaN/Infinity), never hidden. */
  static String toJson(JsonObject root) {
    return new GsonBuilder()
        .setPrettyPrinting()
        .serializeSpecialFloatingPointValues()
        .create()
        .toJson(root);
  }

  private static JsonObject model(ModelBench.Result m, MemoryBandwidth.Result memory) {
    JsonObject o = new JsonObject();
    o.addProperty("params", m.params());
    o.addProperty("context_tokens", m.context());
    o.addProperty("weight_bytes_per_step", m.weightBytesPerStep());
    o.addProperty("kv_bytes_per_step", m.kvBytesPerStep());
    o.add("decode_ms", statsJson(m.decodeRuntime()));
    o.add("decode_raw_ms", statsJson(m.decodeRaw()));
    o.add("verify_ms", statsJson(m.verifyRuntime()));
    o.add("verify_raw_ms", statsJson(m.verifyRaw()));
    o.add("prefill_ms", statsJson(m.prefillRuntime()));
    o.add("prefill_raw_ms", statsJson(m.prefillRaw()));
    o.add("matmul_floor_ms", statsJson(m.matmulFloor()));
    o.addProperty("verify_over_decode", m.verifyOverDecode());
    o.addProperty("verify_over_decode_raw", m.rawVerifyOverDecode());
    o.addProperty("weight_gbps", m.weightGbps());
    o.addProperty("weight_bandwidth_fraction", m.weightGbps() / memory.referenceGbps());
    o.addProperty("matmul_floor_bytes", m.matmulFloorBytes());
    o.addProperty("matmul_floor_gbps", m.floorGbps());
    o.addProperty("decode_over_matmul_floor", m.decodeOverFloor());
    o.addProperty("decode_raw_over_matmul_floor", m.rawDecodeOverFloor());
    JsonObject sessions = new JsonObject();
    for (ModelBench.Batch b : m.batches()) {
      JsonObject s = new JsonObject();
      s.add("tokens_per_s", statsJson(b.tokensPerSec()));
      s.addProperty("speedup_vs_1", m.batchSpeedup(b.sessions()));
      s.addProperty("avg_batch", b.avgBatch());
      s.add("raw_tokens_per_s", statsJson(b.rawTokensPerSec()));
      s.addProperty("raw_speedup_vs_1", m.rawBatchSpeedup(b.sessions()));
      sessions.add(Integer.toString(b.sessions()), s);
    }
    o.add("sessions", sessions);
    return o;
  }

  static JsonObject statsJson(Stats s) {
    JsonObject o = new JsonObject();
    o.addProperty("median", s.median());
    o.addProperty("p10", s.p10());
    o.addProperty("p90", s.p90());
    o.addProperty("min", s.min());
    o.addProperty("max", s.max());
    o.addProperty("n", s.n());
    return o;
  }
}
