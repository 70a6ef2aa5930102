package io.draftmesh.zoo;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code ./draftmesh train ...}: builds the corpus and tokenizer if needed, then trains one model.
 *
 * <pre>
 * draftmesh train --preset target|draft|aligned [--out DIR] [--resume] [--flag value ...]
 * draftmesh train corpus              build the corpus only (installs the Debian packages)
 * draftmesh train tokenizer [--vocab N]
 * </pre>
 *
 * Any {@link TrainConfig} field can be overridden with its flag ({@code --steps 100}, {@code
 * --hidden 256}, ...); {@code --out} defaults to {@code models/<name>}, {@code --work} (resumable
 * state) to {@code ${XDG_CACHE_HOME:-~/.cache}/draftmesh/train/<name>}, {@code --corpus} to {@link
 * Corpus#defaultDir()}, {@code --dtype} (saved weights) to f16. Order matters for the presets:
 * {@code draft} distils from {@code models/target} ({@code --teacher}), {@code aligned} fine-tunes
 * {@code models/draft} ({@code --init}).
 */
public final class TrainCommand {
  static final String USAGE =
      "usage: draftmesh train [corpus | tokenizer] [--preset target-short|draft-short|aligned|draft|target|target-aligned|aligned-x|tiny]"
          + " [--out DIR] [--work DIR] [--corpus DIR] [--resume] [--dtype f16|f32] [--threads N]"
          + " [--name S] [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--intermediate N]"
          + " [--context N] [--vocab N] [--batch N] [--steps N] [--lr X] [--min-lr-ratio X]"
          + " [--warmup N] [--weight-decay X] [--clip X] [--seed N] [--eval-every N]"
          + " [--eval-windows N] [--save-every N] [--init DIR] [--instruct-mix X]"
          + " [--teacher DIR] [--distill X] [--long-mix X] [--ref-mix X] [--arch llama|qwen2]"
          + " [--seq N] [--task-tokens N]";

  /** How long an interrupted run may take to finish its step and save (an eval step included). */
  private static final long STOP_WAIT_MINUTES = 10;

  private TrainCommand() {}

  /** Presets: the zoo's committed models and a tiny one for smoke tests. */
  static Map<String, String> preset(String name) {
    Map<String, String> p = new LinkedHashMap<>();
    switch (name) {
      case "target-short":
        // Stage 1 of the target: from scratch at 256 tokens (the zoo's first target).
        put(p, "name target hidden 384 layers 6 heads 6 kv-heads 6 intermediate 1024");
        put(p, "batch 16 steps 1500 lr 1e-3 warmup 60 weight-decay 0.1 eval-every 150");
        break;
      case "draft-short":
        // Stage 1 of the draft, distilled from the stage-1 target: a draft is only as useful as
        // its agreement with the target.
        put(p, "name draft hidden 128 layers 3 heads 4 kv-heads 4 intermediate 352");
        put(p, "teacher models/target distill 1.0");
        put(p, "batch 16 steps 900 lr 2e-3 warmup 60 weight-decay 0.1 eval-every 150");
        break;
      case "aligned":
        // The shape comes from --init (the stage-1 draft).
        put(p, "name aligned init models/draft instruct-mix 0.7");
        put(p, "batch 16 steps 800 lr 5e-4 warmup 30 weight-decay 0.1 eval-every 100");
        break;
      case "draft":
        // Stage 2: the stage-1 draft continued at 2048 tokens on text + long-context tasks, at a
        // low learning rate (1e-3 cost 0.08 bits/byte on plain text in 24 steps; 3e-4 cost 0.04).
        // RoPE has no parameters, so only max_position_embeddings grows.
        put(p, "name draft init models/draft context 2048 long-mix 0.45 ref-mix 0.15");
        put(p, "batch 2 steps 30 lr 3e-4 warmup 3 weight-decay 0.1 eval-every 30");
        put(p, "eval-windows 8 save-every 5");
        break;
      case "target":
        // Stage 2: the stage-1 target continued the same way.
        put(p, "name target init models/target context 2048 long-mix 0.45 ref-mix 0.15");
        put(p, "batch 1 steps 132 lr 5e-4 warmup 10 weight-decay 0.1 eval-every 132");
        put(p, "eval-windows 8 save-every 10");
        break;
      case "target-aligned":
        // The long-context target fine-tuned with the mix that made `aligned`.
        put(p, "name target-aligned init models/target instruct-mix 0.7");
        put(p, "batch 8 steps 40 lr 5e-4 warmup 10 weight-decay 0.1 eval-every 40");
        put(p, "eval-windows 16 save-every 25");
        break;
      case "aligned-x":
        // Another family: Qwen2 (q/k/v biases) with its own 3,072-token BPE, from scratch.
        put(p, "name aligned-x arch qwen2 vocab 3072 hidden 128 layers 3 heads 4 kv-heads 4");
        put(p, "intermediate 352 instruct-mix 0.7");
        put(p, "batch 16 steps 160 lr 2e-3 warmup 16 weight-decay 0.1 eval-every 160");
        put(p, "eval-windows 16 save-every 100");
        break;
      case "tiny":
        put(p, "name tiny hidden 32 layers 1 heads 2 kv-heads 2 intermediate 64");
        put(p, "batch 4 steps 50 lr 3e-3 warmup 5 weight-decay 0.0 eval-every 25");
        break;
      default:
        throw new IllegalArgumentException(
            "--preset "
                + name
                + " (expected: target-short, draft-short, aligned, draft, target, target-aligned,"
                + " aligned-x or tiny)");
    }
    return p;
  }

  private static void put(Map<String, String> p, String pairs) {
    String[] parts = pairs.trim().split(" +");
    for (int i = 0; i + 1 < parts.length; i += 2) {
      p.put(parts[i], parts[i + 1]);
    }
  }

  /** Runs the command; returns the process exit code. */
  public static int run(String[] args) throws Exception {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      err.println("draftmesh train: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    if (o.help) {
      out.println(USAGE);
      return 0;
    }
    TrainConfig config = null;
    if (o.subcommand == null) {
      try {
        config = o.trainConfig();
      } catch (IllegalArgumentException e) {
        err.println("draftmesh train: " + e.getMessage());
        err.println(USAGE);
        return 2;
      }
    }
    Runtimes.configureDjl(o.threads);
    Corpus corpus = Corpus.prepare(o.corpusDir);
    out.printf(
        "corpus %s: %,d train docs (%,d bytes), %,d validation docs (%,d bytes), %d prompts%n",
        corpus.dir(),
        corpus.train().size(),
        Corpus.bytes(corpus.train()),
        corpus.valid().size(),
        Corpus.bytes(corpus.valid()),
        corpus.prompts().size());
    if ("corpus".equals(o.subcommand)) {
      return 0;
    }
    int vocab =
        config != null
            ? config.vocab()
            : Options.intOf(o.config, "vocab", ZooTokenizer.DEFAULT_VOCAB_SIZE);
    Path tokenizerJson = ZooTokenizer.ensure(corpus, vocab);
    out.println("tokenizer " + tokenizerJson);
    if (config == null) {
      return 0;
    }
    try (TextTokenizer tokenizer = TextTokenizer.load(tokenizerJson)) {
      Trainer.Data data =
          data(
              corpus,
              tokenizerJson,
              tokenizer,
              config.instructMix() > 0,
              config.longMix() > 0 || config.refMix() > 0);
      Path outDir = o.out != null ? o.out : Paths.get("models", config.name());
      Path work =
          o.work != null
              ? o.work
              : Corpus.defaultDir().resolveSibling("train").resolve(config.name());
      String command = "./draftmesh train " + String.join(" ", args);
      runStoppable(
          new Trainer(config, data, outDir, work, out, command).resume(o.resume).saveAs(o.dtype));
    }
    return 0;
  }

  /**
   * Runs {@code trainer} so that Ctrl-C or SIGTERM stops it cleanly: the shutdown hook asks the
   * trainer to stop after the current step and holds the JVM's exit until the state is saved and
   * every native array is freed. (Exiting while PyTorch is mid-backward crashes in its teardown.)
   */
  private static void runStoppable(Trainer trainer) throws IOException {
    AtomicBoolean stopRequested = new AtomicBoolean();
    CountDownLatch finished = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              stopRequested.set(true);
              try {
                finished.await(STOP_WAIT_MINUTES, TimeUnit.MINUTES);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "train-stop");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      trainer.stopWhen(stopRequested::get).run();
    } finally {
      finished.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // The hook is running; it returns at once now.
      }
    }
  }

  /** {@link #data(Corpus, Path, TextTokenizer, boolean, boolean)} without task rows. */
  static Trainer.Data data(
      Corpus corpus, Path tokenizerJson, TextTokenizer tokenizer, boolean instructions)
      throws IOException {
    return data(corpus, tokenizerJson, tokenizer, instructions, false);
  }

  /**
   * Tokenized splits (cached next to the corpus), for instruction tuning the text units, and for
   * task rows the train documents.
   */
  static Trainer.Data data(
      Corpus corpus,
      Path tokenizerJson,
      TextTokenizer tokenizer,
      boolean instructions,
      boolean tasks)
      throws IOException {
    String key = tokenizer.sha256().substring(0, 12);
    TokenData train =
        TokenData.load(corpus.train(), tokenizer, corpus.dir().resolve("train-" + key + ".tokens"));
    TokenData valid =
        TokenData.load(corpus.valid(), tokenizer, corpus.dir().resolve("valid-" + key + ".tokens"));
    List<String> units = instructions ? Instructions.units(corpus.train()) : List.of();
    return new Trainer.Data(
        tokenizerJson, tokenizer, train, valid, units, tasks ? corpus.train() : List.of());
  }

  /** Parsed command line. */
  static final class Options {
    String subcommand;
    boolean help;
    boolean resume;
    Path out;
    Path work;
    Path corpusDir = Corpus.defaultDir();
    DType dtype = DType.F16;
    int threads;
    final Map<String, String> config = new LinkedHashMap<>();

    /** Config keys given on the command line (the rest come from the preset or defaults). */
    final java.util.Set<String> explicit = new java.util.HashSet<>();

    static Options parse(String[] args) {
      Options o = new Options();
      Map<String, String> overrides = new LinkedHashMap<>();
      String presetName = null;
      int i = 0;
      if (args.length > 0 && !args[0].startsWith("--")) {
        o.subcommand = args[0];
        if (!List.of("corpus", "tokenizer").contains(o.subcommand)) {
          throw new IllegalArgumentException(
              "unknown subcommand " + o.subcommand + " (expected: corpus, tokenizer or flags)");
        }
        i = 1;
      }
      for (; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--help") || a.equals("-h")) {
          o.help = true;
          continue;
        }
        if (a.equals("--resume")) {
          o.resume = true;
          continue;
        }
        if (!a.startsWith("--") || i + 1 >= args.length) {
          throw new IllegalArgumentException("unexpected argument " + a);
        }
        String key = a.substring(2);
        String value = args[++i];
        switch (key) {
          case "preset":
            presetName = value;
            break;
          case "out":
            o.out = Paths.get(value);
            break;
          case "work":
            o.work = Paths.get(value);
            break;
          case "corpus":
            o.corpusDir = Paths.get(value);
            break;
          case "dtype":
            o.dtype = DType.parse(value);
            break;
          case "threads":
            o.threads = Integer.parseInt(value);
            break;
          default:
            if (!KEYS.contains(key)) {
              throw new IllegalArgumentException("unknown flag --" + key);
            }
            overrides.put(key, value);
        }
      }
      if (presetName != null) {
        o.config.putAll(preset(presetName.toLowerCase(Locale.ROOT)));
      }
      o.config.putAll(overrides);
      o.explicit.addAll(overrides.keySet());
      return o;
    }

    static final List<String> KEYS =
        List.of(
            "name",
            "hidden",
            "layers",
            "heads",
            "kv-heads",
            "intermediate",
            "context",
            "vocab",
            "batch",
            "steps",
            "lr",
            "min-lr-ratio",
            "warmup",
            "weight-decay",
            "clip",
            "seed",
            "eval-every",
            "eval-windows",
            "save-every",
            "init",
            "instruct-mix",
            "teacher",
            "distill",
            "long-mix",
            "ref-mix",
            "arch",
            "seq",
            "task-tokens");

    TrainConfig trainConfig() throws IOException {
      Map<String, String> c = new LinkedHashMap<>(config);
      if (!c.containsKey("name")) {
        throw new IllegalArgumentException("no model given (expected: --preset or --name ...)");
      }
      if (c.containsKey("init")) {
        // Fine-tuning keeps the initial model's shape.
        Path configJson = Paths.get(c.get("init")).resolve("config.json");
        if (!java.nio.file.Files.isRegularFile(configJson)) {
          throw new IllegalArgumentException(
              "--init " + c.get("init") + ": no config.json (expected: a trained model directory)");
        }
        ModelConfig m = ModelConfig.parse(configJson);
        c.put("hidden", Integer.toString(m.hiddenSize()));
        c.put("layers", Integer.toString(m.numLayers()));
        c.put("heads", Integer.toString(m.numHeads()));
        c.put("kv-heads", Integer.toString(m.numKvHeads()));
        c.put("intermediate", Integer.toString(m.intermediateSize()));
        c.put("vocab", Integer.toString(m.vocabSize()));
        c.put("arch", m.attentionBias() ? TrainConfig.QWEN2 : TrainConfig.LLAMA);
      }
      int steps = intOf(c, "steps", 1000);
      // Schedule lengths from a preset shrink with a shorter --steps; explicit ones are kept.
      int warmup = intOf(c, "warmup", Math.min(100, steps / 10));
      int evalEvery = intOf(c, "eval-every", Math.max(1, steps / 10));
      if (!explicit.contains("warmup")) {
        warmup = Math.min(warmup, steps / 10);
      }
      if (!explicit.contains("eval-every")) {
        evalEvery = Math.min(evalEvery, steps);
      }
      String init = c.get("init");
      String teacher = c.get("teacher");
      return new TrainConfig(
          c.get("name"),
          intOf(c, "hidden", 128),
          intOf(c, "layers", 2),
          intOf(c, "heads", 4),
          intOf(c, "kv-heads", intOf(c, "heads", 4)),
          intOf(c, "intermediate", 4 * intOf(c, "hidden", 128)),
          intOf(c, "context", 256),
          intOf(c, "vocab", ZooTokenizer.DEFAULT_VOCAB_SIZE),
          intOf(c, "batch", 16),
          steps,
          doubleOf(c, "lr", 1e-3),
          doubleOf(c, "min-lr-ratio", 0.1),
          warmup,
          doubleOf(c, "weight-decay", 0.1),
          doubleOf(c, "clip", 1.0),
          Long.parseLong(c.getOrDefault("seed", "1")),
          evalEvery,
          intOf(c, "eval-windows", 64),
          intOf(c, "save-every", 100),
          init == null ? null : Paths.get(init),
          doubleOf(c, "instruct-mix", 0.0),
          teacher == null ? null : Paths.get(teacher),
          doubleOf(c, "distill", teacher == null ? 0.0 : 1.0),
          doubleOf(c, "long-mix", 0.0),
          doubleOf(c, "ref-mix", 0.0),
          c.getOrDefault("arch", TrainConfig.LLAMA),
          intOf(c, "seq", 0),
          intOf(c, "task-tokens", 0));
    }

    static int intOf(Map<String, String> c, String key, int dflt) {
      String v = c.get(key);
      try {
        return v == null ? dflt : Integer.parseInt(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--" + key + " " + v + " (expected: an integer)");
      }
    }

    private static double doubleOf(Map<String, String> c, String key, double dflt) {
      String v = c.get(key);
      try {
        return v == null ? dflt : Double.parseDouble(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--" + key + " " + v + " (expected: a number)");
      }
    }
  }
}
