package io.draftmesh.cli;

import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.telemetry.Telemetry;
import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh generate --router HOST:PORT}: one {@code Router.Generate} call, its text printed
 * as it streams (coloured by provenance on a terminal), then a stats line on stderr.
 */
final class RouterGenerate {
  static final Set<String> FLAGS =
      Set.of(
          "router",
          "prompt",
          "strategy",
          "k",
          "max-k",
          "min-draft-prob",
          "ngram-n",
          "ngram-min-n",
          "ngram-max-match",
          "gamma",
          "chunk-tokens",
          "aligned-prompt",
          "tau",
          "window",
          "min-run",
          "lead-in",
          "sentence-end",
          "spec-pc-budget",
          "spec-pc-window",
          "kv-method",
          "kv-budget",
          "max-tokens",
          "temperature",
          "top-k",
          "top-p",
          "min-p",
          "seed",
          "stop",
          "target",
          "draft",
          "timeout-s",
          "model",
          "tokenizer");
  static final Set<String> BOOLEANS = Set.of("adaptive", "ignore-eos");

  /**
   * What came back: the text as streamed, the last chunk, the tokens, the client-side wall time to
   * the first token (connection and prefill) and from it to the last.
   */
  record Result(
      String text, GenerateChunk last, int tokens, double firstTokenSeconds, double decodeSeconds) {
    /** Tokens after the first per second after the first. */
    double tokensPerSecond() {
      return decodeSeconds > 0 && tokens > 1 ? (tokens - 1) / decodeSeconds : 0;
    }
  }

  private RouterGenerate() {}

  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err)
      throws InterruptedException {
    Args a = Args.parse(args, FLAGS, BOOLEANS);
    String router = a.require("router", "HOST:PORT of a running router");
    GenerateRequest request = request(a);
    boolean colour = ProvenancePrinter.colourWanted(env);
    long timeout = a.intValue("timeout-s", 300, 1, 86_400);
    try (Telemetry telemetry = Telemetry.fromEnvironment("draftmesh-cli");
        TextTokenizer tokenizer = colour ? tokenizer(a) : null) {
      if (colour) {
        err.println(ProvenancePrinter.LEGEND);
      }
      ManagedChannel channel = GenerateCommand.channel(router, telemetry.openTelemetry());
      try {
        out.print(request.getText());
        Result r =
            generate(channel, request, timeout, new ProvenancePrinter(out, colour, tokenizer));
        out.println();
        out.flush();
        err.println(summary(r));
        return 0;
      } catch (StatusRuntimeException e) {
        out.println();
        err.println(
            "draftmesh generate: "
                + e.getStatus().getCode()
                + ": "
                + e.getStatus().getDescription());
        return 1;
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  /** The request the flags describe. */
  static GenerateRequest request(Args a) {
    String prompt = a.require("prompt", "the text to continue");
    Strategy strategy =
        switch (a.get("strategy", "").toLowerCase(Locale.ROOT)) {
          case "" -> Strategy.STRATEGY_UNSPECIFIED; // the router's default
          case "autoregressive", "ar" -> Strategy.STRATEGY_AUTOREGRESSIVE;
          case "speculative", "spec" -> Strategy.STRATEGY_SPECULATIVE;
          case "ngram", "n-gram" -> Strategy.STRATEGY_NGRAM;
          case "nudging", "nudge" -> Strategy.STRATEGY_NUDGING;
          case "entropy-switch", "ead" -> Strategy.STRATEGY_ENTROPY_SWITCH;
          case "lead-in", "foreal" -> Strategy.STRATEGY_LEAD_IN;
          case "specpc", "spec-pc" -> Strategy.STRATEGY_SPECPC;
          case "speckv", "spec-kv" -> Strategy.STRATEGY_SPECKV;
          default ->
              throw new UsageException(
                  "--strategy: "
                      + a.get("strategy")
                      + " (expected: autoregressive, speculative, ngram, nudging, entropy-switch,"
                      + " lead-in, specpc or speckv)");
        };
    Sampling.Builder sampling =
        Sampling.newBuilder()
            .setTemperature(a.floatValue("temperature", 0f))
            .setTopK(a.intValue("top-k", 0, 0, Integer.MAX_VALUE))
            .setTopP(a.floatValue("top-p", 0f))
            .setMinP(a.floatValue("min-p", 0f))
            .setMaxTokens(a.intValue("max-tokens", 64, 1, 1 << 20));
    if (a.has("seed")) {
      sampling.setSeed(a.longValue("seed", 0L));
    }
    if (a.has("stop")) {
      sampling.addStop(a.get("stop"));
    }
    GenerateRequest.Builder r =
        GenerateRequest.newBuilder()
            .setText(prompt)
            .setStrategy(strategy)
            .setSampling(sampling)
            .setAddSpecialTokens(true)
            .setIgnoreEos(a.has("ignore-eos") && !"false".equals(a.get("ignore-eos")))
            .setTarget(a.get("target", ""))
            .setDraft(a.get("draft", ""));
    r.setSpeculative(
        SpeculativeOptions.newBuilder()
            .setK(a.intValue("k", 0, 0, 1024))
            .setAdaptive(a.has("adaptive") && !"false".equals(a.get("adaptive")))
            .setMaxK(a.intValue("max-k", 0, 0, 1024))
            .setMinDraftTokenProb(a.floatValue("min-draft-prob", 0f)));
    r.setNgram(
        NgramOptions.newBuilder()
            .setN(a.intValue("ngram-n", 0, 0, 64))
            .setMinN(a.intValue("ngram-min-n", 0, 0, 64))
            .setMaxMatch(a.intValue("ngram-max-match", 0, 0, 1024)));
    NudgingOptions.Builder nudging =
        NudgingOptions.newBuilder()
            .setGamma(a.floatValue("gamma", 0f))
            .setChunkTokens(a.intValue("chunk-tokens", 0, 0, 1024));
    if (strategy == Strategy.STRATEGY_NUDGING) {
      // The zoo aligned model's template unless told otherwise; the base reads the prompt as is.
      nudging.setAlignedPrompt(
          a.get("aligned-prompt", "<|endoftext|><|user|>" + prompt + "<|assistant|>"));
      r.setAddSpecialTokens(false);
    }
    r.setNudging(nudging);
    EntropySwitchOptions.Builder es = EntropySwitchOptions.newBuilder();
    if (a.has("tau")) {
      es.setTau(a.floatValue("tau", 0f));
    }
    if (a.has("window")) {
      es.setWindow(a.intValue("window", 0, Integer.MIN_VALUE, Integer.MAX_VALUE));
    }
    if (a.has("min-run")) {
      es.setMinRun(a.intValue("min-run", 0, Integer.MIN_VALUE, Integer.MAX_VALUE));
    }
    r.setEntropySwitch(es);
    LeadInOptions.Builder li = LeadInOptions.newBuilder().setSentenceEnd(a.get("sentence-end", ""));
    if (a.has("lead-in")) {
      li.setN(a.intValue("lead-in", 0, Integer.MIN_VALUE, Integer.MAX_VALUE));
    }
    r.setLeadIn(li);
    r.setSpecPc(
        SpecPcOptions.newBuilder()
            .setBudgetTokens(a.intValue("spec-pc-budget", 0, 0, 1 << 20))
            .setWindow(a.intValue("spec-pc-window", 0, 0, 1 << 20)));
    if (a.has("kv-method") || a.has("kv-budget")) {
      r.setKvCompression(
          KvCompressionOptions.newBuilder()
              .setMethod(a.get("kv-method", ""))
              .setBudget(a.intValue("kv-budget", 0, 0, 1 << 20)));
    }
    return r.build();
  }

  /**
   * The target's tokenizer, for per-token colours: --tokenizer, --model, else the zoo target's;
   * null when none is found (chunks are then coloured as a whole).
   */
  private static TextTokenizer tokenizer(Args a) {
    Path p = null;
    if (a.has("tokenizer") || a.has("model")) {
      p = GenerateCommand.tokenizerPath(a);
    } else {
      Path zoo = MeshModels.zooModel("target");
      if (zoo != null && Files.isRegularFile(zoo.resolve("tokenizer.json"))) {
        p = zoo.resolve("tokenizer.json");
      }
    }
    return p == null ? null : TextTokenizer.load(p);
  }

  /** Streams one generation into {@code printer}. */
  static Result generate(
      Channel channel, GenerateRequest request, long timeoutSeconds, ProvenancePrinter printer) {
    long t0 = System.nanoTime();
    Iterator<GenerateChunk> it =
        RouterGrpc.newBlockingStub(channel)
            .withDeadlineAfter(timeoutSeconds, TimeUnit.SECONDS)
            .generate(request);
    StringBuilder text = new StringBuilder();
    GenerateChunk last = GenerateChunk.getDefaultInstance();
    int tokens = 0;
    long first = -1;
    long end = -1;
    while (it.hasNext()) {
      GenerateChunk c = it.next();
      long now = System.nanoTime();
      if (first < 0 && c.getTokenIdsCount() > 0) {
        first = now;
      }
      if (end < 0 && c.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
        end = now;
      }
      printer.print(c);
      text.append(c.getText());
      tokens += c.getTokenIdsCount();
      last = c;
    }
    long done = System.nanoTime();
    if (first < 0) {
      first = done;
    }
    return new Result(
        text.toString(), last, tokens, (first - t0) / 1e9, ((end < 0 ? done : end) - first) / 1e9);
  }

  static String summary(Result r) {
    GenerationStats s = r.last().getStats();
    StringBuilder sb = new StringBuilder("[");
    sb.append(strategyName(s.getStrategy()));
    if (!s.getDraftModel().isEmpty()) {
      sb.append(" ").append(s.getDraftModel()).append(" -> ").append(s.getTargetModel());
    } else if (!s.getTargetModel().isEmpty()) {
      sb.append(" on ").append(s.getTargetModel());
    }
    sb.append(
        String.format(
            Locale.ROOT,
            "; %d prompt + %d tokens: first after %.0f ms, then %.1f tokens/s",
            r.last().getUsage().getPromptTokens(),
            r.last().getUsage().getCompletionTokens(),
            r.firstTokenSeconds() * 1e3,
            r.tokensPerSecond()));
    boolean collaborative =
        s.getStrategy() == Strategy.STRATEGY_NUDGING
            || s.getStrategy() == Strategy.STRATEGY_ENTROPY_SWITCH
            || s.getStrategy() == Strategy.STRATEGY_LEAD_IN;
    if (collaborative) {
      sb.append(collaboration(s));
    } else if (s.getRounds() > 0 || s.getStrategy() != Strategy.STRATEGY_AUTOREGRESSIVE) {
      sb.append(
          String.format(
              Locale.ROOT,
              "; acceptance %.2f, mean accepted length %.2f, %d rounds",
              s.getAcceptanceRate(),
              s.getMeanAcceptedLength(),
              s.getRounds()));
      if (s.getPlainTokens() > 0) {
        sb.append(
            String.format(
                Locale.ROOT,
                "; %d tokens by the target alone (rounds cost more per token here)",
                s.getPlainTokens()));
      }
    }
    sb.append(String.format(Locale.ROOT, "; %d target calls", s.getTargetCalls()));
    if (s.getDraftCalls() > 0) {
      sb.append(String.format(Locale.ROOT, ", %d draft calls", s.getDraftCalls()));
    }
    if (r.last().getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
      sb.append("; finish ")
          .append(
              r.last()
                  .getFinishReason()
                  .name()
                  .substring("FINISH_REASON_".length())
                  .toLowerCase(Locale.ROOT));
    }
    if (s.hasPromptCompression()) {
      sb.append(
          String.format(
              Locale.ROOT,
              "; prompt %d kept of %d (%d dropped, %s)",
              s.getPromptCompression().getKeptTokens(),
              s.getPromptCompression().getPromptTokens(),
              s.getPromptCompression().getDroppedTokens(),
              s.getPromptCompression().getMethod()));
    }
    if (s.hasKvCompression()) {
      KvCompressionStats kv = s.getKvCompression();
      sb.append(
          String.format(
              Locale.ROOT,
              "; KV %d of %d slots per head kept (%.1f MiB dropped, %s%s)",
              kv.getKeptSlots(),
              kv.getPromptTokens(),
              kv.getKvBytesDropped() / (double) (1 << 20),
              kv.getMethod(),
              kv.getUncompressed() ? ", uncompressed" : ""));
    }
    if (s.getFallback()) {
      sb.append(collaborative ? "; helper dropped: " : "; draft dropped: ")
          .append(s.getFallbackReason());
    }
    return sb.append("]").toString();
  }

  /** The approximate strategies' shares: who wrote how much, and what it cost. */
  static String collaboration(GenerationStats s) {
    boolean nudging = s.getStrategy() == Strategy.STRATEGY_NUDGING;
    StringBuilder sb =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "; %s %d tokens, %s %d (large share %.2f), parameter-weighted cost %.3f, %d switches",
                nudging ? "base" : "large",
                s.getLargeTokens(),
                nudging ? "aligned" : "small",
                s.getSmallTokens(),
                s.getLargeShare(),
                s.getParameterWeightedCost(),
                s.getSwitches()));
    if (nudging) {
      sb.append(
          String.format(
              Locale.ROOT, ", %d nudging rounds, gamma %.2f", s.getNudgingRounds(), s.getGamma()));
    } else if (s.getStrategy() == Strategy.STRATEGY_ENTROPY_SWITCH) {
      sb.append(
          String.format(Locale.ROOT, ", tau %.2f bits over %d tokens", s.getTau(), s.getWindow()));
    }
    return sb.toString();
  }

  private static String strategyName(Strategy s) {
    return switch (s) {
      case STRATEGY_AUTOREGRESSIVE -> "autoregressive";
      case STRATEGY_SPECULATIVE -> "speculative";
      case STRATEGY_NGRAM -> "n-gram";
      case STRATEGY_NUDGING -> "nudging";
      case STRATEGY_ENTROPY_SWITCH -> "entropy switch";
      case STRATEGY_LEAD_IN -> "lead-in";
      case STRATEGY_SPECPC -> "SpecPC";
      default -> s.name();
    };
  }
}
