package io.draftmesh.router;

import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * KV compaction options (papers.md §2) and STRATEGY_SPECKV's draft half. The compaction itself runs
 * on the target worker, inside its Open ({@code Open.compression}); this file checks the request's
 * options, applies defaults, and for SpecKV has the draft write its greedy answer, which the target
 * prefills after the prompt so that its own queries over the answer score the prompt's KV.
 *
 * <p>The draft is an accelerator: when it is unreachable or fails, the target reads the prompt with
 * no compaction and the stats say so ({@code fallback}, {@code kv_compression.uncompressed}).
 */
final class SpecKvStrategy {
  private static final Logger log = LoggerFactory.getLogger(SpecKvStrategy.class);

  static final int DEFAULT_BUDGET = 256;
  static final int DEFAULT_WINDOW = 32;
  static final int DEFAULT_KERNEL = 7;
  static final int DEFAULT_SINKS = 4;
  static final String H2O = "h2o";
  static final String SNAPKV = "snapkv";
  static final String SPECKV = "speckv";
  static final String STREAMING_LLM = "streaming_llm";
  private static final List<String> METHODS = List.of(H2O, SNAPKV, SPECKV, STREAMING_LLM);
  private static final List<Strategy> LOSSLESS_HOSTS =
      List.of(
          Strategy.STRATEGY_UNSPECIFIED,
          Strategy.STRATEGY_AUTOREGRESSIVE,
          Strategy.STRATEGY_SPECULATIVE,
          Strategy.STRATEGY_NGRAM,
          Strategy.STRATEGY_SPECPC);

  private SpecKvStrategy() {}

  /** Edge checks that need no worker: every error names the field. */
  static void validate(GenerateRequest r) {
    boolean speckv = r.getStrategy() == Strategy.STRATEGY_SPECKV;
    if (!r.hasKvCompression()) {
      return; // STRATEGY_SPECKV with every default
    }
    KvCompressionOptions o = r.getKvCompression();
    String method = o.getMethod();
    if (!method.isEmpty() && !METHODS.contains(method)) {
      throw Statuses.invalid(
          "kv_compression.method: \""
              + method
              + "\" (expected: snapkv, streaming_llm, h2o or speckv)");
    }
    if (speckv && !method.isEmpty() && !method.equals(SPECKV)) {
      throw Statuses.invalid(
          "kv_compression.method: \""
              + method
              + "\" (expected: speckv or empty for STRATEGY_SPECKV)");
    }
    if (!speckv && method.equals(SPECKV)) {
      throw Statuses.invalid(
          "kv_compression.method: \"speckv\" with "
              + r.getStrategy()
              + " (expected: STRATEGY_SPECKV, whose draft writes the answer it scores with)");
    }
    if (!speckv && method.isEmpty()) {
      throw Statuses.invalid(
          "kv_compression.method: empty (expected: snapkv, streaming_llm or h2o with "
              + r.getStrategy()
              + ")");
    }
    if (!speckv && !LOSSLESS_HOSTS.contains(r.getStrategy())) {
      throw Statuses.invalid(
          "kv_compression: with "
              + r.getStrategy()
              + " (expected: STRATEGY_AUTOREGRESSIVE, STRATEGY_SPECULATIVE, STRATEGY_NGRAM,"
              + " STRATEGY_SPECPC or STRATEGY_SPECKV)");
    }
    if (o.getBudget() < 0) {
      throw Statuses.invalid(
          "kv_compression.budget: "
              + o.getBudget()
              + " (expected: 0 for the default "
              + DEFAULT_BUDGET
              + ", or >= 1)");
    }
    int budget = o.getBudget() == 0 ? DEFAULT_BUDGET : o.getBudget();
    if (o.getWindow() < 0) {
      throw Statuses.invalid(
          "kv_compression.window: "
              + o.getWindow()
              + " (expected: 0 for the default "
              + DEFAULT_WINDOW
              + " (h2o: half the budget), or >= 1)");
    }
    boolean h2o = method.equals(H2O);
    int window = window(o, method, budget);
    boolean streaming = method.equals(STREAMING_LLM);
    if (!streaming && budget < window) {
      throw Statuses.invalid(
          "kv_compression.budget: "
              + budget
              + " (expected: >= kv_compression.window "
              + window
              + ", which every head keeps)");
    }
    if (h2o && o.getKernel() != 0) {
      throw Statuses.invalid(
          "kv_compression.kernel: "
              + o.getKernel()
              + " (expected: 0; h2o does not pool its scores)");
    }
    if (o.getKernel() < 0 || (o.getKernel() > 0 && o.getKernel() % 2 == 0)) {
      throw Statuses.invalid(
          "kv_compression.kernel: "
              + o.getKernel()
              + " (expected: 0 for the default "
              + DEFAULT_KERNEL
              + ", or odd and >= 1: the max-pool is centred)");
    }
    if (o.hasSinks() && (o.getSinks() < 0 || o.getSinks() > budget)) {
      throw Statuses.invalid(
          "kv_compression.sinks: "
              + o.getSinks()
              + " (expected: 0..kv_compression.budget "
              + budget
              + ")");
    }
    if (o.hasSinks() && !streaming) {
      throw Statuses.invalid(
          "kv_compression.sinks: " + o.getSinks() + " (expected: unset unless streaming_llm)");
    }
    if (o.getAnswerTokens() < 0) {
      throw Statuses.invalid(
          "kv_compression.answer_tokens: "
              + o.getAnswerTokens()
              + " (expected: 0 for max_tokens, or >= 1)");
    }
    if (o.getAnswerTokens() > 0 && !speckv) {
      throw Statuses.invalid(
          "kv_compression.answer_tokens: "
              + o.getAnswerTokens()
              + " (expected: 0 unless STRATEGY_SPECKV)");
    }
    if (o.getPrefixTokens() < 0) {
      throw Statuses.invalid(
          "kv_compression.prefix_tokens: "
              + o.getPrefixTokens()
              + " (expected: 0 for the whole prompt, or >= 1)");
    }
    if (o.getPrefixTokens() > 0 && (speckv || r.getStrategy() == Strategy.STRATEGY_SPECPC)) {
      throw Statuses.invalid(
          "kv_compression.prefix_tokens: "
              + o.getPrefixTokens()
              + " with "
              + r.getStrategy()
              + " (expected: 0; a prefix is compacted by snapkv, streaming_llm or h2o on the"
              + " request's own prompt, not one a draft chose or answered)");
    }
  }

  /**
   * Checks {@code kv_compression.prefix_tokens} against the tokenized prompt: the prefix is
   * compacted and the rest read whole, so at least one token must follow it.
   */
  static void checkPrefix(KvCompressionOptions o, int promptTokens) {
    if (o.getPrefixTokens() >= promptTokens) {
      throw Statuses.invalid(
          "kv_compression.prefix_tokens: "
              + o.getPrefixTokens()
              + " (expected: 0 for the whole prompt, or 1.."
              + (promptTokens - 1)
              + ", fewer than the prompt's "
              + promptTokens
              + " tokens)");
    }
  }

  /**
   * The window after defaults: 32 (the paper's observation window), but for h2o half the budget,
   * H2O's equal split between heavy hitters and recent tokens.
   */
  private static int window(KvCompressionOptions o, String method, int budget) {
    if (o.getWindow() != 0) {
      return o.getWindow();
    }
    return method.equals(H2O) ? budget / 2 : DEFAULT_WINDOW;
  }

  /** The worker's compression with defaults applied; {@code answerTokens} of speckv's answer. */
  static KvCompression compression(KvCompressionOptions o, String method, int answerTokens) {
    int budget = o.getBudget() == 0 ? DEFAULT_BUDGET : o.getBudget();
    KvCompression.Builder b =
        KvCompression.newBuilder()
            .setMethod(method)
            .setBudget(budget)
            .setWindow(window(o, method, budget))
            .setKernel(method.equals(H2O) ? 0 : o.getKernel() == 0 ? DEFAULT_KERNEL : o.getKernel())
            .setAnswerTokens(answerTokens)
            .setPrefixTokens(o.getPrefixTokens());
    if (method.equals(STREAMING_LLM)) {
      b.setSinks(o.hasSinks() ? o.getSinks() : DEFAULT_SINKS);
    }
    return b.build();
  }

  /** The stats of a SpecKV request that ran without its draft: nothing was compacted. */
  static KvCompressionStats uncompressed(int promptTokens, int budget) {
    return KvCompressionStats.newBuilder()
        .setMethod(SPECKV)
        .setPromptTokens(promptTokens)
        .setBudget(budget)
        .setKeptSlots(promptTokens)
        .setUncompressed(true)
        .build();
  }

  /**
   * The draft's greedy answer to {@code prompt}: at most {@code n} tokens, ending before an EOS.
   * Returns null when the draft failed (the reason is in stats); a cancelled request throws.
   */
  static int[] draftAnswer(
      int[] prompt,
      int n,
      WorkerSession draft,
      ModelInfo draftInfo,
      Duration timeout,
      String label,
      RunStats stats) {
    int[] answer = new int[n];
    int have = 0;
    int eos = draftInfo.getEosTokenId();
    int opLimit = Math.max(1, draftInfo.getMaxTokensPerOp());
    long t0 = System.nanoTime();
    try {
      SessionRequest.Builder open =
          SessionRequest.newBuilder()
              .setOpen(
                  io.draftmesh.proto.v1.Open.newBuilder()
                      .addAllPromptIds(Arrays.stream(prompt).boxed().toList())
                      .setSampling(SamplingParams.getDefaultInstance()) // greedy
                      .setSessionLabel(label + "/speckv-answer"));
      draft.call(open, timeout, "open");
      stats.draftCalls++;
      // Propose starts from the prediction Open computed and appends what it generates.
      boolean ended = false;
      while (have < n && !ended) {
        Proposed p =
            draft
                .call(
                    SessionRequest.newBuilder()
                        .setPropose(
                            Propose.newBuilder()
                                .setK(Math.min(opLimit, n - have))
                                .setOptions(ResultOptions.getDefaultInstance())),
                    timeout,
                    "propose")
                .getProposed();
        stats.draftCalls++;
        for (int i = 0; i < p.getTokenIdsCount() && !ended; i++) {
          int t = p.getTokenIds(i);
          ended = t == eos;
          if (!ended) {
            answer[have++] = t;
          }
        }
      }
    } catch (WorkerFailure e) {
      if (e.callerGone()) {
        throw e.toStatusException();
      }
      stats.fallback = true;
      stats.fallbackReason = "draft: " + e.getMessage();
      log.warn("request {}: SpecKV draft failed, no compaction: {}", label, e.getMessage());
      return null;
    } finally {
      stats.draftNanos += System.nanoTime() - t0;
      draft.close();
    }
    return Arrays.copyOf(answer, have);
  }
}
