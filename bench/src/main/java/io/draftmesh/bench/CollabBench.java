package io.draftmesh.bench;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterServer;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.draftmesh.zoo.Corpus;
import io.draftmesh.zoo.Instructions;
import io.draftmesh.zoo.ZooTokenizer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh bench collab}: the approximate strategies on the zoo models through the real
 * mesh (every worker and the router on its own real port in this JVM), greedy, with the paper
 * shapes to compare against (papers.md §3–4):
 *
 * <ul>
 *   <li><b>Nudging</b> on the zoo's held-out instructions ({@link Instructions#evalSet}, judged by
 *       {@link Instructions#judge}: template compliance and answer correctness): the base {@code
 *       target} alone (plain-text prompt), {@code aligned} alone and {@code target-aligned} alone
 *       (template prompt), the base nudged by {@code aligned} at γ ∈ {0.2 .. 0.6} and by {@code
 *       aligned-x} (another tokenizer) at γ = 0.4, with the aligned model's share of the output.
 *   <li><b>Entropy switch</b> and <b>lead-in</b> ({@code draft} small, {@code target} large) on the
 *       held-out corpus continuations: unigram F1 of the output against the reference continuation,
 *       agreement with the large model's own output, large-model share, parameter-weighted cost and
 *       wall time per token; small-only and large-only as the ends.
 * </ul>
 *
 * A model that is not in {@code models/} is printed as "model missing", never stood in for.
 */
public final class CollabBench {
  static final String USAGE =
      "usage: draftmesh bench collab [--json] [--quick] [--prompts N] [--max-tokens N]"
          + " [--models DIR]\n"
          + "  --json          one JSON object instead of the tables\n"
          + "  --quick         4 prompts, 24 tokens, short sweeps (for tests and a first look)\n"
          + "  --prompts N     held-out instructions / continuations (default 32; quick 4)\n"
          + "  --max-tokens N  tokens per reply (default 48; quick 24)\n"
          + "  --models DIR    the zoo (default: models/ of the working directory or a parent)\n";

  static final float[] GAMMAS = {0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  // The zoo models' raw entropies sit around 3-7 bits (they are tiny): the sweep covers that range.
  static final float[] TAUS = {2.0f, 3.0f, 4.0f, 4.5f, 5.0f, 5.5f, 6.0f, 8.0f};
  static final float[] QUICK_TAUS = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  static final int[] LEAD_INS = {1, 2, 4, 8};

  /** One row of a table; null metrics print as "model missing". */
  record Row(
      String name,
      String missing,
      Double compliance,
      Double correct,
      Double score,
      Double agreeLarge,
      double largeShare,
      double cost,
      double msPerToken,
      double tokensPerSecond,
      double switchesPerReply,
      boolean fallback) {
    static Row missing(String name, String why) {
      return new Row(name, why, null, null, null, null, 0, 0, 0, 0, 0, false);
    }
  }

  record Report(
      String models,
      int prompts,
      int maxTokens,
      List<Row> nudging,
      List<Row> ead,
      List<Row> leadIn) {}

  private record Options(boolean json, boolean quick, int prompts, int maxTokens, Path models) {}

  private CollabBench() {}

  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      err.println(e.getMessage());
      err.print(USAGE);
      return 2;
    }
    if (o == null) {
      out.print(USAGE);
      return 0;
    }
    try {
      Report r = measure(o, err);
      out.println(o.json() ? json(r) : table(r));
      return 0;
    } catch (IllegalArgumentException e) {
      err.println("bench collab: " + e.getMessage());
      return 2;
    } catch (Exception e) {
      err.println("bench collab failed: " + e);
      e.printStackTrace(err);
      return 1;
    }
  }

  private static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    Integer prompts = null;
    Integer maxTokens = null;
    Path models = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--prompts" -> prompts = intArg(args, ++i, a, 1, 10_000);
        case "--max-tokens" -> maxTokens = intArg(args, ++i, a, 1, 4096);
        case "--models" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException("--models: missing value (expected: a directory)");
          }
          models = Path.of(args[++i]);
        }
        case "-h", "--help" -> {
          return null;
        }
        default ->
            throw new IllegalArgumentException(
                "bench collab: unknown flag \""
                    + a
                    + "\" (expected: --json, --quick, --prompts N, --max-tokens N, --models DIR)");
      }
    }
    if (models == null) {
      Path target = MeshModels.zooModel("target");
      if (target == null) {
        throw new IllegalArgumentException(
            "--models: no models/target found above the working directory (expected: the zoo)");
      }
      models = target.getParent();
    }
    return new Options(
        json,
        quick,
        prompts != null ? prompts : quick ? 4 : 32,
        maxTokens != null ? maxTokens : quick ? 24 : 48,
        models);
  }

  private static int intArg(String[] args, int i, String flag, int min, int max) {
    if (i >= args.length) {
      throw new IllegalArgumentException(
          flag + ": missing value (expected: " + min + ".." + max + ")");
    }
    try {
      int v = Integer.parseInt(args[i]);
      if (v < min || v > max) {
        throw new NumberFormatException();
      }
      return v;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          flag + ": " + args[i] + " (expected: an integer in " + min + ".." + max + ")");
    }
  }

  // ---- the mesh: one worker per zoo model present, one router over all of them

  private static final List<String> MODELS =
      List.of("target", "aligned", "draft", "target-aligned", "aligned-x");

  static Report measure(Options o, PrintStream log) throws Exception {
    Map<String, WorkerServer> workers = new LinkedHashMap<>();
    RouterServer router = null;
    ManagedChannel channel = null;
    try {
      List<String> pools = new ArrayList<>();
      for (String name : MODELS) {
        Path dir = o.models().resolve(name);
        if (!MeshModels.isCheckpoint(dir)) {
          log.println("bench collab: " + dir + ": model missing");
          continue;
        }
        WorkerConfig.Role role =
            name.equals("target") ? WorkerConfig.Role.TARGET : WorkerConfig.Role.DRAFT;
        WorkerServer w =
            WorkerServer.onPort(
                    WorkerConfig.parse(
                        new String[] {
                          "--model",
                          dir.toString(),
                          "--port",
                          "0",
                          "--kv-budget-mb",
                          "64",
                          "--max-context",
                          "1024",
                          "--max-tokens-per-op",
                          "64"
                        },
                        Map.of(),
                        role),
                    OpenTelemetry.noop())
                .start();
        workers.put(name, w);
      }
      if (!workers.containsKey("target") || !workers.containsKey("draft")) {
        throw new IllegalArgumentException(
            o.models() + ": needs at least target and draft (expected: the trained zoo)");
      }
      for (WorkerServer w : workers.values()) {
        w.awaitReady(Duration.ofMinutes(5));
      }
      List<String> flags = new ArrayList<>(List.of("--port", "0"));
      for (Map.Entry<String, WorkerServer> e : workers.entrySet()) {
        String address = "localhost:" + e.getValue().port();
        if (e.getKey().equals("target")) {
          flags.addAll(List.of("--target", address));
        } else if (e.getKey().equals("draft")) {
          flags.addAll(List.of("--draft", address));
        } else {
          flags.addAll(List.of("--pool", e.getKey() + "=" + address));
        }
        pools.add(e.getKey());
      }
      flags.addAll(List.of("--tokenizers", o.models().toString(), "--max-tokens-limit", "4096"));
      flags.addAll(List.of("--draft-timeout-ms", "30000"));
      router =
          RouterServer.onPort(
                  RouterConfig.parse(flags.toArray(String[]::new), Map.of()), OpenTelemetry.noop())
              .start();
      channel =
          Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
              .build();
      Bench b = new Bench(channel, o, workers.keySet(), log);
      return new Report(
          o.models().toString(), o.prompts(), o.maxTokens(), b.nudging(), b.ead(), b.leadIn());
    } finally {
      if (channel != null) {
        channel.shutdownNow();
      }
      if (router != null) {
        router.close();
      }
      workers.values().forEach(WorkerServer::close);
    }
  }

  /** The runs themselves. */
  private static final class Bench {
    final ManagedChannel channel;
    final Options o;
    final java.util.Set<String> present;
    final PrintStream log;
    final TextTokenizer zoo;
    final List<Instructions.Example> examples;
    final List<Corpus.Prompt> continuations;

    Bench(ManagedChannel channel, Options o, java.util.Set<String> present, PrintStream log)
        throws IOException {
      this.channel = channel;
      this.o = o;
      this.present = present;
      this.log = log;
      this.zoo = TextTokenizer.load(o.models().resolve("target").resolve("tokenizer.json"));
      List<Corpus.Prompt> prompts = heldOutPrompts();
      this.examples =
          Instructions.evalSet(prompts).subList(0, Math.min(o.prompts(), prompts.size()));
      this.continuations = prompts.subList(0, Math.min(o.prompts(), prompts.size()));
    }

    /** The corpus's held-out prompts (the zoo's eval set), from the trainer's cache. */
    static List<Corpus.Prompt> heldOutPrompts() throws IOException {
      Path file = Corpus.defaultDir().resolve("prompts.jsonl");
      if (!Files.isRegularFile(file)) {
        throw new IllegalArgumentException(
            file
                + ": not found (expected: the zoo corpus; ./draftmesh train --preset target"
                + " prepares it)");
      }
      Gson gson = new Gson();
      List<Corpus.Prompt> out = new ArrayList<>();
      for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          out.add(gson.fromJson(line, Corpus.Prompt.class));
        }
      }
      return out;
    }

    record Run(List<Integer> ids, String text, GenerateChunk last, double seconds) {
      GenerationStats stats() {
        return last.getStats();
      }
    }

    Run run(GenerateRequest r) {
      long t0 = System.nanoTime();
      List<Integer> ids = new ArrayList<>();
      StringBuilder text = new StringBuilder();
      GenerateChunk last = null;
      var it =
          RouterGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.MINUTES).generate(r);
      while (it.hasNext()) {
        GenerateChunk c = it.next();
        ids.addAll(c.getTokenIdsList());
        text.append(c.getText());
        last = c;
      }
      return new Run(ids, text.toString(), last, (System.nanoTime() - t0) / 1e9);
    }

    Sampling sampling() {
      return Sampling.newBuilder().setMaxTokens(o.maxTokens()).build();
    }

    static String templated(Instructions.Example e) {
      return ZooTokenizer.END_OF_TEXT + e.prompt();
    }

    /** The reference's base prompt: plain text, the question prefixed, no template. */
    static String plain(Instructions.Example e) {
      return "Question: " + e.instruction() + "\n";
    }

    /** Mean compliance, correctness and shares over the instruction set. */
    Row judge(String name, java.util.function.Function<Instructions.Example, GenerateRequest> req) {
      int complies = 0;
      int correct = 0;
      Totals t = new Totals();
      for (Instructions.Example e : examples) {
        Run r = run(req.apply(e));
        Instructions.Verdict v =
            Instructions.judge(e, r.ids().stream().mapToInt(Integer::intValue).toArray(), zoo);
        complies += v.complies() ? 1 : 0;
        correct += v.correct() ? 1 : 0;
        t.add(r);
      }
      int n = examples.size();
      log.printf(Locale.ROOT, "  %-34s %d/%d compliant%n", name, complies, n);
      return t.row(name, (double) complies / n, (double) correct / n, null, null);
    }

    List<Row> nudging() {
      log.println("nudging on " + examples.size() + " held-out instructions ...");
      List<Row> rows = new ArrayList<>();
      rows.add(judge("target alone (plain prompt)", e -> ar("target", plain(e), false)));
      rows.add(judge("aligned alone (template)", e -> ar("aligned", templated(e), false)));
      if (present.contains("target-aligned")) {
        rows.add(
            judge(
                "target-aligned alone (template)", e -> ar("target-aligned", templated(e), false)));
      } else {
        rows.add(Row.missing("target-aligned alone (template)", "model missing"));
      }
      for (float g : o.quick() ? new float[] {0.2f, 0.4f, 0.6f} : GAMMAS) {
        rows.add(
            judge(
                String.format(Locale.ROOT, "target + aligned nudged, γ=%.1f", g),
                e -> nudge(e, "aligned", g)));
      }
      if (present.contains("aligned-x")) {
        rows.add(judge("target + aligned-x nudged, γ=0.4", e -> nudge(e, "aligned-x", 0.4f)));
      } else {
        rows.add(Row.missing("target + aligned-x nudged, γ=0.4", "model missing"));
      }
      return rows;
    }

    GenerateRequest ar(String pool, String text, boolean ignoreEos) {
      return GenerateRequest.newBuilder()
          .setText(text)
          .setTarget(pool)
          .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
          .setSampling(sampling())
          .setIgnoreEos(ignoreEos)
          .build();
    }

    GenerateRequest nudge(Instructions.Example e, String aligned, float gamma) {
      return GenerateRequest.newBuilder()
          .setText(plain(e))
          .setTarget("target")
          .setDraft(aligned)
          .setStrategy(Strategy.STRATEGY_NUDGING)
          .setNudging(NudgingOptions.newBuilder().setAlignedPrompt(templated(e)).setGamma(gamma))
          .setSampling(sampling())
          .build();
    }

    // ---- entropy switch and lead-in, on corpus continuations

    GenerateRequest continuation(Corpus.Prompt p, Strategy s, String target) {
      return GenerateRequest.newBuilder()
          .setText(ZooTokenizer.END_OF_TEXT + p.prompt())
          .setTarget(target)
          .setStrategy(s)
          .setSampling(sampling())
          .build();
    }

    Map<Corpus.Prompt, List<Integer>> largeOnly;

    Row continuations(
        String name, java.util.function.Function<Corpus.Prompt, GenerateRequest> req) {
      Totals t = new Totals();
      double f1 = 0;
      double agree = 0;
      for (Corpus.Prompt p : continuations) {
        Run r = run(req.apply(p));
        f1 += unigramF1(r.text(), p.reference());
        agree += largeOnly == null ? 1 : agreement(r.ids(), largeOnly.get(p));
        t.add(r);
      }
      int n = continuations.size();
      log.printf(Locale.ROOT, "  %-34s F1 %.3f%n", name, f1 / n);
      return t.row(name, null, null, f1 / n, agree / n);
    }

    List<Row> ead() {
      log.println("entropy switch on " + continuations.size() + " held-out continuations ...");
      List<Row> rows = new ArrayList<>();
      Map<Corpus.Prompt, List<Integer>> large = new HashMap<>();
      for (Corpus.Prompt p : continuations) {
        large.put(p, run(continuation(p, Strategy.STRATEGY_AUTOREGRESSIVE, "target")).ids());
      }
      largeOnly = large;
      rows.add(
          continuations(
              "large only (target)",
              p -> continuation(p, Strategy.STRATEGY_AUTOREGRESSIVE, "target")));
      rows.add(
          continuations(
              "small only (draft)",
              p -> continuation(p, Strategy.STRATEGY_AUTOREGRESSIVE, "draft")));
      for (float tau : o.quick() ? QUICK_TAUS : TAUS) {
        rows.add(
            continuations(
                String.format(Locale.ROOT, "EAD τ=%.1f (w=5, min run 5)", tau),
                p ->
                    continuation(p, Strategy.STRATEGY_ENTROPY_SWITCH, "target").toBuilder()
                        .setDraft("draft")
                        .setEntropySwitch(EntropySwitchOptions.newBuilder().setTau(tau))
                        .build()));
      }
      return rows;
    }

    List<Row> leadIn() {
      log.println("lead-in on " + continuations.size() + " held-out continuations ...");
      List<Row> rows = new ArrayList<>();
      for (int n : o.quick() ? new int[] {1, 4} : LEAD_INS) {
        rows.add(
            continuations(
                "lead-in n=" + n,
                p ->
                    continuation(p, Strategy.STRATEGY_LEAD_IN, "target").toBuilder()
                        .setDraft("draft")
                        .setLeadIn(LeadInOptions.newBuilder().setN(n))
                        .build()));
      }
      return rows;
    }
  }

  /** Sums over a row's runs. */
  private static final class Totals {
    long large;
    long small;
    long tokens;
    double seconds;
    double cost;
    int runs;
    int switches;
    boolean fallback;

    void add(Bench.Run r) {
      GenerationStats s = r.stats();
      int n = r.last().getUsage().getCompletionTokens();
      boolean collab = s.getLargeTokens() + s.getSmallTokens() > 0;
      boolean smallModel = !s.getTargetModel().equals("target");
      // Autoregressive runs: all the writer's tokens; a small model alone costs N_S/N_L.
      large += collab ? s.getLargeTokens() : smallModel ? 0 : n;
      small += collab ? s.getSmallTokens() : smallModel ? n : 0;
      tokens += n;
      seconds += r.seconds();
      runs++;
      switches += s.getSwitches();
      fallback |= s.getFallback();
    }

    Row row(String name, Double compliance, Double correct, Double score, Double agree) {
      double share = large + small == 0 ? 0 : (double) large / (large + small);
      double ratio = PARAMS_SMALL / PARAMS_LARGE;
      return new Row(
          name,
          null,
          compliance,
          correct,
          score,
          agree,
          share,
          share + (1 - share) * ratio,
          tokens == 0 ? 0 : 1e3 * seconds / tokens,
          seconds == 0 ? 0 : tokens / seconds,
          runs == 0 ? 0 : (double) switches / runs,
          fallback);
    }
  }

  // The zoo's parameter counts (models/README.md): target 12.2M, draft and aligned 1.13M.
  private static final double PARAMS_LARGE = 12_194_688;
  private static final double PARAMS_SMALL = 1_127_296;

  /** Bag-of-words F1 of the first |reference| words of {@code output} against {@code reference}. */
  static double unigramF1(String output, String reference) {
    List<String> ref = Arrays.asList(reference.strip().split("\\s+"));
    List<String> got = Arrays.asList(output.strip().split("\\s+"));
    if (got.size() > ref.size()) {
      got = got.subList(0, ref.size());
    }
    Map<String, Integer> counts = new HashMap<>();
    ref.forEach(w -> counts.merge(w, 1, Integer::sum));
    int overlap = 0;
    for (String w : got) {
      Integer c = counts.get(w);
      if (c != null && c > 0) {
        overlap++;
        counts.put(w, c - 1);
      }
    }
    if (overlap == 0) {
      return 0;
    }
    double p = (double) overlap / got.size();
    double r = (double) overlap / ref.size();
    return 2 * p * r / (p + r);
  }

  /** The fraction of the large model's tokens matched before the first difference. */
  static double agreement(List<Integer> ids, List<Integer> large) {
    if (large == null || large.isEmpty()) {
      return 0;
    }
    int n = 0;
    while (n < ids.size() && n < large.size() && ids.get(n).equals(large.get(n))) {
      n++;
    }
    return (double) n / large.size();
  }

  // ---- output

  static String table(Report r) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "bench collab — zoo %s, %d held-out prompts, %d tokens per reply, greedy%n",
            r.models(),
            r.prompts(),
            r.maxTokens()));
    sb.append("\nNudging (base = target, plain prompt; aligned = its template):\n");
    sb.append(
        String.format(
            Locale.ROOT,
            "%-36s %10s %8s %13s %9s %9s%n",
            "run",
            "compliant",
            "correct",
            "aligned share",
            "tokens/s",
            "switches"));
    for (Row x : r.nudging()) {
      if (x.missing() != null) {
        sb.append(String.format(Locale.ROOT, "%-36s %s%n", x.name(), x.missing()));
        continue;
      }
      sb.append(
          String.format(
              Locale.ROOT,
              "%-36s %10.3f %8.3f %13.3f %9.1f %9.1f%s%n",
              x.name(),
              x.compliance(),
              x.correct(),
              1 - x.largeShare(),
              x.tokensPerSecond(),
              x.switchesPerReply(),
              x.fallback() ? "  (helper dropped)" : ""));
    }
    sb.append("\nEntropy switch and lead-in (small = draft 1.13M, large = target 12.2M):\n");
    sb.append(
        String.format(
            Locale.ROOT,
            "%-36s %8s %9s %11s %9s %10s %9s%n",
            "run",
            "ref F1",
            "= large",
            "large share",
            "PW cost",
            "ms/token",
            "switches"));
    List<Row> all = new ArrayList<>(r.ead());
    all.addAll(r.leadIn());
    for (Row x : all) {
      sb.append(
          String.format(
              Locale.ROOT,
              "%-36s %8.3f %9.3f %11.3f %9.3f %10.2f %9.1f%s%n",
              x.name(),
              x.score(),
              x.agreeLarge(),
              x.largeShare(),
              x.cost(),
              x.msPerToken(),
              x.switchesPerReply(),
              x.fallback() ? "  (helper dropped)" : ""));
    }
    sb.append(
        "\nref F1: unigram F1 of the reply's first words against the held-out continuation;"
            + " = large: share of the large model's own greedy reply reproduced before the first"
            + " difference; PW cost: f_L + (1 - f_L) N_S/N_L (the large model writing everything"
            + " = 1).");
    return sb.toString();
  }

  static String json(Report r) {
    JsonObject o =
        JsonParser.parseString(new GsonBuilder().serializeNulls().create().toJson(r))
            .getAsJsonObject();
    return new GsonBuilder().setPrettyPrinting().serializeNulls().create().toJson(o);
  }
}
