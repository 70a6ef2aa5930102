package io.draftmesh.router;

import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.Strategy;
import java.time.Duration;

/**
 * What a request asked for, after validation and defaults: the input of every {@link
 * DecodingStrategy}.
 *
 * @param prompt the target's prompt ids
 * @param draftSampling the helper's sampling params: the same transforms, another random stream
 * @param draftAhead SPECULATIVE chain: the draft proposes the next round while the target verifies
 * @param drafter SPECULATIVE: who drafts (a chain, or one of the tree drafters)
 * @param treeNodes tree drafters: node budget per round
 * @param compression the target's KV compaction after its prefill, or null for none
 * @param answer SpecKV: the draft's answer, prefilled after the prompt for scoring and dropped
 */
record DecodingPlan(
    Strategy strategy,
    int[] prompt,
    SamplingParams targetSampling,
    SamplingParams draftSampling,
    int k,
    boolean adaptive,
    int maxK,
    float minDraftTokenProb,
    boolean draftAhead,
    int ngramN,
    int ngramMinN,
    int ngramMaxMatch,
    Nudging nudging,
    Switching switching,
    Drafter drafter,
    int treeNodes,
    String label,
    KvCompression compression,
    int[] answer) {

  boolean greedy() {
    return targetSampling.getTemperature() == 0f;
  }

  /**
   * NUDGING's parameters.
   *
   * @param alignedPrompt the aligned model's prompt ids, in its own tokenizer
   * @param gamma take-over threshold on the base model's top-1 probability, in (0, 1)
   * @param chunkTokens tokens per aligned proposal
   */
  record Nudging(int[] alignedPrompt, float gamma, int chunkTokens) {}

  /**
   * ENTROPY_SWITCH's and LEAD_IN's parameters.
   *
   * @param tau rolling-mean entropy (bits) above which the large model writes
   * @param window tokens in the rolling mean
   * @param minRun tokens a model writes before the next switch
   * @param leadIn LEAD_IN: tokens the large model writes at each sentence start
   * @param sentenceEnd LEAD_IN: characters that end a sentence
   */
  record Switching(float tau, int window, int minRun, int leadIn, String sentenceEnd) {}

  /** Timeouts and sizes from the router's config. */
  record Settings(Duration targetTimeout, Duration draftTimeout, int arChunk) {}
}
