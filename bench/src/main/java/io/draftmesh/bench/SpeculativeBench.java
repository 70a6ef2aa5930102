package io.draftmesh.bench;

import com.google.gson.JsonParser;
import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.assembly.RandomModels;
import io.draftmesh.assembly.SessionClient;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.Proposal;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.engine.speculative.SpeculationMath;
import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verify;
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
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code draftmesh bench speculative}: speculative decoding through a running mesh (target worker,
 * draft worker and router in this JVM, each on its own real port), on held-out prompts, greedy.
 *
 * <p>Every setting (autoregressive; speculative with k = 2, 4, 8 and adaptive k; n-gram; and the
 * target engine in-process without the mesh) runs every prompt, interleaved prompt by prompt in a
 * rotating order so that load from other processes hits all settings alike. Every run generates
 * exactly {@code --max-tokens} tokens (the router's {@code ignore_eos}), so tokens/s compare like
 * with like; tokens/s is the decode phase: tokens after the first over the time from the first
 * token to the last (the chunk with the finish reason; the first token comes from the prefill,
 * which no strategy changes).
 *
 * <p>Beside it, single worker ops are timed over direct sessions (gRPC round trips, medians): a
 * draft Propose(k=1) step against a target Propose(k=1) step gives c; a target Verify of k draft
 * tokens (k+1 tokens fed, as in a router round) against the target step gives the verify/decode
 * ratio. From those and each setting's measured per-token acceptance α ({@link #fittedAlpha}: from
 * the tokens per round it achieved) comes the analytical ideal speedup ({@link
 * SpeculationMath#idealSpeedup(double, int, double, double)}), and efficiency = measured speedup /
 * ideal.
 *
 * <p>The bench is also an end-to-end losslessness check: every setting's greedy output must equal
 * the autoregressive output token for token; any difference is printed as MISMATCH and the exit
 * code is 1.
 */
public final class SpeculativeBench {
  static final double TARGET_EFFICIENCY = 0.9;
  static final double TARGET_MESH_OVERHEAD = 0.95;

  /** The router's autoregressive chunk, passed to it and mirrored by the in-process baseline. */
  static final int AR_CHUNK = 8;

  /** Draft lengths whose verify cost is measured; others are interpolated. */
  static final int[] VERIFY_KS = {1, 2, 4, 8, 16, 32};

  private static final long RPC_DEADLINE_S = 600;
  private static final int STEP_WARMUP = 3;

  /** What the settings warm up on: none of the measured prompts. */
  static final String WARM_UP_PROMPT =
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was";

  /** Warm-up passes at most, and the JIT's share of a pass below which the JVM counts as warm. */
  static final int MAX_WARM_PASSES = 8;

  static final double JIT_QUIET = 0.10;

  /** Parsed command line. */
  record Options(
      boolean json,
      boolean quick,
      int prompts,
      int maxTokens,
      int stepSamples,
      Path targetModel,
      Path draftModel,
      boolean random,
      Path cacheDir,
      KvDtype kvDtype) {}

  /** One way of generating. {@code strategy} null = the target engine in-process. */
  record Setting(
      String key,
      String label,
      Strategy strategy,
      int k,
      boolean adaptive,
      Drafter drafter,
      boolean draftAhead) {
    Setting(String key, String label, Strategy strategy, int k, boolean adaptive) {
      this(key, label, strategy, k, adaptive, Drafter.DRAFTER_CHAIN, false);
    }

    /** The same chain with draft-ahead: the draft proposes the next round during each verify. */
    Setting withDraftAhead() {
      return new Setting(key + "_ahead", label + " ahead", strategy, k, adaptive, drafter, true);
    }

    /** A tree drafter's setting: {@code k} is its node budget. */
    static Setting tree(Drafter drafter, String name, int nodes) {
      return new Setting(
          "tree_" + name.toLowerCase(java.util.Locale.ROOT).replace('-', '_') + "_" + nodes,
          name + " tree " + nodes,
          Strategy.STRATEGY_SPECULATIVE,
          nodes,
          false,
          drafter,
          false);
    }

    boolean tree() {
      return drafter != Drafter.DRAFTER_CHAIN;
    }

    /**
     * Whether the setting needs a router of its own: Token Recycling's table learns from every
     * request its router serves, and a greedy run of a prompt another setting already ran would
     * draft from that run's very output (the rows measured so before this stop were inflated).
     */
    boolean learnsAcrossRequests() {
      return drafter == Drafter.DRAFTER_TOKEN_RECYCLING;
    }

    boolean inProcess() {
      return strategy == null;
    }

    boolean speculative() {
      return strategy == Strategy.STRATEGY_SPECULATIVE;
    }

    boolean drafted() {
      return speculative() || strategy == Strategy.STRATEGY_NGRAM;
    }
  }

  static final Setting ENGINE = new Setting("engine", "engine in-process (AR)", null, 0, false);
  static final Setting AUTOREGRESSIVE =
      new Setting("autoregressive", "autoregressive", Strategy.STRATEGY_AUTOREGRESSIVE, 0, false);
  static final List<Setting> SETTINGS =
      List.of(
          ENGINE,
          AUTOREGRESSIVE,
          new Setting("speculative_k2", "speculative k=2", Strategy.STRATEGY_SPECULATIVE, 2, false),
          new Setting("speculative_k4", "speculative k=4", Strategy.STRATEGY_SPECULATIVE, 4, false),
          new Setting("speculative_k4", "speculative k=4", Strategy.STRATEGY_SPECULATIVE, 4, false)
              .withDraftAhead(),
          new Setting("speculative_k8", "speculative k=8", Strategy.STRATEGY_SPECULATIVE, 8, false),
          new Setting(
              "speculative_adaptive",
              "speculative adaptive",
              Strategy.STRATEGY_SPECULATIVE,
              4,
              true),
          new Setting("ngram", "n-gram", Strategy.STRATEGY_NGRAM, 0, false),
          Setting.tree(Drafter.DRAFTER_DYSPEC, "DySpec", 8),
          Setting.tree(Drafter.DRAFTER_DYSPEC, "DySpec", 16),
          Setting.tree(Drafter.DRAFTER_DYSPEC, "DySpec", 32),
          Setting.tree(Drafter.DRAFTER_RSD, "RSD", 8),
          Setting.tree(Drafter.DRAFTER_RSD, "RSD", 16),
          Setting.tree(Drafter.DRAFTER_RSD, "RSD", 32),
          Setting.tree(Drafter.DRAFTER_TOKEN_RECYCLING, "token-recycling", 4),
          Setting.tree(Drafter.DRAFTER_TOKEN_RECYCLING, "token-recycling", 8),
          Setting.tree(Drafter.DRAFTER_TOKEN_RECYCLING, "token-recycling", 16),
          Setting.tree(Drafter.DRAFTER_TOKEN_RECYCLING, "token-recycling", 32),
          Setting.tree(Drafter.DRAFTER_LOOKAHEAD, "lookahead", 4),
          Setting.tree(Drafter.DRAFTER_LOOKAHEAD, "lookahead", 8),
          Setting.tree(Drafter.DRAFTER_LOOKAHEAD, "lookahead", 16),
          Setting.tree(Drafter.DRAFTER_LOOKAHEAD, "lookahead", 32));

  /**
   * One generation: its tokens, decode-phase time and the router's final stats (null in-process).
   */
  record Run(int[] ids, long decodeNanos, GenerationStats stats, FinishReason finish) {}

  /** Sums over every prompt of one setting. */
  static final class Totals {
    long decodeTokens;
    long decodeNanos;
    long drafted;
    long accepted;
    long rounds;
    long targetCalls;
    long draftCalls;
    long draftAheadCalls; // of draftCalls: sent while the target verified
    long draftAheadHits; // of those: used by the next round
    double draftMs; // the router's wall time waiting on the draft (tree drafters: drafting)
    double verifyMs; // the router's wall time waiting on the target's Verifies
    long fallbacks;
    final List<Double> perPrompt = new ArrayList<>();

    void add(Run r) {
      long tokens = Math.max(0, r.ids().length - 1);
      decodeTokens += tokens;
      decodeNanos += r.decodeNanos();
      perPrompt.add(r.decodeNanos() > 0 ? tokens / (r.decodeNanos() / 1e9) : 0);
      GenerationStats s = r.stats();
      if (s != null) {
        drafted += s.getDrafted();
        accepted += s.getAccepted();
        rounds += s.getRounds();
        targetCalls += s.getTargetCalls();
        draftCalls += s.getDraftCalls();
        draftAheadCalls += s.getDraftAheadCalls();
        draftAheadHits += s.getDraftAheadHits();
        draftMs += s.getDraftTimeMs();
        verifyMs += s.getVerifyTimeMs();
        fallbacks += s.getFallback() ? 1 : 0;
      }
    }

    double tokensPerSec() {
      return decodeNanos > 0 ? decodeTokens / (decodeNanos / 1e9) : 0;
    }

    Stats perPromptTokensPerSec() {
      return Stats.of(perPrompt.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /**
     * The router's acceptance rate, accepted / drafted. Not the per-token α of the analysis for k
     * &gt; 1: drafts after a round's first rejection count as drafted but are never tested, so it
     * falls as k grows (see {@link #fittedAlpha}).
     */
    double acceptanceRate() {
      return drafted == 0 ? 0 : (double) accepted / drafted;
    }

    double meanAcceptedLength() {
      return rounds == 0 ? 0 : (double) (accepted + rounds) / rounds;
    }

    /** Tokens per target worker request (Open, Propose, Verify), every token counted. */
    double tokensPerTargetCall() {
      return targetCalls == 0 ? 0 : (double) (decodeTokens + perPrompt.size()) / targetCalls;
    }

    double meanDrafted() {
      return rounds == 0 ? 0 : (double) drafted / rounds;
    }

    /** Share of decode-phase tokens from plain target steps (no verify round). */
    double plainFraction() {
      if (decodeTokens == 0) {
        return 1;
      }
      return Math.max(0, decodeTokens - (accepted + rounds)) / (double) decodeTokens;
    }
  }

  /**
   * Single-op costs, ms: draft and target Propose(1); target Verify and draft Propose by number of
   * tokens (a draft Propose(k) is what a router round asks for, in one round trip).
   */
  record Steps(
      Stats draftStep, Stats targetStep, Map<Integer, Stats> verify, Map<Integer, Stats> propose) {
    Steps(Stats draftStep, Stats targetStep, Map<Integer, Stats> verify) {
      this(draftStep, targetStep, verify, Map.of());
    }

    /** A draft Propose(k)'s cost per token over a target step: c with the round trip shared. */
    double amortizedC(int k) {
      return propose.get(k).median() / k / targetStep.median();
    }

    double c() {
      return draftStep.median() / targetStep.median();
    }

    double verifyRatio(int k) {
      return verifyMs(k) / targetStep.median();
    }

    /** Measured at k, else linear between (or beyond) the nearest measured draft lengths. */
    double verifyMs(int k) {
      TreeMap<Integer, Stats> m = new TreeMap<>(verify);
      if (m.containsKey(k)) {
        return m.get(k).median();
      }
      Map.Entry<Integer, Stats> lo = m.floorEntry(k);
      Map.Entry<Integer, Stats> hi = m.ceilingEntry(k);
      if (lo == null) {
        lo = hi;
        hi = m.higherEntry(hi.getKey());
      } else if (hi == null) {
        hi = lo;
        lo = m.lowerEntry(lo.getKey());
      }
      if (lo == null || hi == null) {
        return (lo != null ? lo : hi).getValue().median();
      }
      double slope =
          (hi.getValue().median() - lo.getValue().median()) / (hi.getKey() - lo.getKey());
      return Math.max(1e-9, lo.getValue().median() + slope * (k - lo.getKey()));
    }
  }

  /**
   * The per-token acceptance α of the analysis (each draft token accepted independently with
   * probability α, a round ending at its first rejection) that explains the measured tokens per
   * round at draft length γ: the α with {@code expectedTokensPerRound(α, γ) = tokensPerRound},
   * found by bisection (the expectation grows with α).
   */
  static double fittedAlpha(double tokensPerRound, int gamma) {
    if (tokensPerRound <= 1) {
      return 0;
    }
    if (tokensPerRound >= gamma + 1) {
      return 1;
    }
    double lo = 0;
    double hi = 1;
    for (int i = 0; i < 60; i++) {
      double mid = (lo + hi) / 2;
      if (SpeculationMath.expectedTokensPerRound(mid, gamma) < tokensPerRound) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return (lo + hi) / 2;
  }

  /** A setting's figures, derived from its totals and the step costs. */
  record Figures(
      Setting setting,
      Totals totals,
      double tokensPerSec,
      double speedup,
      int gamma,
      double alpha,
      double c,
      double verifyRatio,
      double ideal,
      double efficiency) {}

  /** Where the models came from and what they are. */
  record Model(Path dir, String id, long params, int layers, String kvDtype) {}

  /** Everything one run measured. */
  record Report(
      Options options,
      EngineBench.Machine machine,
      MeshModels.Source modelSource,
      Model target,
      Model draft,
      String promptSource,
      int promptCount,
      int maxTokens,
      double loadStart,
      double loadEnd,
      double wallSeconds,
      double jitSeconds,
      Steps steps,
      List<Figures> figures,
      List<String> mismatches) {

    Figures figures(String key) {
      return figures.stream().filter(f -> f.setting().key().equals(key)).findFirst().orElseThrow();
    }

    double meshOverhead() {
      return figures(AUTOREGRESSIVE.key()).tokensPerSec() / figures(ENGINE.key()).tokensPerSec();
    }
  }

  private static final String USAGE =
      "usage: draftmesh bench speculative [--json] [--quick] [--prompts N] [--max-tokens N]\n"
          + "                                  [--samples N] [--target-model DIR --draft-model DIR]"
          + " [--random] [--cache-dir DIR]\n"
          + "                                  [--kv-dtype float32|float16]\n"
          + "  --json          print one JSON object instead of the table\n"
          + "  --quick         few prompts, short outputs, few step samples (for tests)\n"
          + "  --prompts N     held-out prompts to run (default 32; quick 2)\n"
          + "  --max-tokens N  tokens generated per prompt and setting (default 128; quick 16)\n"
          + "  --samples N     timed single-op samples for c and verify/decode (default 40)\n"
          + "  --target-model, --draft-model  checkpoints (default models/target, models/draft)\n"
          + "  --random        random-weight checkpoints even when the zoo models exist\n"
          + "  --cache-dir     where random checkpoints live"
          + " (default: ${XDG_CACHE_HOME:-~/.cache}/draftmesh/bench)\n"
          + "  --kv-dtype      the workers' KV pools (default float32, the workers' own)\n";

  private SpeculativeBench() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the bench, printing results to stdout and progress to stderr. Returns the exit code. */
  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    Options options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      err.println(e.getMessage());
      err.print(USAGE);
      return 2;
    }
    if (options == null) {
      out.print(USAGE);
      return 0;
    }
    Report report;
    try {
      report = measure(options, err);
    } catch (IllegalArgumentException e) {
      err.println("bench speculative: " + e.getMessage());
      return 2;
    } catch (Exception e) {
      err.println("bench speculative failed: " + e);
      e.printStackTrace(err);
      return 1;
    }
    out.println(options.json() ? SpeculativeReport.json(report) : SpeculativeReport.table(report));
    for (String m : report.mismatches()) {
      err.println(m);
    }
    return report.mismatches().isEmpty() ? 0 : 1;
  }

  /** Null for --help. */
  static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    boolean random = false;
    Integer prompts = null;
    Integer maxTokens = null;
    Integer samples = null;
    Path target = null;
    Path draft = null;
    Path cacheDir = null;
    KvDtype kvDtype = KvDtype.FLOAT32;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--kv-dtype" -> kvDtype = kvDtypeArg(stringArg(args, ++i, a));
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--random" -> random = true;
        case "--prompts" -> prompts = intArg(args, ++i, a, 1, 10_000);
        case "--max-tokens" -> maxTokens = intArg(args, ++i, a, 2, 1 << 16);
        case "--samples" -> samples = intArg(args, ++i, a, 1, 100_000);
        case "--target-model" -> target = Path.of(stringArg(args, ++i, a));
        case "--draft-model" -> draft = Path.of(stringArg(args, ++i, a));
        case "--cache-dir" -> cacheDir = Path.of(stringArg(args, ++i, a));
        case "-h", "--help" -> {
          return null;
        }
        default ->
            throw new IllegalArgumentException(
                "unknown argument \""
                    + a
                    + "\" (expected: --json, --quick, --prompts N, --max-tokens N, --samples N,"
                    + " --target-model DIR, --draft-model DIR, --random, --cache-dir DIR,"
                    + " --kv-dtype D)");
      }
    }
    return new Options(
        json,
        quick,
        prompts != null ? prompts : quick ? 2 : 32,
        maxTokens != null ? maxTokens : quick ? 16 : 128,
        samples != null ? samples : quick ? 4 : 40,
        target,
        draft,
        random,
        cacheDir == null ? RandomModels.defaultCacheDir() : cacheDir,
        kvDtype);
  }

  private static KvDtype kvDtypeArg(String v) {
    try {
      return KvDtype.parse(v);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--kv-dtype: " + e.getMessage(), e);
    }
  }

  private static String stringArg(String[] args, int i, String flag) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + ": missing value");
    }
    return args[i];
  }

  private static int intArg(String[] args, int i, String flag, int min, int max) {
    String v = stringArg(args, i, flag);
    int n;
    try {
      n = Integer.parseInt(v);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(flag + ": " + v + " (expected: an integer)");
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(flag + ": " + n + " (expected: " + min + ".." + max + ")");
    }
    return n;
  }

  static Report measure(Options o, PrintStream progress) throws Exception {
    EngineBench.djlDefaults();
    long wall0 = System.nanoTime();
    double loadStart = loadAverage();
    MeshModels.Pair pair =
        MeshModels.resolve(o.targetModel(), o.draftModel(), o.random(), o.cacheDir(), progress);
    EvalPrompts prompts = EvalPrompts.load(o.prompts());
    progress.printf(
        "models (%s): target %s, draft %s; %d prompts (%s), %d tokens each%n",
        pair.source().name().toLowerCase(java.util.Locale.ROOT),
        pair.target(),
        pair.draft(),
        prompts.texts().size(),
        prompts.source(),
        o.maxTokens());
    int maxK = Arrays.stream(VERIFY_KS).max().orElseThrow();
    Mesh.Spec spec =
        Mesh.Spec.builder(pair.target(), pair.draft())
            .kvBudgets(64, 32)
            .limits(4096, maxK)
            .drainSeconds(1)
            .workerFlags(List.of("--kv-dtype", o.kvDtype().id()))
            .routerFlags(
                List.of(
                    "--ar-chunk",
                    Integer.toString(AR_CHUNK),
                    // A slow round on a loaded machine must not turn speculation off mid-run.
                    "--draft-timeout-ms",
                    "120000",
                    "--target-timeout-ms",
                    "120000"))
            .build();
    progress.println("starting the mesh (target worker, draft worker, router)");
    try (Mesh mesh = Mesh.start(spec, OpenTelemetry.noop())) {
      progress.println("mesh " + mesh.addresses());
      InferenceEngine engine = mesh.targetWorker().engine();
      ModelInfo targetInfo = info(mesh.address(Mesh.TARGET));
      ModelInfo draftInfo = info(mesh.address(Mesh.DRAFT));
      List<int[]> ids = new ArrayList<>();
      int longest = 0;
      for (String p : prompts.texts()) {
        int[] t = engine.tokenizer().encode(p, true);
        if (t.length == 0) {
          throw new IllegalStateException("prompt encodes to no tokens: \"" + p + "\"");
        }
        ids.add(t);
        longest = Math.max(longest, t.length);
      }
      int context = Math.min(targetInfo.getMaxContext(), draftInfo.getMaxContext());
      int maxTokens = Math.min(o.maxTokens(), context - longest - maxK - 1);
      if (maxTokens < 2) {
        throw new IllegalStateException(
            "max context " + context + " leaves no room after a " + longest + "-token prompt");
      }
      if (maxTokens < o.maxTokens()) {
        progress.printf(
            "max tokens %d (the models' context %d minus the longest prompt)%n",
            maxTokens, context);
      }
      List<ManagedChannel> channels = new ArrayList<>();
      try {
        Map<String, RouterGrpc.RouterBlockingStub> routers = new HashMap<>();
        RouterGrpc.RouterBlockingStub shared = routerStub(mesh.routerAddress(), channels);
        for (Setting s : SETTINGS) {
          routers.put(
              s.key(),
              s.learnsAcrossRequests()
                  ? routerStub(
                      mesh.startRouter("router-" + s.key(), OpenTelemetry.noop()), channels)
                  : shared);
        }
        // Not a measured prompt: a router that learns across requests would otherwise have seen
        // prompt 0's answer before its measured run.
        warmUp(
            routers,
            engine,
            engine.tokenizer().encode(WARM_UP_PROMPT, true),
            o.quick() ? Math.min(maxTokens, 16) : maxTokens,
            o.quick() ? 1 : MAX_WARM_PASSES,
            progress);
        double jit0 = jitSeconds();

        progress.printf(
            "single ops: %d samples of draft Propose(1), target Propose(1), target Verify(k),"
                + " draft Propose(k)%n",
            o.stepSamples());
        Steps steps =
            measureSteps(
                mesh,
                ids.get(0),
                o.stepSamples(),
                targetInfo.getVocabSize(),
                targetInfo,
                draftInfo,
                progress);

        Map<String, Totals> totals = new LinkedHashMap<>();
        SETTINGS.forEach(s -> totals.put(s.key(), new Totals()));
        List<String> mismatches = new ArrayList<>();
        for (int p = 0; p < ids.size(); p++) {
          Map<String, Run> runs = new LinkedHashMap<>();
          for (int j = 0; j < SETTINGS.size(); j++) {
            Setting s = SETTINGS.get((p + j) % SETTINGS.size());
            Run r =
                run(
                    s,
                    routers.get(s.key()),
                    engine,
                    ids.get(p),
                    maxTokens,
                    "p" + p + "-" + s.key());
            runs.put(s.key(), r);
            totals.get(s.key()).add(r);
          }
          mismatches.addAll(compare(p, runs, maxTokens));
          progress.printf(
              "[%d/%d] %s%s%n",
              p + 1,
              ids.size(),
              summary(runs),
              mismatches.isEmpty() ? "" : " (" + mismatches.size() + " mismatches so far)");
        }

        List<Figures> figures = new ArrayList<>();
        double arTps = totals.get(AUTOREGRESSIVE.key()).tokensPerSec();
        for (Setting s : SETTINGS) {
          figures.add(figures(s, totals.get(s.key()), arTps, steps));
        }
        return new Report(
            o,
            EngineBench.machine(),
            pair.source(),
            model(pair.target(), targetInfo),
            model(pair.draft(), draftInfo),
            prompts.source(),
            ids.size(),
            maxTokens,
            loadStart,
            loadAverage(),
            (System.nanoTime() - wall0) / 1e9,
            jitSeconds() - jit0,
            steps,
            figures,
            mismatches);
      } finally {
        for (ManagedChannel c : channels) {
          c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
      }
    }
  }

  /**
   * Warm-up passes of every setting until the JIT is quiet (compiling for under {@link #JIT_QUIET}
   * of a pass) or {@code maxPasses} ran. On two cores the JIT's compiler threads take the CPU the
   * workers and the router need: measured right after one short pass per setting, a k = 4 round
   * took 5 to 15 ms against 3.6 ms once the JIT had settled (docs/speculative.md).
   */
  static void warmUp(
      Map<String, RouterGrpc.RouterBlockingStub> routers,
      InferenceEngine engine,
      int[] prompt,
      int maxTokens,
      int maxPasses,
      PrintStream progress) {
    for (int pass = 1; pass <= maxPasses; pass++) {
      long t0 = System.nanoTime();
      double jit0 = jitSeconds();
      for (Setting s : SETTINGS) {
        run(s, routers.get(s.key()), engine, prompt, maxTokens, "warm-" + s.key());
      }
      double wall = (System.nanoTime() - t0) / 1e9;
      double jit = jitSeconds() - jit0;
      progress.printf(
          "warm-up pass %d: every setting once, %.1f s, JIT compiling %.1f s%n", pass, wall, jit);
      if (jit < JIT_QUIET * wall) {
        return;
      }
    }
  }

  /** Seconds the JIT has spent compiling in this JVM (summed over its threads), or NaN. */
  static double jitSeconds() {
    java.lang.management.CompilationMXBean c =
        java.lang.management.ManagementFactory.getCompilationMXBean();
    return c != null && c.isCompilationTimeMonitoringSupported()
        ? c.getTotalCompilationTime() / 1e3
        : Double.NaN;
  }

  private static Model model(Path dir, ModelInfo info) {
    return new Model(
        dir, info.getModelId(), info.getNumParameters(), info.getNumLayers(), info.getKvDtype());
  }

  /** The analytical ideal for a setting, and how close the measured speedup came. */
  static Figures figures(Setting s, Totals t, double arTokensPerSec, Steps steps) {
    double tps = t.tokensPerSec();
    double speedup = arTokensPerSec > 0 ? tps / arTokensPerSec : 0;
    if (!s.drafted() || t.rounds == 0) {
      // No verify rounds: plain target decoding, whose ideal is itself.
      return new Figures(s, t, tps, speedup, 0, 0, 0, 1, 1, speedup);
    }
    if (s.tree()) {
      // The chain analysis (alpha, ideal) does not apply to trees: their figures are tokens per
      // target pass and the verify cost of the node budget (a forward of that many tokens).
      double c =
          s.drafter() == Drafter.DRAFTER_TOKEN_RECYCLING || s.drafter() == Drafter.DRAFTER_LOOKAHEAD
              ? 0
              : steps.c();
      return new Figures(s, t, tps, speedup, s.k(), 0, c, steps.verifyRatio(s.k()), 0, 0);
    }
    boolean ngram = s.strategy() == Strategy.STRATEGY_NGRAM;
    int gamma =
        s.speculative() && !s.adaptive() ? s.k() : Math.max(1, (int) Math.round(t.meanDrafted()));
    double alpha = fittedAlpha(t.meanAcceptedLength(), gamma);
    double c = ngram ? 0 : steps.c(); // the n-gram drafter is a table lookup in the router
    double verifyRatio = steps.verifyRatio(gamma);
    double perRound = SpeculationMath.idealSpeedup(alpha, gamma, c, verifyRatio);
    // Tokens from plain target steps (no draft proposal, or the last token) run at speedup 1.
    double plain = t.plainFraction();
    double ideal = 1 / ((1 - plain) / perRound + plain);
    return new Figures(s, t, tps, speedup, gamma, alpha, c, verifyRatio, ideal, speedup / ideal);
  }

  /** One generation of {@code maxTokens} tokens from {@code prompt} with setting {@code s}. */
  static Run run(
      Setting s,
      RouterGrpc.RouterBlockingStub router,
      InferenceEngine engine,
      int[] prompt,
      int maxTokens,
      String label) {
    return s.inProcess()
        ? viaEngine(engine, prompt, maxTokens, label)
        : viaRouter(s, router, prompt, maxTokens, label);
  }

  static GenerateRequest request(Setting s, int[] prompt, int maxTokens, String label) {
    GenerateRequest.Builder r =
        GenerateRequest.newBuilder()
            .setTokenIds(TokenIds.newBuilder().addAllIds(Arrays.stream(prompt).boxed().toList()))
            .setStrategy(s.strategy())
            .setSampling(Sampling.newBuilder().setTemperature(0f).setMaxTokens(maxTokens))
            .setIgnoreEos(true)
            .setRequestId(label);
    if (s.tree()) {
      r.setSpeculative(SpeculativeOptions.newBuilder().setDrafter(s.drafter()).setTreeNodes(s.k()));
    } else if (s.speculative()) {
      r.setSpeculative(
          SpeculativeOptions.newBuilder()
              .setK(s.k())
              .setAdaptive(s.adaptive())
              .setDraftAhead(s.draftAhead()));
    }
    return r.build();
  }

  private static Run viaRouter(
      Setting s, RouterGrpc.RouterBlockingStub router, int[] prompt, int maxTokens, String label) {
    GenerateRequest request = request(s, prompt, maxTokens, label);
    Iterator<GenerateChunk> it =
        router.withDeadlineAfter(RPC_DEADLINE_S, TimeUnit.SECONDS).generate(request);
    List<Integer> ids = new ArrayList<>();
    long first = -1;
    long end = -1;
    GenerateChunk last = null;
    while (it.hasNext()) {
      GenerateChunk c = it.next();
      long now = System.nanoTime();
      if (first < 0 && c.getTokenIdsCount() > 0) {
        first = now;
      }
      if (c.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED && end < 0) {
        end = now; // the last chunk: what follows is the router closing the worker sessions
      }
      ids.addAll(c.getTokenIdsList());
      last = c;
    }
    if (end < 0) {
      end = System.nanoTime();
    }
    if (last == null) {
      throw new IllegalStateException(label + ": the router streamed nothing");
    }
    return new Run(
        ids.stream().mapToInt(Integer::intValue).toArray(),
        first < 0 ? 0 : end - first,
        last.getStats(),
        last.getFinishReason());
  }

  /**
   * The target engine on its own, in this process: prefill, then Propose in the router's
   * autoregressive chunks (1, 2, 4, .. {@link #AR_CHUNK}), so the only difference from the router's
   * autoregressive path is the mesh (gRPC, router, streaming).
   */
  static Run viaEngine(InferenceEngine engine, int[] prompt, int maxTokens, String label) {
    Sequence s = engine.open(prompt, SamplingParams.GREEDY, label);
    try {
      Position firstToken = await(s.prefill(ResultOptions.NONE));
      long first = System.nanoTime();
      int[] ids = new int[maxTokens];
      ids[0] = firstToken.tokenId();
      s.append(new int[] {ids[0]}); // a prediction is not part of the sequence until appended
      int n = 1;
      int k = 1;
      while (n < maxTokens) {
        Proposal p = await(s.propose(Math.min(k, maxTokens - n), 0f, ResultOptions.NONE));
        for (int t : p.tokens()) {
          ids[n++] = t;
        }
        k = Math.min(2 * k, AR_CHUNK);
      }
      long end = System.nanoTime();
      return new Run(ids, end - first, null, FinishReason.FINISH_REASON_LENGTH);
    } finally {
      await(s.closeAsync());
    }
  }

  /**
   * Times single ops over direct worker sessions, interleaved per iteration so drift hits all
   * alike. Each op starts from the same sequence length (a Truncate, untimed, rolls it back), so a
   * Propose(1) feeds one token and a Verify(k) feeds k + 1, exactly as in a router round.
   */
  static Steps measureSteps(
      Mesh mesh,
      int[] prompt,
      int samples,
      int vocab,
      ModelInfo targetInfo,
      ModelInfo draftInfo,
      PrintStream progress)
      throws InterruptedException {
    int[] ks =
        Arrays.stream(VERIFY_KS)
            .filter(
                k -> k <= Math.min(targetInfo.getMaxTokensPerOp(), draftInfo.getMaxTokensPerOp()))
            .toArray();
    ManagedChannel t = channel(mesh.address(Mesh.TARGET));
    ManagedChannel d = channel(mesh.address(Mesh.DRAFT));
    try (SessionClient target = open(t, prompt);
        SessionClient draft = open(d, prompt)) {
      long[] draftNs = new long[samples];
      long[] targetNs = new long[samples];
      long[][] verifyNs = new long[ks.length][samples];
      long[][] proposeNs = new long[ks.length][samples];
      SplittableRandom random = new SplittableRandom(17);
      int base = prompt.length;
      for (int i = -STEP_WARMUP; i < samples; i++) {
        draft.call(truncate(base));
        long dn = timed(draft, propose());
        target.call(truncate(base));
        long tn = timed(target, propose());
        for (int j = 0; j < ks.length; j++) {
          Verify.Builder v = Verify.newBuilder();
          for (int x = 0; x < ks[j]; x++) {
            v.addDraftTokenIds(random.nextInt(vocab));
          }
          target.call(truncate(base));
          long vn = timed(target, SessionRequest.newBuilder().setVerify(v));
          draft.call(truncate(base));
          long pn =
              timed(
                  draft, SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(ks[j])));
          if (i >= 0) {
            verifyNs[j][i] = vn;
            proposeNs[j][i] = pn;
          }
        }
        if (i >= 0) {
          draftNs[i] = dn;
          targetNs[i] = tn;
        }
      }
      Map<Integer, Stats> verify = new LinkedHashMap<>();
      Map<Integer, Stats> propose = new LinkedHashMap<>();
      for (int j = 0; j < ks.length; j++) {
        verify.put(ks[j], Stats.ofNanosAsMillis(verifyNs[j]));
        propose.put(ks[j], Stats.ofNanosAsMillis(proposeNs[j]));
      }
      Steps steps =
          new Steps(
              Stats.ofNanosAsMillis(draftNs), Stats.ofNanosAsMillis(targetNs), verify, propose);
      progress.printf(
          "draft step %s ms, target step %s ms: c = %s%n",
          BenchReport.num(steps.draftStep().median()),
          BenchReport.num(steps.targetStep().median()),
          BenchReport.num(steps.c()));
      return steps;
    } finally {
      t.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      d.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static SessionClient open(ManagedChannel channel, int[] prompt)
      throws InterruptedException {
    SessionClient s =
        SessionClient.open(
            ModelWorkerGrpc.newStub(channel).withDeadlineAfter(RPC_DEADLINE_S, TimeUnit.SECONDS));
    s.call(
        SessionRequest.newBuilder()
            .setOpen(
                Open.newBuilder()
                    .addAllPromptIds(Arrays.stream(prompt).boxed().toList())
                    .setSessionLabel("bench-steps")));
    return s;
  }

  private static SessionRequest.Builder truncate(int length) {
    return SessionRequest.newBuilder().setTruncate(Truncate.newBuilder().setLength(length));
  }

  private static SessionRequest.Builder propose() {
    return SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(1));
  }

  private static long timed(SessionClient s, SessionRequest.Builder op)
      throws InterruptedException {
    long t0 = System.nanoTime();
    s.call(op);
    return System.nanoTime() - t0;
  }

  /** Differences from the autoregressive output (and wrong lengths) for one prompt. */
  static List<String> compare(int prompt, Map<String, Run> runs, int maxTokens) {
    List<String> out = new ArrayList<>();
    int[] reference = runs.get(AUTOREGRESSIVE.key()).ids();
    for (Map.Entry<String, Run> e : runs.entrySet()) {
      int[] ids = e.getValue().ids();
      if (ids.length != maxTokens || e.getValue().finish() != FinishReason.FINISH_REASON_LENGTH) {
        out.add(
            String.format(
                "MISMATCH prompt %d %s: %d tokens, finish %s (expected: %d tokens, LENGTH)",
                prompt, e.getKey(), ids.length, e.getValue().finish(), maxTokens));
        continue;
      }
      int at = Arrays.mismatch(ids, reference);
      if (at >= 0) {
        out.add(
            String.format(
                "MISMATCH prompt %d %s: token %d is %d (autoregressive: %d)",
                prompt,
                e.getKey(),
                at,
                at < ids.length ? ids[at] : -1,
                at < reference.length ? reference[at] : -1));
      }
    }
    return out;
  }

  private static String summary(Map<String, Run> runs) {
    StringBuilder sb = new StringBuilder();
    for (Setting s : SETTINGS) {
      Run r = runs.get(s.key());
      double tps = r.decodeNanos() > 0 ? (r.ids().length - 1) / (r.decodeNanos() / 1e9) : 0;
      sb.append(sb.length() == 0 ? "" : ", ")
          .append(s.key())
          .append(' ')
          .append(BenchReport.num(tps));
    }
    return sb.append(" tok/s").toString();
  }

  private static RouterGrpc.RouterBlockingStub routerStub(
      String address, List<ManagedChannel> channels) {
    ManagedChannel c = channel(address);
    channels.add(c);
    return RouterGrpc.newBlockingStub(c);
  }

  private static ModelInfo info(String address) throws InterruptedException {
    ManagedChannel ch = channel(address);
    try {
      return ModelWorkerGrpc.newBlockingStub(ch)
          .withDeadlineAfter(30, TimeUnit.SECONDS)
          .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static ManagedChannel channel(String address) {
    return Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
  }

  /** The 1-minute load average, or -1 where there is none. */
  static double loadAverage() {
    try {
      String s = Files.readString(Path.of("/proc/loadavg"), StandardCharsets.US_ASCII);
      return Double.parseDouble(s.trim().split("\\s+")[0]);
    } catch (IOException | RuntimeException e) {
      return java.lang.management.ManagementFactory.getOperatingSystemMXBean()
          .getSystemLoadAverage();
    }
  }

  private static <T> T await(CompletableFuture<T> f) {
    try {
      return f.get(RPC_DEADLINE_S, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("engine op failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new IllegalStateException("engine op did not finish in " + RPC_DEADLINE_S + " s", e);
    }
  }

  /** Held-out prompts: the zoo's evaluation prompts when the corpus is prepared, else built in. */
  record EvalPrompts(String source, List<String> texts) {
    static final List<String> BUILT_IN =
        List.of(
            "In the beginning God created the heaven and the earth. And the earth was",
            "And it came to pass in those days, that there went out a decree",
            "The Lord is my shepherd; I shall not want. He maketh me to lie down",
            "Blessed are the meek: for they shall inherit the earth. Blessed are they",
            "A fool and his money are soon parted, but a wise man",
            "You will be successful in your work, but only if",
            "There is no such thing as a free lunch, said the",
            "The best way to predict the future is to invent it, and",
            "Behold, I stand at the door, and knock: if any man hear my voice",
            "For God so loved the world, that he gave his only begotten Son",
            "Never put off till tomorrow what you can do the day after",
            "Whenever you find yourself on the side of the majority, it is time");

    /** {@code n} prompts spread evenly over the available ones (both sources of the zoo's). */
    static EvalPrompts load(int n) {
      Path file = corpusDir().resolve("prompts.jsonl");
      List<String> all = new ArrayList<>();
      String source = "built-in";
      if (Files.isRegularFile(file)) {
        try {
          for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
              all.add(JsonParser.parseString(line).getAsJsonObject().get("prompt").getAsString());
            }
          }
          source = file.toString();
        } catch (IOException | RuntimeException e) {
          all.clear();
        }
      }
      if (all.isEmpty()) {
        all = BUILT_IN;
        source = "built-in";
      }
      List<String> picked = new ArrayList<>();
      int count = Math.min(n, all.size());
      for (int i = 0; i < count; i++) {
        picked.add(all.get((int) ((long) i * all.size() / count)));
      }
      return new EvalPrompts(source, picked);
    }

    /** The zoo's corpus directory: {@code ${XDG_CACHE_HOME:-~/.cache}/draftmesh/corpus}. */
    static Path corpusDir() {
      String xdg = System.getenv("XDG_CACHE_HOME");
      Path base =
          xdg != null && !xdg.isBlank()
              ? Path.of(xdg)
              : Path.of(System.getProperty("user.home"), ".cache");
      return base.resolve("draftmesh").resolve("corpus");
    }
  }
}
