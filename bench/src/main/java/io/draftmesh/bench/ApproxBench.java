package io.draftmesh.bench;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.assembly.RandomModels;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.PromptCompressionStats;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh bench approx}: prompt compression through a running mesh (target worker, draft
 * worker and router in this JVM, real ports), greedy. For each prompt and budget C (prompt tokens
 * the target reads):
 *
 * <ul>
 *   <li>{@code full}: STRATEGY_AUTOREGRESSIVE on the whole prompt, the reference output;
 *   <li>{@code specpc}: STRATEGY_SPECPC with the reference's defaults (window 64, kernel 64, 64
 *       neighbours, lookahead 1, starting layer 8), budget C;
 *   <li>{@code streaming}: StreamingLLM's rule used to drop prompt tokens (the first 4 and the last
 *       C - 4), then STRATEGY_AUTOREGRESSIVE on what is left: the query-agnostic baseline.
 * </ul>
 *
 * <p>Quality is agreement with the full-prompt output: the share of output tokens before the first
 * difference (prefix) and position by position, and, for the zoo suite, word overlap (F1 of the
 * output's word multisets). TTFT is the client's time to the first streamed token; for SpecPC it
 * includes the draft reading the prompt. Nothing here is tuned: the budgets are fixed up front and
 * the prompts are the first N of a fixed construction.
 *
 * <p>Suites: {@code random} (always): random-weight checkpoints generated with a 4096-position
 * context (a tiny-gqa target and a tiny-llama-shaped draft), prompts of 1024 and 2048 tokens; the
 * output is noise, so this measures the mechanics (tokens dropped, TTFT) and how much a random
 * target's output depends on the dropped tokens, not task quality. {@code zoo} (when the trained
 * pair is in {@code models/}): its 256-position context limits prompts to 192 tokens of held-out
 * verses, budgets 64 and 128.
 */
public final class ApproxBench {
  static final int SINKS = 4;

  /** What to run. */
  record Options(boolean json, boolean quick, int prompts, int maxTokens) {}

  /** One (suite, prompt length, method, budget) cell, averaged over the prompts. */
  record Row(
      String suite,
      int promptTokens,
      String method,
      int budget,
      double kept,
      double dropped,
      double prefixAgreement,
      double tokenAgreement,
      double wordF1,
      double ttftMs,
      double ttftFullMs,
      double draftMs,
      int prompts) {}

  /** A model pair and its prompts. */
  record Suite(String name, String models, Path target, Path draft, int[] lengths, int[] budgets) {}

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
    List<Suite> suites = new ArrayList<>();
    Path cache = RandomModels.defaultCacheDir();
    Path target = RandomModels.ensure(cache, RandomModels.tinyGqa());
    Path draft = RandomModels.ensure(cache, longTiny());
    suites.add(
        new Suite(
            "random",
            "random weights: tiny-gqa target (8 heads / 2 kv, 2 layers), tiny-llama draft (2"
                + " layers), 4096 positions",
            target,
            draft,
            o.quick() ? new int[] {1024} : new int[] {1024, 2048},
            o.quick() ? new int[] {256} : new int[] {128, 256, 512}));
    Path zooTarget = MeshModels.zooModel("target");
    Path zooDraft = MeshModels.zooModel("draft");
    if (zooTarget != null && zooDraft != null && !o.quick()) {
      suites.add(
          new Suite(
              "zoo",
              "zoo pair (trained, 256 positions): " + zooTarget + " / " + zooDraft,
              zooTarget,
              zooDraft,
              new int[] {192},
              new int[] {64, 128}));
    } else if (!o.quick()) {
      progress.println("no zoo pair in models/: the zoo suite is skipped");
    }
    List<Row> rows = new ArrayList<>();
    try {
      for (Suite s : suites) {
        rows.addAll(runSuite(s, o, progress));
      }
    } catch (IOException e) {
      System.err.println("draftmesh bench approx: " + e.getMessage());
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 1;
    }
    System.out.println(o.json() ? json(suites, rows, o) : table(suites, rows, o));
    return 0;
  }

  /** tiny-llama's shape with a 4096-position context: the draft for the long random prompts. */
  static RandomModels.Spec longTiny() {
    ModelConfig t = RandomCheckpoint.tinyLlama();
    return new RandomModels.Spec(
        "tiny_long",
        "tiny-long",
        new ModelConfig(
            t.architecture(),
            t.vocabSize(),
            t.hiddenSize(),
            t.intermediateSize(),
            t.numLayers(),
            t.numHeads(),
            t.numKvHeads(),
            t.headDim(),
            t.ropeTheta(),
            t.ropeScaling(),
            t.rmsNormEps(),
            4096,
            t.tieWordEmbeddings(),
            t.attentionBias(),
            t.bosTokenId(),
            t.eosTokenId()));
  }

  static List<Row> runSuite(Suite s, Options o, PrintStream progress)
      throws IOException, InterruptedException {
    progress.printf("suite %s: %s%n", s.name(), s.models());
    int[] stream = tokenStream(s);
    Mesh.Spec spec = Mesh.Spec.of(s.target(), s.draft()).withLimits(4096, 64);
    List<Row> rows = new ArrayList<>();
    try (Mesh mesh = Mesh.start(spec, OpenTelemetry.noop())) {
      ManagedChannel ch =
          Grpc.newChannelBuilder(mesh.routerAddress(), InsecureChannelCredentials.create()).build();
      try {
        RouterGrpc.RouterBlockingStub router = RouterGrpc.newBlockingStub(ch);
        // Warm-up: the first requests pay JIT and first-touch costs.
        int[] warm = Arrays.copyOf(stream, Math.min(stream.length, s.lengths()[0]));
        call(router, warm, Strategy.STRATEGY_AUTOREGRESSIVE, null, o.maxTokens());
        call(router, warm, Strategy.STRATEGY_SPECPC, budget(s.budgets()[0]), o.maxTokens());
        for (int length : s.lengths()) {
          List<int[]> prompts = new ArrayList<>();
          for (int p = 0; p < o.prompts(); p++) {
            int start = (int) ((long) p * (stream.length - length) / Math.max(1, o.prompts()));
            prompts.add(Arrays.copyOfRange(stream, start, start + length));
          }
          List<Out> full = new ArrayList<>();
          for (int[] prompt : prompts) {
            full.add(call(router, prompt, Strategy.STRATEGY_AUTOREGRESSIVE, null, o.maxTokens()));
          }
          double ttftFull = median(full.stream().mapToDouble(Out::ttftMs).toArray());
          rows.add(row(s, length, "full", length, full, full, ttftFull));
          for (int c : s.budgets()) {
            if (c >= length) {
              continue;
            }
            List<Out> pc = new ArrayList<>();
            List<Out> st = new ArrayList<>();
            for (int[] prompt : prompts) {
              pc.add(call(router, prompt, Strategy.STRATEGY_SPECPC, budget(c), o.maxTokens()));
              st.add(
                  call(
                      router,
                      streamingDrop(prompt, c),
                      Strategy.STRATEGY_AUTOREGRESSIVE,
                      null,
                      o.maxTokens()));
            }
            rows.add(row(s, length, "specpc", c, pc, full, ttftFull));
            rows.add(row(s, length, "streaming", c, st, full, ttftFull));
            progress.printf("  %s L=%d C=%d done%n", s.name(), length, c);
          }
        }
      } finally {
        ch.shutdownNow();
      }
    }
    return rows;
  }

  /** StreamingLLM's kept set applied to the prompt: the first 4 tokens and the last C - 4. */
  static int[] streamingDrop(int[] prompt, int budget) {
    if (prompt.length <= budget) {
      return prompt.clone();
    }
    int[] kept = new int[budget];
    System.arraycopy(prompt, 0, kept, 0, SINKS);
    System.arraycopy(prompt, prompt.length - (budget - SINKS), kept, SINKS, budget - SINKS);
    return kept;
  }

  private static SpecPcOptions budget(int c) {
    return SpecPcOptions.newBuilder().setBudgetTokens(c).build();
  }

  /** One generation: its tokens, text, TTFT, and what the router reported. */
  record Out(int[] ids, String text, double ttftMs, int kept, int promptTokens, double draftMs) {}

  static Out call(
      RouterGrpc.RouterBlockingStub router,
      int[] prompt,
      Strategy strategy,
      SpecPcOptions pc,
      int maxTokens) {
    TokenIds.Builder t = TokenIds.newBuilder();
    for (int id : prompt) {
      t.addIds(id);
    }
    GenerateRequest.Builder r =
        GenerateRequest.newBuilder()
            .setTokenIds(t)
            .setStrategy(strategy)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens));
    if (pc != null) {
      r.setSpecPc(pc);
    }
    long t0 = System.nanoTime();
    double ttft = -1;
    List<Integer> ids = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    GenerateChunk last = null;
    Iterator<GenerateChunk> it = router.withDeadlineAfter(5, TimeUnit.MINUTES).generate(r.build());
    while (it.hasNext()) {
      GenerateChunk c = it.next();
      if (ttft < 0 && c.getTokenIdsCount() > 0) {
        ttft = (System.nanoTime() - t0) / 1e6;
      }
      ids.addAll(c.getTokenIdsList());
      text.append(c.getText());
      last = c;
    }
    PromptCompressionStats s = last.getStats().getPromptCompression();
    int kept = last.getStats().hasPromptCompression() ? s.getKeptTokens() : prompt.length;
    return new Out(
        ids.stream().mapToInt(Integer::intValue).toArray(),
        text.toString(),
        ttft,
        kept,
        prompt.length,
        last.getStats().getDraftTimeMs());
  }

  private static Row row(
      Suite s,
      int length,
      String method,
      int budget,
      List<Out> outs,
      List<Out> full,
      double ttftFull) {
    int n = outs.size();
    double[] prefix = new double[n];
    double[] tokens = new double[n];
    double[] f1 = new double[n];
    double[] kept = new double[n];
    double[] ttft = new double[n];
    double[] draft = new double[n];
    for (int i = 0; i < n; i++) {
      Out a = outs.get(i);
      Out ref = full.get(i);
      prefix[i] = prefixAgreement(a.ids(), ref.ids());
      tokens[i] = tokenAgreement(a.ids(), ref.ids());
      f1[i] = wordF1(a.text(), ref.text());
      kept[i] = a.kept();
      ttft[i] = a.ttftMs();
      draft[i] = a.draftMs();
    }
    double k = mean(kept);
    return new Row(
        s.name(),
        length,
        method,
        budget,
        k,
        length - k,
        mean(prefix),
        mean(tokens),
        mean(f1),
        median(ttft),
        ttftFull,
        median(draft),
        n);
  }

  /** Share of the reference's tokens before the first difference. */
  static double prefixAgreement(int[] a, int[] ref) {
    int i = 0;
    while (i < a.length && i < ref.length && a[i] == ref[i]) {
      i++;
    }
    return ref.length == 0 ? 1 : (double) i / ref.length;
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

  /** F1 of the two outputs' word multisets (lower-cased, split on non-letters). */
  static double wordF1(String a, String ref) {
    List<String> wa = words(a);
    List<String> wr = words(ref);
    if (wa.isEmpty() && wr.isEmpty()) {
      return 1;
    }
    List<String> pool = new ArrayList<>(wr);
    int common = 0;
    for (String w : wa) {
      if (pool.remove(w)) {
        common++;
      }
    }
    if (common == 0) {
      return 0;
    }
    double p = (double) common / wa.size();
    double r = (double) common / wr.size();
    return 2 * p * r / (p + r);
  }

  private static List<String> words(String s) {
    List<String> out = new ArrayList<>();
    for (String w : s.toLowerCase(Locale.ROOT).split("[^\\p{L}]+")) {
      if (!w.isEmpty()) {
        out.add(w);
      }
    }
    return out;
  }

  /**
   * The suite's text as target tokens: for the zoo, held-out verses (prompt and reference) from the
   * zoo's eval prompts, in file order; else the sample text repeated.
   */
  static int[] tokenStream(Suite s) throws IOException {
    StringBuilder text = new StringBuilder();
    Path evalFile = SpeculativeBench.EvalPrompts.corpusDir().resolve("prompts.jsonl");
    if (s.name().equals("zoo") && Files.isRegularFile(evalFile)) {
      for (String line : Files.readAllLines(evalFile, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          JsonObject o = com.google.gson.JsonParser.parseString(line).getAsJsonObject();
          text.append(o.get("prompt").getAsString());
          if (o.has("reference")) {
            text.append(o.get("reference").getAsString());
          }
          text.append('\n');
        }
      }
    }
    if (text.isEmpty()) {
      String sample = RandomCheckpoint.sampleText();
      while (text.length() < 40_000) {
        text.append(sample).append('\n');
      }
    }
    try (TextTokenizer tok = TextTokenizer.load(s.target().resolve(Checkpoint.TOKENIZER_JSON))) {
      int[] ids = tok.encode(text.toString(), false);
      int need = Arrays.stream(s.lengths()).max().orElse(0) + 1;
      if (ids.length < need) {
        int[] longer = new int[need];
        for (int i = 0; i < need; i++) {
          longer[i] = ids[i % ids.length];
        }
        ids = longer;
      }
      return ids;
    }
  }

  /** Medians for times: one stalled request on these shared cores would swing a mean. */
  private static double median(double[] xs) {
    return xs.length == 0 ? Double.NaN : Stats.of(xs).median();
  }

  private static double mean(double[] xs) {
    return xs.length == 0 ? Double.NaN : Arrays.stream(xs).average().orElse(Double.NaN);
  }

  // ---- output ----

  static String table(List<Suite> suites, List<Row> rows, Options o) {
    StringBuilder b = new StringBuilder();
    b.append(
        String.format(
            Locale.ROOT,
            "greedy, %d prompts per length, %d output tokens; quality = agreement with the"
                + " full-prompt output%n",
            o.prompts(),
            o.maxTokens()));
    for (Suite s : suites) {
      b.append(String.format(Locale.ROOT, "suite %s: %s%n", s.name(), s.models()));
    }
    String fmt = "%-7s %6s %-10s %6s %7s %8s %7s %7s %7s %9s %9s %8s%n";
    b.append(
        String.format(
            Locale.ROOT,
            fmt,
            "suite",
            "prompt",
            "method",
            "C",
            "kept",
            "dropped",
            "prefix",
            "tokens",
            "wordF1",
            "TTFT ms",
            "saved ms",
            "draft ms"));
    for (Row r : rows) {
      b.append(
          String.format(
              Locale.ROOT,
              fmt,
              r.suite(),
              r.promptTokens(),
              r.method(),
              r.method().equals("full") ? "-" : Integer.toString(r.budget()),
              f0(r.kept()),
              f0(r.dropped()),
              f2(r.prefixAgreement()),
              f2(r.tokenAgreement()),
              f2(r.wordF1()),
              f1(r.ttftMs()),
              r.method().equals("full") ? "-" : f1(r.ttftFullMs() - r.ttftMs()),
              r.method().equals("specpc") ? f1(r.draftMs()) : "-"));
    }
    b.append(
        "prefix/tokens: share of output tokens equal to the full-prompt output's (before the first"
            + " difference / position by position); wordF1: word overlap; saved = full TTFT -"
            + " this TTFT (SpecPC's includes the draft's read)");
    return b.toString();
  }

  static String json(List<Suite> suites, List<Row> rows, Options o) {
    JsonObject root = new JsonObject();
    root.addProperty("bench", "approx");
    root.addProperty("prompts", o.prompts());
    root.addProperty("max_tokens", o.maxTokens());
    root.addProperty("quality", "agreement with the full-prompt greedy output");
    JsonArray ss = new JsonArray();
    for (Suite s : suites) {
      JsonObject j = new JsonObject();
      j.addProperty("name", s.name());
      j.addProperty("models", s.models());
      ss.add(j);
    }
    root.add("suites", ss);
    JsonArray rs = new JsonArray();
    for (Row r : rows) {
      JsonObject j = new JsonObject();
      j.addProperty("suite", r.suite());
      j.addProperty("prompt_tokens", r.promptTokens());
      j.addProperty("method", r.method());
      j.addProperty("budget", r.budget());
      j.addProperty("kept_tokens", r.kept());
      j.addProperty("dropped_tokens", r.dropped());
      j.addProperty("prefix_agreement", r.prefixAgreement());
      j.addProperty("token_agreement", r.tokenAgreement());
      j.addProperty("word_f1", r.wordF1());
      j.addProperty("ttft_ms", r.ttftMs());
      j.addProperty("ttft_full_ms", r.ttftFullMs());
      j.addProperty("draft_ms", r.draftMs());
      j.addProperty("samples", r.prompts());
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
          + "  --quick         one length (1024) and one budget (256), random suite only\n"
          + "  --prompts N     prompts per length (default 4)\n"
          + "  --max-tokens N  output tokens per generation (default 32)";

  /** Null for --help. */
  static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    int prompts = 4;
    int maxTokens = 32;
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
