package io.draftmesh.router;

import io.draftmesh.proto.v1.GenerationStats;
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
  long draftNanos;
  long targetNanos;
  boolean fallback;
  String fallbackReason = "";
  int currentK;
  io.draftmesh.proto.v1.PromptCompressionStats
      promptCompression; // null unless the prompt was compressed

  /** Records a verify round: {@code drafted} tokens sent, {@code accepted} of them kept. */
  void round(int drafted, int accepted) {
    rounds++;
    this.drafted += drafted;
    this.accepted += accepted;
  }

  GenerationStats toProto() {
    GenerationStats.Builder b = GenerationStats.newBuilder();
    if (promptCompression != null) {
      b.setPromptCompression(promptCompression);
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
        .setDraftTimeMs(draftNanos / 1e6)
        .setTargetTimeMs(targetNanos / 1e6)
        .setFallback(fallback)
        .setFallbackReason(fallbackReason)
        .setCurrentK(currentK)
        .build();
  }
}
