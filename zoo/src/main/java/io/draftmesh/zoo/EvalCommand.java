package io.draftmesh.zoo;

import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * {@code ./draftmesh eval zoo [--models DIR] [--corpus DIR] [--k N] [--new-tokens N] [--json FILE]
 * [--reply-tokens N] [--prompts N] [--seed N] [--threads N]}: prints the zoo table ({@link
 * EvalZoo}).
 */
public final class EvalCommand {
  static final String USAGE =
      "usage: draftmesh eval zoo [--models DIR (default models)] [--corpus DIR] [--k N (4)]"
          + " [--new-tokens N (48)] [--reply-tokens N (48)] [--prompts N (64)] [--seed N (1)]"
          + " [--threads N] [--samples N (4): replies shown per model] [--per-cell N (4)]"
          + " [--per-task N (10)] [--knowledge N (24)] [--long-length N (1024)]"
          + " [--json FILE: the report as JSON too]";

  private EvalCommand() {}

  /** Runs the evaluation; returns the process exit code. */
  public static int run(String[] args) throws Exception {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    Path models = Paths.get("models");
    Path corpus = Corpus.defaultDir();
    int k = 4;
    int newTokens = 48;
    int replyTokens = 48;
    int prompts = 64;
    long seed = 1;
    int threads = 0;
    int samples = 4;
    int perCell = 4;
    int perTask = 10;
    int knowledge = 24;
    int longLength = 1024;
    Path json = null;
    try {
      int i = args.length > 0 && args[0].equals("zoo") ? 1 : 0;
      for (; i < args.length; i++) {
        String a = args[i];
        if (a.equals("--help") || a.equals("-h")) {
          out.println(USAGE);
          return 0;
        }
        if (!a.startsWith("--") || i + 1 >= args.length) {
          throw new IllegalArgumentException("unexpected argument " + a);
        }
        String v = args[++i];
        switch (a) {
          case "--models" -> models = Paths.get(v);
          case "--corpus" -> corpus = Paths.get(v);
          case "--k" -> k = positive(a, v);
          case "--new-tokens" -> newTokens = positive(a, v);
          case "--reply-tokens" -> replyTokens = positive(a, v);
          case "--prompts" -> prompts = positive(a, v);
          case "--seed" -> seed = Long.parseLong(v);
          case "--threads" -> threads = positive(a, v);
          case "--samples" -> samples = Integer.parseInt(v);
          case "--per-cell" -> perCell = positive(a, v);
          case "--per-task" -> perTask = positive(a, v);
          case "--knowledge" -> knowledge = positive(a, v);
          case "--long-length" -> longLength = positive(a, v);
          case "--json" -> json = Paths.get(v);
          default -> throw new IllegalArgumentException("unknown flag " + a);
        }
      }
    } catch (IllegalArgumentException e) {
      err.println("draftmesh eval zoo: " + e.getMessage());
      err.println(USAGE);
      return 2;
    }
    Runtimes.configureDjl(threads);
    EvalZoo.Report report =
        new EvalZoo(
                new EvalZoo.Options(
                    models,
                    corpus,
                    k,
                    newTokens,
                    replyTokens,
                    prompts,
                    seed,
                    samples,
                    perCell,
                    perTask,
                    knowledge,
                    longLength),
                out)
            .run();
    if (json != null) {
      java.nio.file.Files.writeString(json, EvalZoo.json(report));
      out.println("wrote " + json);
    }
    return 0;
  }

  private static int positive(String flag, String value) {
    int n;
    try {
      n = Integer.parseInt(value);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(flag + " " + value + " (expected: a positive integer)");
    }
    if (n <= 0) {
      throw new IllegalArgumentException(flag + " " + value + " (expected: > 0)");
    }
    return n;
  }
}
