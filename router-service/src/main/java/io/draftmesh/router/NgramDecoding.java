package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * STRATEGY_NGRAM (prompt lookup): the router drafts by matching the latest n-gram earlier in prompt
 * and output ({@link NgramDrafter}); the target verifies with the exact rule, the draft being
 * deterministic (q = one-hot). Where nothing matches, one autoregressive step.
 */
final class NgramDecoding implements DecodingStrategy {
  private final DecodingPlan plan;
  private final TargetLoop loop;
  private final TokenStream out;
  private final RunStats stats;

  NgramDecoding(DecodingPlan plan, TargetLoop loop, TokenStream out, RunStats stats) {
    this.plan = plan;
    this.loop = loop;
    this.out = out;
    this.stats = stats;
  }

  @Override
  public void run() {
    if (loop.open(() -> {}) < 0) {
      return;
    }
    NgramDrafter ngram = new NgramDrafter(plan.ngramN(), plan.ngramMinN());
    while (!out.finished() && loop.room() >= 1) {
      int k =
          Math.min(
              Math.min(plan.ngramMaxMatch(), out.remaining() - 1),
              Math.min(loop.room() - 1, loop.opLimit()));
      int[] proposal = ngram.propose(loop.sequence(), loop.length(), k);
      if (proposal.length == 0) {
        loop.autoregressiveStep(1);
        continue;
      }
      Verify.Builder verify = Verify.newBuilder();
      for (int x : proposal) {
        verify.addDraftTokenIds(x);
        if (!plan.greedy()) {
          verify.addDraftDistributions(oneHot(x));
        }
      }
      stats.currentK = proposal.length;
      Verified v = loop.verify(verify);
      stats.round(proposal.length, v.getAccepted());
      loop.emitVerified(TargetLoop.asList(proposal), v, Provenance.PROVENANCE_NGRAM_ACCEPTED);
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /** A sparse distribution with all mass on {@code token}. */
  static ProbDistribution oneHot(int token) {
    ByteBuffer id = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(0, token);
    ByteBuffer p = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, 1f);
    return ProbDistribution.newBuilder()
        .setTokenIds(com.google.protobuf.ByteString.copyFrom(id.array()))
        .setProbs(com.google.protobuf.ByteString.copyFrom(p.array()))
        .build();
  }
}
