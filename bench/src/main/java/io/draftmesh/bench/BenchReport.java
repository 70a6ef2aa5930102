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
    double gbps = r.memory().referenceGbps();
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
        "DecoderModel.forward, 1 row");
    row(
        rows,
        models,
        "  runtime overhead ms",
        m -> num(m.runtimeOverheadMs()),
        "runtime - raw medians");
    row(
        rows,
        models,
        "read floor ms",
        m -> num(m.readFloorMs(gbps)),
        "weight bytes held / measured bandwidth");
    row(
        rows,
        models,
        "decode / read floor",
        m ->
            ratio(m.decodeOverReadFloor(gbps))
                + " (raw "
                + ratio(m.rawDecodeOverReadFloor(gbps))
                + ")",
        "target: zoo target <= "
            + ratio(EngineBench.TARGET_ZOO_TARGET_OVER_READ_FLOOR)
            + ", draft <= "
            + ratio(EngineBench.TARGET_ZOO_DRAFT_OVER_READ_FLOOR)
            + ", 110M <= "
            + ratio(EngineBench.TARGET_DECODE_OVER_FLOOR));
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
        "target <= " + ratio(EngineBench.TARGET_VERIFY_OVER_DECODE));
    row(
        rows,
        models,
        "prefill ms, runtime",
        m -> stats(m.prefillRuntime()),
        "context tokens, 1 logit row");
    row(rows, models, "prefill ms, raw forward", m -> stats(m.prefillRaw()), "");
    for (int i = 0; i < ModelBench.LONG_PREFILLS.length; i++) {
      int k = i;
      row(
          rows,
          models,
          "prefill-" + ModelBench.LONG_PREFILLS[i] + " ms, raw",
          m -> prefill(m.prefills().get(k)),
          i == 0
              ? "zoo target <= "
                  + num(EngineBench.TARGET_ZOO_PREFILL_256_MS)
                  + " ms; (n tok) = capped"
              : "");
    }
    row(
        rows,
        models,
        "zoo draft/target c",
        m -> {
          Double c = zooC(models, m.backend(), false);
          return c == null || !m.name().startsWith("zoo_target") ? "" : num(c);
        },
        "zoo draft decode / zoo target decode, same backend");
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
        "as held (f32 or f16), minus the embedding gather");
    row(
        rows,
        models,
        "KV MB read / decode step",
        m -> num(m.kvBytesPerStep() / 1e6),
        "K+V of all layers at this context");
    row(
        rows,
        models,
        "weight GB/s in decode",
        m -> num(m.weightGbps()) + " (" + pct(m.weightGbps() / gbps) + ")",
        "% of measured memory bandwidth (faster method)");
    row(
        rows,
        models,
        "DJL matmul floor ms",
        m -> m.matmulFloor() == null ? "n/a" : stats(m.matmulFloor()),
        "Linear.linear only, same shapes (djl rows)");
    row(
        rows,
        models,
        "decode / DJL matmul floor",
        m ->
            m.matmulFloor() == null
                ? "n/a"
                : ratio(m.decodeOverFloor()) + " (raw " + ratio(m.rawDecodeOverFloor()) + ")",
        "");

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
    sb.append("\nbackends:\n");
    for (ModelBench.Result m : models) {
      sb.append("  ").append(m.label()).append(": ").append(m.describe()).append('\n');
    }
    return sb.toString();
  }

  private static String prefill(ModelBench.Prefill p) {
    String s = stats(p.ms());
    return p.tokens() == p.requested() ? s : s + " (" + p.tokens() + " tok)";
  }

  /** Zoo draft decode / zoo target decode on {@code backend}, or null without both. */
  static Double zooC(List<ModelBench.Result> models, String backend, boolean raw) {
    ModelBench.Result draft = find(models, "zoo_draft_" + backend);
    ModelBench.Result target = find(models, "zoo_target_" + backend);
    if (draft == null || target == null) {
      return null;
    }
    return raw
        ? draft.decodeRaw().median() / target.decodeRaw().median()
        : draft.decodeRuntime().median() / target.decodeRuntime().median();
  }

  private static ModelBench.Result find(List<ModelBench.Result> models, String name) {
    return models.stream().filter(m -> m.name().equals(name)).findFirst().orElse(null);
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
    JsonObject c = new JsonObject();
    for (ModelBench.Result m : r.models()) {
      Double v = zooC(r.models(), m.backend(), false);
      if (v != null && !c.has(m.backend())) {
        c.addProperty(m.backend(), v);
        c.addProperty(m.backend() + "_raw", zooC(r.models(), m.backend(), true));
      }
    }
    if (c.size() > 0) {
      root.add("zoo_draft_target_c", c);
    }
    JsonObject targets = new JsonObject();
    targets.addProperty("batch8_speedup_min", EngineBench.TARGET_BATCH8_SPEEDUP);
    targets.addProperty(
        "llama_110m_decode_over_read_floor_max", EngineBench.TARGET_DECODE_OVER_FLOOR);
    targets.addProperty(
        "zoo_target_decode_over_read_floor_max", EngineBench.TARGET_ZOO_TARGET_OVER_READ_FLOOR);
    targets.addProperty(
        "zoo_draft_decode_over_read_floor_max", EngineBench.TARGET_ZOO_DRAFT_OVER_READ_FLOOR);
    targets.addProperty("verify_over_decode_max", EngineBench.TARGET_VERIFY_OVER_DECODE);
    targets.addProperty("zoo_target_prefill_256_ms_max", EngineBench.TARGET_ZOO_PREFILL_256_MS);
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
    double gbps = memory.referenceGbps();
    o.addProperty("backend", m.backend());
    o.addProperty("describe", m.describe());
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
    for (ModelBench.Prefill p : m.prefills()) {
      JsonObject po = statsJson(p.ms());
      po.addProperty("tokens", p.tokens());
      o.add("prefill_" + p.requested() + "_raw_ms", po);
    }
    o.addProperty("read_floor_ms", m.readFloorMs(gbps));
    o.addProperty("decode_over_read_floor", m.decodeOverReadFloor(gbps));
    o.addProperty("decode_raw_over_read_floor", m.rawDecodeOverReadFloor(gbps));
    o.addProperty("verify_over_decode", m.verifyOverDecode());
    o.addProperty("verify_over_decode_raw", m.rawVerifyOverDecode());
    o.addProperty("weight_gbps", m.weightGbps());
    o.addProperty("weight_bandwidth_fraction", m.weightGbps() / memory.referenceGbps());
    if (m.matmulFloor() != null) {
      o.add("matmul_floor_ms", statsJson(m.matmulFloor()));
      o.addProperty("matmul_floor_bytes", m.matmulFloorBytes());
      o.addProperty("matmul_floor_gbps", m.floorGbps());
      o.addProperty("decode_over_matmul_floor", m.decodeOverFloor());
      o.addProperty("decode_raw_over_matmul_floor", m.rawDecodeOverFloor());
    }
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
