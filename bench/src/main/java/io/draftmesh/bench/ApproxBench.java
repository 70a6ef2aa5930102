package io.draftmesh.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.zoo.Corpus;
import io.draftmesh.zoo.LongTasks;
import io.draftmesh.zoo.Scoring;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh bench approx}: draft-guided approximate inference through a running mesh (the
 * zoo target and draft workers and a router in this JVM, real ports), greedy, on the zoo's held-out
 * long-context tasks ({@link LongTasks#evalSet}, seeded by {@link LongTasks#EVAL_SEED}). For each
 * prompt length L, task instance and budget C:
 *
 * <ul>
 *   <li>{@code full}: STRATEGY_AUTOREGRESSIVE on the whole prompt and cache, the reference;
 *   <li>{@code streaming_llm}, {@code snapkv}: kv_compression with STRATEGY_AUTOREGRESSIVE (the
 *       target's cache compacted to C slots per KV head after its prefill; window 32, max-pool 7, 4
 *       sinks: papers.md §2, SnapKV run with SpecKV's settings);
 *   <li>{@code h2o}: the same, H2O's heavy hitters (attention summed over every prompt query) plus
 *       a recent window of C/2, chosen once after the prefill;
 *   <li>{@code speckv}: STRATEGY_SPECKV, budget C, the draft's answer as long as the output;
 *   <li>{@code specpc}: STRATEGY_SPECPC keeping C prompt tokens (window, kernel and neighbours
 *       min(64, C/4): the reference's 64 cannot leave most of a 64-token budget to the window);
 *   <li>{@code speckv_pc}: SpecPC to max(L/2, 2C) tokens (SpecKV-PC's intermediate length; 2048 of
 *       4K+ prompts in the paper), then SpecKV to C.
 * </ul>
 *
 * <p>Quality: task accuracy (the zoo eval's scoring) and agreement with the full-cache output
 * (token match rate, position by position). Cost: KV bytes the target keeps for the prompt (fp32,
 * every layer and KV head), TTFT (client's time to the first token; it includes the draft's work),
 * and decode ms per token after it. Nothing is tuned: budgets, tasks and seeds are fixed up front.
 *
 * <p>Each prompt is sent once per method, so a worker's prefix cache serves every request after the
 * first from cached blocks: TTFT then shows cached prefills (see docs/performance.md).
 */
public final class ApproxBench {
  static final int[] BUDGETS = {64, 128, 256, 512};
  static final List<String> METHODS =
      List.of("streaming_llm", "snapkv", "h2o", "speckv", "specpc", "speckv_pc");

  /** What to run. */
  record Options(boolean json, boolean quick, int prompts, int maxTokens) {}

  /** One (prompt length, method, budget) cell, over every task instance. */
  record Row(
      int promptTokens,
      String method,
      int budget,
      double accuracy,
      double agreement,
      double kvBytes,
      double ttftMs,
      double decodeMsPerToken,
      double needle,
      int samples) {}

  private ApproxBench() {}

  public static int run(String[] args) {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("draftmesh bench approx: " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    if (o == null) {
      System.out.println(USAGE);
      return 0;
    }
    PrintStream progress = System.err;
    Path target = MeshModels.zooModel("target");
    Path draft = MeshModels.zooModel("draft");
    if (target == null || draft == null) {
      System.err.println(
          "draftmesh bench approx: no zoo pair in models/ (expected: models/target and"
              + " models/draft, the long-context pair the tasks are for)");
      return 1;
    }
    List<String> tasks = o.quick() ? List.of("passkey", "multikey") : LongTasks.TASKS;
    int[] lengths = {1024, 2048};
    String models = target + " / " + draft;
    List<Row> rows;
    try {
      rows = runAll(target, draft, tasks, lengths, o, progress);
    } catch (IOException e) {
      System.err.println("draftmesh bench approx: " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 1;
    }
    System.out.println(o.json() ? json(models, tasks, rows, o) : table(models, tasks, rows, o));
    return 0;
  }

  /** One generation: its tokens, text, timings and what the router reported. */
  record Out(
      int[] ids, String text, double ttftMs, double decodeMsPerToken, GenerationStats stats) {}

  static List<Row> runAll(
      Path target, Path draft, List<String> tasks, int[] lengths, Options o, PrintStream progress)
      throws IOException, InterruptedException {
    Corpus corpus = Corpus.prepare(Corpus.defaultDir());
    long bytesPerSlot;
    try (Checkpoint ckpt = Checkpoint.load(target)) {
      ModelConfig c = ckpt.config();
      bytesPerSlot = 2L * c.numLayers() * c.numKvHeads() * c.headDim() * Float.BYTES;
    }
    List<Row> rows = new ArrayList<>();
    // Every method runs the same prompts: shared prefix blocks would hand later methods the full
    // cache's prefill and make the TTFT column meaningless.
    Mesh.Spec spec = Mesh.Spec.builder(target, draft).limits(4096, 64).prefixCache(false).build();
    try (TextTokenizer tok = TextTokenizer.load(target.resolve(Checkpoint.TOKENIZER_JSON));
        Mesh mesh = Mesh.start(spec, OpenTelemetry.noop())) {
      LongTasks heldOut = new LongTasks(corpus.valid(), tok);
      ManagedChannel ch =
          Grpc.newChannelBuilder(mesh.routerAddress(), InsecureChannelCredentials.create()).build();
      try {
        RouterGrpc.RouterBlockingStub router = RouterGrpc.newBlockingStub(ch);
        for (int length : lengths) {
          List<LongTasks.Instance> instances = new ArrayList<>();
          for (String task : tasks) {
            // Room for the answer (and SpecKV's draft answer of the same length) in the context.
            instances.addAll(heldOut.evalSet(task, length - 2 * o.maxTokens(), o.prompts()));
          }
          List<int[]> prompts = new ArrayList<>();
          for (LongTasks.Instance inst : instances) {
            prompts.add(tok.encode(inst.prompt()));
          }
          // Warm-up: the first requests at a length pay JIT and first-touch costs.
          call(router, request(prompts.get(0), "full", BUDGETS[0], o.maxTokens()));
          call(router, request(prompts.get(0), "speckv", BUDGETS[0], o.maxTokens()));
          List<Out> full = new ArrayList<>();
          for (int[] p : prompts) {
            full.add(call(router, request(p, "full", 0, o.maxTokens())));
          }
          rows.add(row(length, "full", 0, instances, full, full, prompts, bytesPerSlot));
          for (int c : BUDGETS) {
            for (String method : METHODS) {
              List<Out> outs = new ArrayList<>();
              for (int[] p : prompts) {
                outs.add(call(router, request(p, method, c, o.maxTokens())));
              }
              rows.add(row(length, method, c, instances, outs, full, prompts, bytesPerSlot));
            }
            progress.printf("  L=%d C=%d done%n", length, c);
          }
        }
      } finally {
        ch.shutdownNow();
      }
    }
    return rows;
  }

  /** The request for {@code method} at budget {@code c}. */
  static GenerateRequest request(int[] prompt, String method, int c, int maxTokens) {
    TokenIds.Builder t = TokenIds.newBuilder();
    for (int id : prompt) {
      t.addIds(id);
    }
    GenerateRequest.Builder r =
        GenerateRequest.newBuilder()
            .setTokenIds(t)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
            .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE);
    switch (method) {
      case "full" -> {}
      case "streaming_llm", "snapkv", "h2o" ->
          r.setKvCompression(KvCompressionOptions.newBuilder().setMethod(method).setBudget(c));
      case "speckv" ->
          r.setStrategy(Strategy.STRATEGY_SPECKV)
              .setKvCompression(KvCompressionOptions.newBuilder().setBudget(c));
      case "specpc" -> r.setStrategy(Strategy.STRATEGY_SPECPC).setSpecPc(specPc(c));
      case "speckv_pc" ->
          r.setStrategy(Strategy.STRATEGY_SPECKV)
              .setSpecPc(specPc(Math.min(prompt.length, Math.max(prompt.length / 2, 2 * c))))
              .setKvCompression(KvCompressionOptions.newBuilder().setBudget(c));
      default -> throw new IllegalArgumentException("method " + method);
    }
    return r.build();
  }

  /** SpecPC keeping {@code c} tokens; window, kernel and neighbours min(64, c / 4). */
  static SpecPcOptions specPc(int c) {
    int w = Math.max(1, Math.min(64, c / 4));
    return SpecPcOptions.newBuilder()
        .setBudgetTokens(c)
        .setWindow(w)
        .setKernel(w)
        .setNeighborTokens(w)
        .build();
  }

  static Out call(RouterGrpc.RouterBlockingStub router, GenerateRequest r) {
    long t0 = System.nanoTime();
    double ttft = -1;
    List<Integer> ids = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    GenerateChunk last = null;
    Iterator<GenerateChunk> it = router.withDeadlineAfter(10, TimeUnit.MINUTES).generate(r);
    while (it.hasNext()) {
      GenerateChunk c = it.next();
      if (ttft < 0 && c.getTokenIdsCount() > 0) {
        ttft = (System.nanoTime() - t0) / 1e6;
      }
      ids.addAll(c.getTokenIdsList());
      text.append(c.getText());
      last = c;
    }
    double total = (System.nanoTime() - t0) / 1e6;
    return new Out(
        ids.stream().mapToInt(Integer::intValue).toArray(),
        text.toString(),
        ttft,
        ids.size() > 1 ? (total - ttft) / (ids.size() - 1) : Double.NaN,
        last.getStats());
  }

  /** KV bytes the target kept for the prompt, from what the router reported. */
  static double kvBytes(GenerationStats s, int promptTokens, long bytesPerSlot) {
    if (s.hasKvCompression() && s.getKvCompression().getKvBytesKept() > 0) {
      return s.getKvCompression().getKvBytesKept();
    }
    int kept = s.hasPromptCompression() ? s.getPromptCompression().getKeptTokens() : promptTokens;
    return (double) kept * bytesPerSlot;
  }

  private static Row row(
      int length,
      String method,
      int budget,
      List<LongTasks.Instance> instances,
      List<Out> outs,
      List<Out> full,
      List<int[]> prompts,
      long bytesPerSlot) {
    int n = outs.size();
    double[] acc = new double[n];
    double[] agree = new double[n];
    double[] bytes = new double[n];
    double[] ttft = new double[n];
    double[] decode = new double[n];
    List<Double> needle = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Out a = outs.get(i);
      LongTasks.Instance inst = instances.get(i);
      acc[i] = score(inst, a.text());
      agree[i] = tokenAgreement(a.ids(), full.get(i).ids());
      bytes[i] = kvBytes(a.stats(), prompts.get(i).length, bytesPerSlot);
      ttft[i] = a.ttftMs();
      decode[i] = a.decodeMsPerToken();
      if (inst.task().equals("passkey")) {
        needle.add(acc[i]);
      }
    }
    return new Row(
        length,
        method,
        budget,
        mean(acc),
        mean(agree),
        mean(bytes),
        median(ttft),
        median(decode),
        needle.isEmpty() ? Double.NaN : needle.stream().mapToDouble(d -> d).average().orElse(0),
        n);
  }

  /** The zoo eval's scoring (TaskEval): recall for multi-valued answers, F1 for verses. */
  static double score(LongTasks.Instance inst, String got) {
    return switch (inst.task()) {
      case "multivalue", "vartrack" -> Scoring.recall(got, inst.values());
      case "verse" -> Scoring.wordF1(got, inst.answer());
      default -> Scoring.exactMatch(got, inst.answer());
    };
  }

  /** Share of positions where both outputs have the same token. */
  static double tokenAgreement(int[] a, int[] ref) {
    int same = 0;
    for (int i = 0; i < Math.min(a.length, ref.length); i++) {
      if (a[i] == ref[i]) {
        same++;
      }
    }
    return ref.length == 0 ? 1 : (double) same / ref.length;
  }

  /** Medians for times: one stalled request on these shared cores would swing a mean. */
  private static double median(double[] xs) {
    return xs.length == 0 ? Double.NaN : Stats.of(xs).median();
  }

  private static double mean(double[] xs) {
    return xs.length == 0 ? Double.NaN : java.util.Arrays.stream(xs).average().orElse(Double.NaN);
  }

  // ---- output ----

  static String table(String models, List<String> tasks, List<Row> rows, Options o) {
    StringBuilder b = new StringBuilder();
    b.append(
        String.format(
            Locale.ROOT,
            "zoo pair %s; greedy; tasks %s, %d held-out instance(s) each (EVAL_SEED); %d output"
                + " tokens%n",
            models,
            tasks,
            o.prompts(),
            o.maxTokens()));
    String fmt = "%6s %-13s %5s %8s %8s %10s %9s %10s %7s%n";
    b.append(
        String.format(
            Locale.ROOT,
            fmt,
            "prompt",
            "method",
            "C",
            "accuracy",
            "agree",
            "KV MiB",
            "TTFT ms",
            "decode ms",
            "needle"));
    for (Row r : rows) {
      b.append(
          String.format(
              Locale.ROOT,
              fmt,
              r.promptTokens(),
              r.method(),
              r.method().equals("full") ? "-" : Integer.toString(r.budget()),
              f2(r.accuracy()),
              f2(r.agreement()),
              f2(r.kvBytes() / (1 << 20)),
              f1(r.ttftMs()),
              f2(r.decodeMsPerToken()),
              Double.isNaN(r.needle()) ? "-" : f2(r.needle())));
    }
    b.append(
        "accuracy: the zoo eval's task score; agree: token match rate with the full-cache output;"
            + " KV MiB: the prompt's KV the target kept (fp32); TTFT includes the draft's work;"
            + " decode: ms per output token after the first; needle: passkey accuracy");
    return b.toString();
  }

  static String json(String models, List<String> tasks, List<Row> rows, Options o) {
    JsonObject root = new JsonObject();
    root.addProperty("bench", "approx");
    root.addProperty("models", models);
    JsonArray ts = new JsonArray();
    tasks.forEach(ts::add);
    root.add("tasks", ts);
    root.addProperty("instances_per_task", o.prompts());
    root.addProperty("max_tokens", o.maxTokens());
    JsonArray rs = new JsonArray();
    for (Row r : rows) {
      JsonObject j = new JsonObject();
      j.addProperty("prompt_tokens", r.promptTokens());
      j.addProperty("method", r.method());
      j.addProperty("budget", r.budget());
      j.addProperty("accuracy", r.accuracy());
      j.addProperty("agreement", r.agreement());
      j.addProperty("kv_bytes", r.kvBytes());
      j.addProperty("ttft_ms", r.ttftMs());
      j.addProperty("decode_ms_per_token", r.decodeMsPerToken());
      if (!Double.isNaN(r.needle())) {
        j.addProperty("needle", r.needle());
      }
      j.addProperty("samples", r.samples());
      rs.add(j);
    }
    root.add("rows", rs);
    return new GsonBuilder().setPrettyPrinting().create().toJson(root);
  }

  private static String f0(double x) {
    return String.format(Locale.ROOT, "%.0f", x);
  }

  private static String f1(double x) {
    return String.format(Locale.ROOT, "%.1f", x);
  }

  private static String f2(double x) {
    return String.format(Locale.ROOT, "%.2f", x);
  }

  static final String USAGE =
      "usage: draftmesh bench approx [--json] [--quick] [--prompts N] [--max-tokens N]\n"
          + "  --json          print one JSON object instead of the table\n"
          + "  --quick         two tasks (passkey, multikey) instead of all six\n"
          + "  --prompts N     held-out instances per task and length (default 2)\n"
          + "  --max-tokens N  output tokens per generation (default 24, the tasks' answer room)";

  /** Null for --help. */
  static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    int prompts = 2;
    int maxTokens = LongTasks.ANSWER_ROOM;
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!seen.add(a)) {
        throw new IllegalArgumentException(a + ": given twice (expected: once)");
      }
      switch (a) {
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--help", "-h" -> {
          return null;
        }
        case "--prompts", "--max-tokens" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(a + ": missing value (expected: an integer >= 1)");
          }
          int v;
          try {
            v = Integer.parseInt(args[++i]);
          } catch (NumberFormatException e) {
            v = 0;
          }
          if (v < 1 || v > 10_000) {
            throw new IllegalArgumentException(
                a + ": " + args[i] + " (expected: an integer 1..10000)");
          }
          if (a.equals("--prompts")) {
            prompts = v;
          } else {
            maxTokens = v;
          }
        }
        default ->
            throw new IllegalArgumentException(
                "unknown flag \""
                    + a
                    + "\" (expected: --json, --quick, --prompts N, --max-tokens N)");
      }
    }
    return new Options(json, quick, prompts, maxTokens);
  }
}
