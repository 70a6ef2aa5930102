package io.draftmesh.router;

import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.PromptCompressionStats;
import io.draftmesh.proto.v1.SelectPromptTokensRequest;
import io.draftmesh.proto.v1.SelectPromptTokensResponse;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * STRATEGY_SPECPC (papers.md §2, furiosa-ai/draft-based-approx-llm {@code specpc/}): the draft
 * reads the prompt and its attention picks the prompt tokens to keep ({@code SelectPromptTokens} on
 * the draft worker); the target then prefills only those tokens, at new contiguous positions, and
 * generates alone. Approximate: the output is the target's given the shortened prompt.
 *
 * <p>The draft is an accelerator: when it is unreachable, fails, or cannot hold the prompt, the
 * target reads the whole prompt and the stats say so ({@code fallback}, {@code uncompressed}).
 */
final class SpecPcStrategy {
  private static final Logger log = LoggerFactory.getLogger(SpecPcStrategy.class);

  static final int DEFAULT_BUDGET = 1024;
  static final int DEFAULT_WINDOW = 64;
  static final int DEFAULT_KERNEL = 64;
  static final int DEFAULT_NEIGHBORS = 64;
  static final int DEFAULT_LOOKAHEAD = 1;
  static final int DEFAULT_STARTING_LAYER = 8;
  static final String METHOD = "specpc";

  private SpecPcStrategy() {}

  /** The options with defaults applied, for a prompt of a known length. */
  record Settings(
      int budget, int window, int kernel, int neighbors, int lookahead, int startingLayer) {}

  /** Edge checks that need no worker: every error names the field. */
  static void validate(SpecPcOptions o) {
    if (o.getBudgetTokens() < 0) {
      throw Statuses.invalid(
          "spec_pc.budget_tokens: "
              + o.getBudgetTokens()
              + " (expected: 0 for the default, or >= 1)");
    }
    float ratio = o.getBudgetRatio();
    if (!(ratio >= 0f && ratio <= 1f)) {
      throw Statuses.invalid(
          "spec_pc.budget_ratio: " + ratio + " (expected: 0 for off, or (0, 1])");
    }
    if (o.getBudgetTokens() > 0 && ratio > 0f) {
      throw Statuses.invalid(
          "spec_pc.budget_ratio: "
              + ratio
              + " with spec_pc.budget_tokens "
              + o.getBudgetTokens()
              + " (expected: one of the two)");
    }
    nonNegative("spec_pc.window", o.getWindow(), DEFAULT_WINDOW);
    nonNegative("spec_pc.kernel", o.getKernel(), DEFAULT_KERNEL);
    nonNegative("spec_pc.neighbor_tokens", o.getNeighborTokens(), DEFAULT_NEIGHBORS);
    nonNegative("spec_pc.lookahead_tokens", o.getLookaheadTokens(), DEFAULT_LOOKAHEAD);
    if (o.hasStartingLayer() && o.getStartingLayer() < 0) {
      throw Statuses.invalid(
          "spec_pc.starting_layer: " + o.getStartingLayer() + " (expected: >= 0)");
    }
    int window = o.getWindow() == 0 ? DEFAULT_WINDOW : o.getWindow();
    if (o.getBudgetTokens() > 0 && o.getBudgetTokens() < window) {
      throw Statuses.invalid(
          "spec_pc.budget_tokens: "
              + o.getBudgetTokens()
              + " (expected: >= spec_pc.window "
              + window
              + ")");
    }
  }

  /** Defaults applied; a ratio becomes a token budget of this prompt. */
  static Settings settings(SpecPcOptions o, int promptLength) {
    int window = o.getWindow() == 0 ? DEFAULT_WINDOW : o.getWindow();
    int budget;
    if (o.getBudgetRatio() > 0f) {
      budget = (int) Math.ceil(o.getBudgetRatio() * promptLength);
      if (budget < window) {
        throw Statuses.invalid(
            "spec_pc.budget_ratio: "
                + o.getBudgetRatio()
                + " keeps "
                + budget
                + " of "
                + promptLength
                + " tokens (expected: at least spec_pc.window "
                + window
                + ")");
      }
    } else {
      budget = o.getBudgetTokens() == 0 ? DEFAULT_BUDGET : o.getBudgetTokens();
    }
    return new Settings(
        budget,
        window,
        o.getKernel() == 0 ? DEFAULT_KERNEL : o.getKernel(),
        o.getNeighborTokens() == 0 ? DEFAULT_NEIGHBORS : o.getNeighborTokens(),
        o.getLookaheadTokens() == 0 ? DEFAULT_LOOKAHEAD : o.getLookaheadTokens(),
        o.hasStartingLayer() ? o.getStartingLayer() : DEFAULT_STARTING_LAYER);
  }

  /** SpecPC needs a draft pool: none named and no default is the request's mistake. */
  static void requireDraft(GenerateRequest request, String defaultDraft) {
    if (request.getDraft().isEmpty() && defaultDraft == null) {
      throw Statuses.invalid(
          "draft: none given and the router has no default draft pool (expected: a draft pool"
              + " for STRATEGY_SPECPC, whose attention picks the prompt tokens)");
    }
  }

  /**
   * Asks the draft which prompt tokens to keep and returns the target's prompt: those tokens, in
   * order. Records what happened in {@code stats}.
   *
   * @param draft the draft backend, or null when it could not be reached (the reason is in stats)
   */
  static int[] compress(
      int[] prompt,
      Settings s,
      WorkerPool.Backend draft,
      ModelInfo draftInfo,
      ModelInfo targetInfo,
      Duration timeout,
      String label,
      RunStats stats) {
    PromptCompressionStats.Builder pc =
        PromptCompressionStats.newBuilder()
            .setMethod(METHOD)
            .setPromptTokens(prompt.length)
            .setBudgetTokens(s.budget());
    int[] kept = prompt;
    if (draft != null && draftInfo != null) {
      if (!draftInfo.getTokenizerHash().equals(targetInfo.getTokenizerHash())) {
        throw Statuses.failedPrecondition(
            "draft: model "
                + draftInfo.getModelId()
                + " has tokenizer "
                + draftInfo.getTokenizerHash()
                + " but target "
                + targetInfo.getModelId()
                + " has "
                + targetInfo.getTokenizerHash()
                + " (expected: the same tokenizer.json)");
      }
      stats.draftModel = draftInfo.getModelId();
      if (prompt.length <= s.budget()) {
        kept = prompt.clone(); // the budget covers the prompt: nothing to read for
      } else if (prompt.length + s.lookahead() - 1 > draftInfo.getMaxContext()) {
        fallback(stats, "the prompt exceeds the draft's max context " + draftInfo.getMaxContext());
      } else if (s.lookahead() > Math.max(1, draftInfo.getMaxTokensPerOp())) {
        throw Statuses.invalid(
            "spec_pc.lookahead_tokens: "
                + s.lookahead()
                + " (expected: 1.."
                + draftInfo.getMaxTokensPerOp()
                + ", the draft's max_tokens_per_op)");
      } else {
        SelectPromptTokensRequest.Builder req =
            SelectPromptTokensRequest.newBuilder()
                .setBudgetTokens(s.budget())
                .setWindow(s.window())
                .setKernel(s.kernel())
                .setNeighborTokens(s.neighbors())
                .setLookaheadTokens(s.lookahead())
                .setStartingLayer(s.startingLayer())
                .setLabel(label);
        for (int id : prompt) {
          req.addPromptIds(id);
        }
        long t0 = System.nanoTime();
        try {
          SelectPromptTokensResponse r =
              ModelWorkerGrpc.newBlockingStub(draft.channel())
                  .withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS)
                  .selectPromptTokens(req.build());
          kept = new int[r.getKeptIndicesCount()];
          for (int i = 0; i < kept.length; i++) {
            kept[i] = prompt[r.getKeptIndices(i)];
          }
          pc.setDraftTokens(r.getLookaheadTokenIdsCount()).setStartingLayer(r.getStartingLayer());
          if (r.getRanModel()) {
            stats.draftCalls++;
          }
        } catch (StatusRuntimeException e) {
          if (e.getStatus().getCode() == Status.Code.CANCELLED
              && io.grpc.Context.current().isCancelled()) {
            throw e; // the client left: nothing to fall back for
          }
          fallback(
              stats, "draft: " + e.getStatus().getCode() + " " + e.getStatus().getDescription());
          log.warn(
              "request {}: SpecPC draft failed, reading the whole prompt: {}", label, e.toString());
        } finally {
          stats.draftNanos += System.nanoTime() - t0;
        }
      }
    }
    if (kept == prompt) {
      pc.setUncompressed(stats.fallback);
    }
    stats.promptCompression =
        pc.setKeptTokens(kept.length).setDroppedTokens(prompt.length - kept.length).build();
    return kept;
  }

  private static void fallback(RunStats stats, String reason) {
    stats.fallback = true;
    stats.fallbackReason = reason;
  }

  private static void nonNegative(String field, int value, int def) {
    if (value < 0) {
      throw Statuses.invalid(
          field + ": " + value + " (expected: 0 for the default " + def + ", or >= 1)");
    }
  }
}
