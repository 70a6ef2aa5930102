package io.draftmesh.zoo;

import ai.djl.ndarray.NDManager;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.Proposal;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.runtime.Verification;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Measures the zoo on held-out data through the serving runtime:
 *
 * <ul>
 *   <li>bits/byte of every model on the whole validation split;
 *   <li>greedy acceptance α(draft → target) at k: the draft proposes k tokens ({@link
 *       Sequence#propose}), the target verifies them in one pass ({@link Sequence#verify}); α is
 *       the fraction of proposed tokens accepted, over {@code newTokens} generated tokens per
 *       held-out prompt;
 *   <li>the same at temperature 1 with the exact sampling rule (accept with min(1, p/q)), the draft
 *       sending its full distributions;
 *   <li>instruction-template compliance ({@link Instructions#judge}) of the base target and of the
 *       aligned model on held-out instructions, greedy;
 *   <li>step times: one decode step of each model, and one verify of k tokens on the target;
 *   <li>the task suites ({@link TaskEval}) on the base models: long-context accuracy by prompt
 *       length × needle depth and on the other long tasks (models with a context of at least 2048),
 *       and the closed-book knowledge tasks, with the target − draft gap.
 * </ul>
 *
 * bits/byte is measured on windows of {@link #COMPARABLE_WINDOW} tokens (comparable across zoo
 * versions and contexts) and on windows of the model's whole context.
 */
public final class EvalZoo {
  /** Every model the zoo may hold, in the order they are reported. */
  static final List<String> MODELS =
      List.of("target", "draft", "aligned", "target-aligned", "aligned-x");

  /** Models whose template compliance is measured. */
  static final List<String> COMPLIANCE_MODELS =
      List.of("target", "aligned", "target-aligned", "aligned-x");

  /** Base models scored on the task suites. */
  static final List<String> TASK_MODELS = List.of("target", "draft");

  /** Window of the comparable bits/byte: the first zoo's context. */
  static final int COMPARABLE_WINDOW = 256;

  /** Context from which a model is scored on the long-context tasks. */
  static final int LONG_CONTEXT = 2048;

  /**
   * Settings of one evaluation.
   *
   * @param perCell held-out instances per (length, depth) cell of the single-needle grid
   * @param perTask held-out instances of each other long-context task
   * @param knowledgePerTask examples of each knowledge task
   * @param longLength prompt length of the other long-context tasks
   */
  public record Options(
      Path models,
      Path corpusDir,
      int k,
      int newTokens,
      int replyTokens,
      int prompts,
      long seed,
      int samples,
      int perCell,
      int perTask,
      int knowledgePerTask,
      int longLength) {
    /** The v1 settings with small task sets. */
    public Options(
        Path models,
        Path corpusDir,
        int k,
        int newTokens,
        int replyTokens,
        int prompts,
        long seed,
        int samples) {
      this(models, corpusDir, k, newTokens, replyTokens, prompts, seed, samples, 4, 10, 24, 1024);
    }
  }

  /**
   * Per-model numbers.
   *
   * @param bitsPerByte on {@link #COMPARABLE_WINDOW}-token windows of the validation split
   * @param bitsPerByteFullContext on windows of the model's whole context
   */
  public record ModelStats(
      String name,
      long parameters,
      int context,
      String tokenizerSha256,
      double bitsPerByte,
      double bitsPerByteFullContext,
      long validTokens,
      double stepMillis) {}

  /**
   * Speculation numbers for one draft/target pair.
   *
   * @param greedyAlpha per-token acceptance: accepted draft tokens / draft tokens the target judged
   *     on its own trajectory (the accepted ones plus the first rejected one of each round; tokens
   *     after a rejection are never judged). The α of Leviathan et al.
   * @param greedyPerProposed accepted / proposed (k per round), lower than α by construction
   * @param greedyMeanAccepted accepted draft tokens per round (0..k)
   */
  public record Speculation(
      double greedyAlpha,
      double greedyPerProposed,
      double greedyMeanAccepted,
      double sampledAlpha,
      double sampledPerProposed,
      double sampledMeanAccepted,
      long proposed,
      double draftStepMillis,
      double targetStepMillis,
      double verifyMillis) {}

  /** Compliance of one model with the instruction template. */
  public record Compliance(
      String name, int examples, double complianceRate, double accuracy, List<String> samples) {}

  /** Everything {@link #run} measured. */
  public record Report(
      List<ModelStats> models,
      Speculation speculation,
      List<Compliance> compliance,
      List<TaskEval.Scores> tasks,
      int prompts) {}

  private final Options options;
  private final PrintStream log;

  public EvalZoo(Options options, PrintStream log) {
    this.options = options;
    this.log = log;
  }

  public Report run() throws IOException {
    Corpus corpus = Corpus.prepare(options.corpusDir());
    List<Corpus.Prompt> prompts =
        corpus.prompts().subList(0, Math.min(options.prompts(), corpus.prompts().size()));
    Path target = options.models().resolve("target");
    Path draft = options.models().resolve("draft");
    List<ModelStats> stats = new ArrayList<>();
    for (String name : MODELS) {
      Path dir = options.models().resolve(name);
      if (!Files.isDirectory(dir)) {
        log.println("skipping " + dir + ": not found");
        continue;
      }
      stats.add(modelStats(dir, corpus, prompts));
    }
    Speculation speculation = null;
    if (Files.isDirectory(target) && Files.isDirectory(draft)) {
      speculation = speculation(target, draft, prompts);
    }
    List<Compliance> compliance = new ArrayList<>();
    List<Instructions.Example> examples = Instructions.evalSet(prompts);
    for (String name : COMPLIANCE_MODELS) {
      Path dir = options.models().resolve(name);
      if (Files.isDirectory(dir)) {
        compliance.add(compliance(dir, examples));
      }
    }
    List<TaskEval.Scores> tasks = new ArrayList<>();
    try (TextTokenizer tokenizer =
        TextTokenizer.load(ZooTokenizer.ensure(corpus, ZooTokenizer.DEFAULT_VOCAB_SIZE))) {
      TaskEval eval =
          new TaskEval(
              new LongTasks(corpus.valid(), tokenizer),
              corpus.train(),
              options.perCell(),
              options.perTask(),
              options.knowledgePerTask(),
              options.longLength());
      for (String name : TASK_MODELS) {
        Path dir = options.models().resolve(name);
        if (Files.isDirectory(dir)) {
          tasks.add(taskScores(eval, dir));
        }
      }
    }
    Report report = new Report(stats, speculation, compliance, tasks, prompts.size());
    print(report);
    return report;
  }

  private ModelStats modelStats(Path dir, Corpus corpus, List<Corpus.Prompt> prompts)
      throws IOException {
    String name = dir.getFileName().toString();
    log.println("evaluating " + name + " ...");
    Evaluation.Loss loss;
    Evaluation.Loss full;
    long params;
    int context;
    String sha;
    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(dir);
        TextTokenizer tokenizer = TextTokenizer.load(ckpt.tokenizerJson());
        LlamaModel model = LlamaModel.load(ckpt, manager, ckpt.config().maxPositionEmbeddings())) {
      params = ckpt.config().numParameters();
      context = ckpt.config().maxPositionEmbeddings();
      sha = tokenizer.sha256();
      TokenData valid = TokenData.tokenize(corpus.valid(), tokenizer);
      int[] byteLengths = TokenData.byteLengths(tokenizer);
      int window = Math.min(COMPARABLE_WINDOW, model.maxContext());
      loss =
          Evaluation.evaluate(
              model, manager, valid.tokens(), byteLengths, window, Trainer.evalBatch(window), 0);
      full =
          model.maxContext() == window
              ? loss
              : Evaluation.evaluate(
                  model, manager, valid.tokens(), byteLengths, model.maxContext(), 1, 0);
    }
    double ms;
    try (InferenceEngine engine = engine(dir)) {
      ms = decodeMillis(engine, prompts);
    }
    return new ModelStats(
        name, params, context, sha, loss.bitsPerByte(), full.bitsPerByte(), loss.tokens(), ms);
  }

  private TaskEval.Scores taskScores(TaskEval eval, Path dir) {
    String name = dir.getFileName().toString();
    log.println("scoring " + name + " on the task suites ...");
    // The whole context of the checkpoint (the engine caps it at max_position_embeddings).
    try (InferenceEngine engine =
        InferenceEngine.load(EngineConfig.defaults(dir).withMaxContext(1 << 20))) {
      return eval.score(name, engine, engine.model().maxContext() >= LONG_CONTEXT);
    }
  }

  private static InferenceEngine engine(Path dir) {
    InferenceEngine e = InferenceEngine.load(EngineConfig.defaults(dir).withMaxContext(512));
    e.warmUp();
    return e;
  }

  /** Mean milliseconds of one autoregressive decode step (propose k = 1), after prefill. */
  private double decodeMillis(InferenceEngine engine, List<Corpus.Prompt> prompts) {
    long nanos = 0;
    int steps = 0;
    int n = Math.min(9, prompts.size());
    for (int j = 0; j < n; j++) {
      Corpus.Prompt p = prompts.get(j);
      Sequence s = engine.open(promptIds(engine, p), SamplingParams.GREEDY, "decode-timing");
      try {
        s.prefill(ResultOptions.NONE).join();
        for (int i = 0; i < 16; i++) {
          long t0 = System.nanoTime();
          s.propose(1, 0f, ResultOptions.NONE).join();
          if (j > 0 || n == 1) { // the first prompt warms the JIT and the allocator up
            nanos += System.nanoTime() - t0;
            steps++;
          }
        }
      } finally {
        s.closeAsync().join();
      }
    }
    return nanos / 1e6 / steps;
  }

  private static int[] promptIds(InferenceEngine engine, Corpus.Prompt p) {
    int[] text = engine.tokenizer().encode(p.prompt());
    int[] ids = new int[text.length + 1];
    ids[0] = ZooTokenizer.END_OF_TEXT_ID;
    System.arraycopy(text, 0, ids, 1, text.length);
    return ids;
  }

  private Speculation speculation(Path targetDir, Path draftDir, List<Corpus.Prompt> prompts) {
    log.println("measuring draft → target acceptance at k = " + options.k() + " ...");
    try (InferenceEngine target = engine(targetDir);
        InferenceEngine draft = engine(draftDir)) {
      if (!target.tokenizer().sha256().equals(draft.tokenizer().sha256())) {
        throw new IllegalStateException(
            "draft and target tokenizers differ (expected: one shared tokenizer)");
      }
      Rounds greedy = new Rounds();
      Rounds sampled = new Rounds();
      for (int i = 0; i < prompts.size(); i++) {
        int[] ids = promptIds(target, prompts.get(i));
        speculate(target, draft, ids, SamplingParams.GREEDY, greedy);
        SamplingParams t1 = new SamplingParams(1f, 0, 0f, 0f, options.seed() + i);
        speculate(target, draft, ids, t1, sampled);
      }
      return new Speculation(
          greedy.alpha(),
          greedy.perProposed(),
          greedy.meanAccepted(),
          sampled.alpha(),
          sampled.perProposed(),
          sampled.meanAccepted(),
          greedy.proposed,
          greedy.draftNanos / 1e6 / greedy.proposed,
          decodeMillis(target, prompts),
          greedy.verifyNanos / 1e6 / greedy.rounds);
    }
  }

  /** Accumulated speculation rounds. */
  private static final class Rounds {
    long proposed;
    long accepted;
    long judged;
    long rounds;
    long draftNanos;
    long verifyNanos;

    double alpha() {
      return judged == 0 ? Double.NaN : (double) accepted / judged;
    }

    double perProposed() {
      return proposed == 0 ? Double.NaN : (double) accepted / proposed;
    }

    double meanAccepted() {
      return rounds == 0 ? Double.NaN : (double) accepted / rounds;
    }
  }

  /**
   * Speculative decoding of {@code newTokens} tokens after {@code prompt}: the draft proposes k,
   * the target verifies; the draft is rolled back to the accepted prefix plus the target's token.
   */
  private void speculate(
      InferenceEngine target,
      InferenceEngine draft,
      int[] prompt,
      SamplingParams sampling,
      Rounds r) {
    int k = options.k();
    boolean greedy = sampling.isGreedy();
    ResultOptions draftOptions = greedy ? ResultOptions.NONE : new ResultOptions(0, true);
    Sequence t = target.open(prompt, sampling, "eval-target");
    Sequence d = draft.open(prompt, sampling, "eval-draft");
    try {
      t.prefill(ResultOptions.NONE).join();
      d.prefill(ResultOptions.NONE).join();
      int length = prompt.length;
      int generated = 0;
      while (generated < options.newTokens()) {
        long t0 = System.nanoTime();
        Proposal p = d.propose(k, 0f, draftOptions).join();
        long t1 = System.nanoTime();
        List<ProbDist> dists = null;
        if (!greedy) {
          dists = new ArrayList<>();
          for (Position pos : p.positions()) {
            dists.add(pos.full());
          }
        }
        Verification v = t.verify(p.tokens(), dists, ResultOptions.NONE).join();
        long t2 = System.nanoTime();
        r.draftNanos += t1 - t0;
        r.verifyNanos += t2 - t1;
        r.rounds++;
        r.proposed += p.tokens().length;
        r.accepted += v.accepted();
        r.judged += v.accepted() + (v.accepted() < p.tokens().length ? 1 : 0);
        d.truncate(length + v.accepted()).join();
        d.append(new int[] {v.nextToken()}).join();
        length += v.accepted() + 1;
        generated += v.accepted() + 1;
        boolean ended = v.nextToken() == ZooTokenizer.END_OF_TEXT_ID;
        for (int i = 0; i < v.accepted(); i++) {
          ended |= p.tokens()[i] == ZooTokenizer.END_OF_TEXT_ID;
        }
        if (ended || length + k + 1 >= target.model().maxContext()) {
          break;
        }
      }
    } finally {
      t.closeAsync().join();
      d.closeAsync().join();
    }
  }

  private Compliance compliance(Path dir, List<Instructions.Example> examples) {
    String name = dir.getFileName().toString();
    log.println("measuring template compliance of " + name + " ...");
    int complies = 0;
    int correct = 0;
    List<String> samples = new ArrayList<>();
    try (InferenceEngine engine = engine(dir)) {
      for (Instructions.Example e : examples) {
        int[] reply = generate(engine, Instructions.promptIds(e, engine.tokenizer()));
        Instructions.Verdict v = Instructions.judge(e, reply, engine.tokenizer());
        complies += v.complies() ? 1 : 0;
        correct += v.correct() ? 1 : 0;
        if (samples.size() < options.samples()) {
          samples.add(e.instruction() + " → " + v.reply());
        }
      }
    }
    return new Compliance(
        name,
        examples.size(),
        (double) complies / examples.size(),
        (double) correct / examples.size(),
        samples);
  }

  /** Greedy reply of up to {@code replyTokens} tokens, stopping after {@code <|end|>} or eot. */
  private int[] generate(InferenceEngine engine, int[] prompt) {
    List<Integer> out = new ArrayList<>();
    Sequence s = engine.open(prompt, SamplingParams.GREEDY, "eval-compliance");
    try {
      outer:
      while (out.size() < options.replyTokens()) {
        int k = Math.min(8, options.replyTokens() - out.size());
        for (int id : s.propose(k, 0f, ResultOptions.NONE).join().tokens()) {
          out.add(id);
          if (id == ZooTokenizer.END_ID || id == ZooTokenizer.END_OF_TEXT_ID) {
            break outer;
          }
        }
      }
    } finally {
      s.closeAsync().join();
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  private void print(Report r) {
    PrintStream o = log;
    o.println();
    o.printf("DraftMesh model zoo — %s, %d held-out prompts%n", options.models(), r.prompts());
    o.printf(
        "%-14s %12s %7s %10s %10s %12s %14s  %s%n",
        "model",
        "parameters",
        "context",
        "bits/byte",
        "(context)",
        "valid tokens",
        "ms/decode step",
        "tokenizer");
    for (ModelStats m : r.models()) {
      o.printf(
          "%-14s %,12d %7d %10.4f %10.4f %,12d %14.2f  %s%n",
          m.name(),
          m.parameters(),
          m.context(),
          m.bitsPerByte(),
          m.bitsPerByteFullContext(),
          m.validTokens(),
          m.stepMillis(),
          m.tokenizerSha256().substring(0, 12));
    }
    o.printf(
        "bits/byte on %d-token windows of the validation split (comparable across contexts);"
            + " (context): on windows of the model's whole context%n",
        COMPARABLE_WINDOW);
    Speculation s = r.speculation();
    if (s != null) {
      o.println();
      o.printf(
          "speculation draft → target, k = %d, %d new tokens per prompt (%,d draft tokens proposed):%n",
          options.k(), options.newTokens(), s.proposed());
      o.printf(
          "  greedy        α = %.3f per judged token; %.3f of proposed tokens accepted; %.2f of %d"
              + " per round%n",
          s.greedyAlpha(), s.greedyPerProposed(), s.greedyMeanAccepted(), options.k());
      o.printf(
          "  sampling T=1  α = %.3f per judged token; %.3f of proposed tokens accepted; %.2f of %d"
              + " per round%n",
          s.sampledAlpha(), s.sampledPerProposed(), s.sampledMeanAccepted(), options.k());
      o.printf(
          "  draft step %.2f ms, target step %.2f ms (c = %.2f), target verify of %d %.2f ms%n",
          s.draftStepMillis(),
          s.targetStepMillis(),
          s.draftStepMillis() / s.targetStepMillis(),
          options.k(),
          s.verifyMillis());
    }
    if (!r.compliance().isEmpty()) {
      o.println();
      o.printf(
          "instruction-template compliance (greedy, %d-token replies):%n", options.replyTokens());
      for (Compliance c : r.compliance()) {
        o.printf(
            "  %-14s %.3f compliant, %.3f correct (%d held-out instructions)%n",
            c.name(), c.complianceRate(), c.accuracy(), c.examples());
        for (String sample : c.samples()) {
          o.println("      " + sample.replace("\n", "\\n"));
        }
      }
    }
    printTasks(r.tasks());
  }

  private void printTasks(List<TaskEval.Scores> tasks) {
    PrintStream o = log;
    for (TaskEval.Scores s : tasks) {
      o.println();
      o.printf("tasks — %s (greedy, held-out)%n", s.name());
      if (s.grid() != null) {
        o.printf(
            "  single needle, exact match, %d per cell (pass key / rare word):%n",
            s.grid().perCell());
        StringBuilder head = new StringBuilder(String.format("    %-8s", "length"));
        for (int d : LongTasks.GRID_DEPTHS) {
          head.append(String.format(" %6s", d + "%"));
        }
        o.println(head.append(String.format(" %7s", "mean")));
        for (Map.Entry<Integer, Map<Integer, Double>> row : s.grid().cells().entrySet()) {
          StringBuilder line = new StringBuilder(String.format("    %-8d", row.getKey()));
          for (double v : row.getValue().values()) {
            line.append(String.format(" %6.2f", v));
          }
          o.println(line.append(String.format(" %7.3f", s.grid().byLength().get(row.getKey()))));
        }
        o.printf("  at %d tokens, %d each:", s.longLength(), options.perTask());
        for (Map.Entry<String, Double> e : s.longTasks().entrySet()) {
          o.printf(" %s %.3f", e.getKey(), e.getValue());
        }
        o.printf("%n  prefill of a %d-token prompt %.0f ms%n", s.longLength(), s.prefillMillis());
      } else {
        o.println("  long-context tasks: skipped (context below " + LONG_CONTEXT + ")");
      }
      o.printf("  knowledge (train-split text, word F1, %d each):", options.knowledgePerTask());
      for (Map.Entry<String, Double> e : s.knowledge().entrySet()) {
        o.printf(" %s %.3f", e.getKey(), e.getValue());
      }
      o.println();
      for (String sample : s.samples()) {
        o.println("      " + sample.replace("\n", "\\n"));
      }
    }
    TaskEval.Scores t = find(tasks, "target");
    TaskEval.Scores d = find(tasks, "draft");
    if (t != null && d != null) {
      o.printf(
          "%ntarget − draft on the knowledge tasks (mean word F1): %+.3f%n",
          t.knowledge().get("mean") - d.knowledge().get("mean"));
    }
  }

  private static TaskEval.Scores find(List<TaskEval.Scores> tasks, String name) {
    for (TaskEval.Scores s : tasks) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    return null;
  }

  /** The report as JSON (NaN where a number could not be measured). */
  public static String json(Report r) {
    return new com.google.gson.GsonBuilder()
        .setPrettyPrinting()
        .serializeSpecialFloatingPointValues()
        .disableHtmlEscaping()
        .create()
        .toJson(r);
  }
}
