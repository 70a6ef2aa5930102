package io.draftmesh.engine.compaction;

import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import io.draftmesh.engine.runtime.EngineException;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a prompt with a model and captures what SpecPC scores with: the attention of the prompt's
 * last {@code window} rows, then of each greedy lookahead decode step. One-shot and sessionless: it
 * uses its own small KV pool (sized for this prompt, freed on return) so it never competes with the
 * engine's sessions for blocks, and it captures only the rows it needs (a full prefill capture of a
 * long prompt would be layers x heads x L x L floats).
 *
 * <p>Lookahead follows the reference, which calls {@code generate(max_new_tokens=lookahead)} with
 * attention hooks: {@code lookahead} greedy tokens are generated, and the queries of the {@code
 * lookahead - 1} decode steps that feed them back count (with the default 1, only the prefill).
 */
public final class DraftAttentionProbe {
  /** Prefill rows fed per forward call, bounding the padded attention tensor's size. */
  static final int CHUNK = 512;

  private static final int BLOCK = 16;

  /**
   * @param prefill the last min(window, L) prompt rows over the L prompt keys
   * @param steps one single-row capture per lookahead decode step
   * @param lookaheadTokens the greedy tokens generated (the draft's start of an answer)
   */
  public record Result(
      CapturedAttention prefill, List<CapturedAttention> steps, int[] lookaheadTokens) {}

  private DraftAttentionProbe() {}

  public static Result run(DecoderModel model, int[] prompt, int window, int lookahead) {
    int length = prompt.length;
    if (length < 1) {
      throw EngineException.invalid("prompt_ids: empty (expected: at least one token)");
    }
    if (window < 1) {
      throw EngineException.invalid("window: " + window + " (expected: >= 1)");
    }
    if (lookahead < 1) {
      throw EngineException.invalid("lookahead_tokens: " + lookahead + " (expected: >= 1)");
    }
    int total = length + lookahead - 1; // the last generated token is never fed
    if (total > model.maxContext()) {
      throw EngineException.invalid(
          "prompt_ids: "
              + length
              + " tokens + "
              + (lookahead - 1)
              + " lookahead steps (expected: at most the model's max context "
              + model.maxContext()
              + ")");
    }
    ModelConfig mc = model.config();
    int blocks = (total + BLOCK - 1) / BLOCK;
    long bytes =
        KvBlockPool.bytesPerBlock(
            mc.numLayers(), mc.numKvHeads(), mc.headDim(), BLOCK, KvDtype.FLOAT32);
    try (KvBlockPool pool =
            KvBlockPool.withBudget(
                mc.numLayers(),
                mc.numKvHeads(),
                mc.headDim(),
                BLOCK,
                bytes * blocks,
                KvDtype.FLOAT32);
        BlockTable table = new BlockTable(pool)) {
      table.reserve(total);
      int rows = Math.min(window, length);
      int observedFrom = length - rows;
      for (int start = 0; start < observedFrom; start += CHUNK) {
        int end = Math.min(observedFrom, start + CHUNK);
        forward(model, pool, table, slice(prompt, start, end), start, false);
      }
      StepResult last =
          forward(model, pool, table, slice(prompt, observedFrom, length), observedFrom, true);
      CapturedAttention prefill = captured(mc, rows, length, last);
      int[] tokens = new int[lookahead];
      tokens[0] = argmax(last.logits()[0]);
      List<CapturedAttention> steps = new ArrayList<>();
      for (int s = 1; s < lookahead; s++) {
        int pos = length + s - 1;
        StepResult r = forward(model, pool, table, new int[] {tokens[s - 1]}, pos, true);
        steps.add(captured(mc, 1, pos + 1, r));
        tokens[s] = argmax(r.logits()[0]);
      }
      return new Result(prefill, steps, tokens);
    }
  }

  private static StepResult forward(
      DecoderModel model,
      KvBlockPool pool,
      BlockTable table,
      int[] tokens,
      int startPos,
      boolean capture) {
    SeqStep step = new SeqStep(tokens, startPos, table, new int[] {tokens.length - 1}, capture);
    return model.forward(List.of(step), pool).get(0);
  }

  private static CapturedAttention captured(ModelConfig mc, int rows, int keys, StepResult r) {
    return new CapturedAttention(mc.numHeads(), mc.numKvHeads(), rows, keys, r.attention());
  }

  private static int[] slice(int[] a, int from, int to) {
    return java.util.Arrays.copyOfRange(a, from, to);
  }

  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 1; i < logits.length; i++) {
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }
}
