package io.draftmesh.worker;

import io.draftmesh.engine.compaction.DraftAttentionProbe;
import io.draftmesh.engine.compaction.SpecPcPolicy;
import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.SelectPromptTokensRequest;
import io.draftmesh.proto.v1.SelectPromptTokensResponse;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;

/**
 * {@code SelectPromptTokens}: SpecPC's draft side. Validates at the edge, then reads the prompt
 * with a {@link DraftAttentionProbe} on the worker's probe executor (never a transport thread, and
 * never the engine's scheduler thread: the probe runs on KV of its own) and selects with {@link
 * SpecPcPolicy}.
 */
final class PromptSelection {
  private PromptSelection() {}

  static void handle(
      InferenceEngine engine,
      ExecutorService probes,
      SelectPromptTokensRequest request,
      StreamObserver<SelectPromptTokensResponse> out) {
    SpecPcPolicy policy;
    try {
      policy = validate(engine, request);
    } catch (EngineException e) {
      out.onError(Statuses.toException(e));
      return;
    }
    Context ctx = Context.current();
    Runnable work =
        () -> {
          if (ctx.isCancelled()) {
            return; // the caller is gone: nothing to read for
          }
          try {
            out.onNext(run(engine, policy, request));
            out.onCompleted();
          } catch (RuntimeException e) {
            out.onError(Statuses.toException(e));
          }
        };
    try {
      probes.execute(ctx.wrap(work));
    } catch (RejectedExecutionException e) {
      out.onError(
          Status.RESOURCE_EXHAUSTED
              .withDescription(
                  "select_prompt_tokens: the worker's prompt readers are all busy (expected: retry"
                      + " later)")
              .asRuntimeException());
    }
  }

  private static SelectPromptTokensResponse run(
      InferenceEngine engine, SpecPcPolicy policy, SelectPromptTokensRequest r) {
    int[] prompt = r.getPromptIdsList().stream().mapToInt(Integer::intValue).toArray();
    int layers = engine.model().config().numLayers();
    SelectPromptTokensResponse.Builder b =
        SelectPromptTokensResponse.newBuilder()
            .setStartingLayer(policy.effectiveStartingLayer(layers));
    if (prompt.length <= r.getBudgetTokens()) {
      for (int i = 0; i < prompt.length; i++) {
        b.addKeptIndices(i);
      }
      return b.setRanModel(false).build();
    }
    DraftAttentionProbe.Result read =
        DraftAttentionProbe.run(engine.model(), prompt, policy.window(), r.getLookaheadTokens());
    int[] kept = policy.select(policy.scores(read.prefill(), read.steps()), r.getBudgetTokens());
    for (int k : kept) {
      b.addKeptIndices(k);
    }
    for (int t : read.lookaheadTokens()) {
      b.addLookaheadTokenIds(t);
    }
    return b.setRanModel(true).build();
  }

  static SpecPcPolicy validate(InferenceEngine engine, SelectPromptTokensRequest r) {
    int n = r.getPromptIdsCount();
    int maxContext = engine.model().maxContext();
    int vocab = engine.vocabSize();
    int maxOp = engine.config().maxTokensPerOp();
    if (r.getLookaheadTokens() < 1 || r.getLookaheadTokens() > maxOp) {
      throw EngineException.invalid(
          "lookahead_tokens: " + r.getLookaheadTokens() + " (expected: 1.." + maxOp + ")");
    }
    int room = maxContext - (r.getLookaheadTokens() - 1);
    if (n < 1 || n > room) {
      throw EngineException.invalid(
          "prompt_ids: "
              + n
              + " tokens (expected: 1.."
              + room
              + ": the max context "
              + maxContext
              + " less the lookahead steps)");
    }
    for (int i = 0; i < n; i++) {
      int id = r.getPromptIds(i);
      if (id < 0 || id >= vocab) {
        throw EngineException.invalid(
            "prompt_ids[" + i + "]: " + id + " (expected: 0.." + (vocab - 1) + ")");
      }
    }
    if (r.getWindow() < 1) {
      throw EngineException.invalid("window: " + r.getWindow() + " (expected: >= 1)");
    }
    if (r.getBudgetTokens() < r.getWindow()) {
      throw EngineException.invalid(
          "budget_tokens: " + r.getBudgetTokens() + " (expected: >= window " + r.getWindow() + ")");
    }
    if (r.getKernel() < 1) {
      throw EngineException.invalid("kernel: " + r.getKernel() + " (expected: >= 1)");
    }
    if (r.getNeighborTokens() < 1) {
      throw EngineException.invalid(
          "neighbor_tokens: " + r.getNeighborTokens() + " (expected: >= 1)");
    }
    if (r.getStartingLayer() < 0) {
      throw EngineException.invalid(
          "starting_layer: " + r.getStartingLayer() + " (expected: >= 0)");
    }
    return new SpecPcPolicy(
        r.getWindow(), r.getKernel(), r.getNeighborTokens(), r.getStartingLayer());
  }
}
