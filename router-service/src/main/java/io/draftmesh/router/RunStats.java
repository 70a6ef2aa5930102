package io.draftmesh.router;

import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Strategy;

/** Running totals of one generation, reported in every chunk. Used by one thread. */
final class RunStats {
  Strategy strategy = Strategy.STRATEGY_UNSPECIFIED;
  String targetModel = "";
  String draftModel = "";
  int rounds;
  int drafted;
  int accepted;
  int targetCalls;
  int draftCalls;
  int draftAheadCalls; // of draftCalls: Proposes sent while the target verified
  int draftAheadHits; // of those: the ones whose tokens the next round used
  // Adaptive SPECULATIVE, and trees whose drafter estimates its yield: written by the target
  // alone where speculation was not expected to pay.
  int plainTokens;
  long draftNanos;
  long targetNanos;
  long verifyNanos; // of targetNanos: waiting on Verifies
  boolean fallback;
  String fallbackReason = "";
  int currentK;
  // Tree drafters: which one ran, its node budget, the latest round's accepted nodes.
  io.draftmesh.proto.v1.Drafter drafter = io.draftmesh.proto.v1.Drafter.DRAFTER_CHAIN;
  int treeNodes;
  java.util.List<Integer> acceptedPath = java.util.List.of();
  int written; // tokens streamed, by any model
  Listener listener = (strategy, k, drafted, accepted) -> {};

  /** Told of every verify round as it ends (traces and metrics). */
  interface Listener {
    void round(Strategy strategy, int k, int drafted, int accepted);
  }

  // Approximate strategies: who wrote the completion, and the settings that ran.
  int largeTokens;
  int smallTokens;
  long largeParameters;
  long smallParameters;
  int nudgingRounds;
  int switches;
  float gamma;
  float tau;
  int window;
  io.draftmesh.proto.v1.PromptCompressionStats
      promptCompression; // null unless the prompt was compressed
  io.draftmesh.proto.v1.KvCompressionStats kvCompression; // null unless KV compaction was asked
  // The target's Open: prompt tokens whose KV came from a cache, of those fetched from
  // kvcache-service, and prompt tokens the target prefilled.
  int cachedPromptTokens;
  int fetchedPromptTokens;
  int prefilledPromptTokens;

  /** Records the target's Open, which fed {@code fed} tokens, as the worker answered it. */
  void targetOpened(int fed, io.draftmesh.proto.v1.Opened opened) {
    int cached = Math.min(fed, opened.getCachedPromptTokens());
    cachedPromptTokens += cached;
    fetchedPromptTokens += Math.min(cached, opened.getFetchedPromptTokens());
    prefilledPromptTokens += fed - cached;
  }

  /** Records a verify round: {@code drafted} tokens sent, {@code accepted} of them kept. */
  void round(int drafted, int accepted) {
    rounds++;
    this.drafted += drafted;
    this.accepted += accepted;
    listener.round(strategy, currentK, drafted, accepted);
  }

  /** Counts a streamed token toward the model that wrote it (approximate strategies only). */
  void wrote(Provenance source) {
    written++;
    switch (source) {
      case PROVENANCE_BASE, PROVENANCE_LARGE_SPAN -> largeTokens++;
      case PROVENANCE_ALIGNED_NUDGE, PROVENANCE_SMALL_SPAN -> smallTokens++;
      default -> {}
    }
  }

  /** largeTokens / all tokens written by either model; 0 when none. */
  float largeShare() {
    int n = largeTokens + smallTokens;
    return n == 0 ? 0f : (float) largeTokens / n;
  }

  /**
   * EAD's parameter-weighted cost relative to the large model writing everything: f_L + (1 − f_L) ·
   * N_S / N_L. 0 when nothing was written or the parameter counts are unknown.
   */
  float parameterWeightedCost() {
    return cost(largeShare(), smallParameters, largeParameters, largeTokens + smallTokens);
  }

  static float cost(float largeShare, long smallParams, long largeParams, int tokens) {
    if (tokens == 0 || largeParams <= 0) {
      return 0f;
    }
    return (float) (largeShare + (1.0 - largeShare) * smallParams / (double) largeParams);
  }

  GenerationStats toProto() {
    GenerationStats.Builder b = GenerationStats.newBuilder();
    if (promptCompression != null) {
      b.setPromptCompression(promptCompression);
    }
    if (kvCompression != null) {
      b.setKvCompression(kvCompression);
    }
    return b.setStrategy(strategy)
        .setTargetModel(targetModel)
        .setDraftModel(draftModel)
        .setRounds(rounds)
        .setDrafted(drafted)
        .setAccepted(accepted)
        .setAcceptanceRate(drafted == 0 ? 0f : (float) accepted / drafted)
        .setMeanAcceptedLength(rounds == 0 ? 0f : (float) (accepted + rounds) / rounds)
        .setTargetCalls(targetCalls)
        .setDraftCalls(draftCalls)
        .setDraftAheadCalls(draftAheadCalls)
        .setDraftAheadHits(draftAheadHits)
        .setPlainTokens(plainTokens)
        .setDraftTimeMs(draftNanos / 1e6)
        .setTargetTimeMs(targetNanos / 1e6)
        .setVerifyTimeMs(verifyNanos / 1e6)
        .setFallback(fallback)
        .setFallbackReason(fallbackReason)
        .setCurrentK(currentK)
        .setLargeTokens(largeTokens)
        .setSmallTokens(smallTokens)
        .setLargeShare(largeShare())
        .setParameterWeightedCost(parameterWeightedCost())
        .setNudgingRounds(nudgingRounds)
        .setSwitches(switches)
        .setLargeParameters(largeParameters)
        .setSmallParameters(smallParameters)
        .setGamma(gamma)
        .setTau(tau)
        .setWindow(window)
        .setDrafter(drafter)
        .setTreeNodes(treeNodes)
        .addAllAcceptedPath(acceptedPath)
        .setTokensPerTargetPass(targetCalls == 0 ? 0f : (float) written / targetCalls)
        .setCachedPromptTokens(cachedPromptTokens)
        .setFetchedPromptTokens(fetchedPromptTokens)
        .setPrefilledPromptTokens(prefilledPromptTokens)
        .build();
  }
}
