package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.Truncate;
import io.draftmesh.proto.v1.Verify;
import org.junit.jupiter.api.Test;

/** Which answers leave the scheduler thread to be converted on the responses executor. */
class SessionCallTest {
  private static SessionRequest verify(ResultOptions.Builder options) {
    return SessionRequest.newBuilder()
        .setVerify(Verify.newBuilder().addDraftTokenIds(1).setOptions(options))
        .build();
  }

  @Test
  void smallTopKAnswersAreSentFromTheThreadThatCompletedTheOp() {
    // A token-recycling tree verify: top-8 per position and per node.
    assertThat(
            SessionCall.asksForDistributions(
                verify(ResultOptions.newBuilder().setTopKProbs(8).setNodeTopK(8))))
        .isFalse();
    assertThat(
            SessionCall.asksForDistributions(
                verify(ResultOptions.newBuilder().setTopKProbs(SessionCall.INLINE_TOP_K))))
        .isFalse();
    assertThat(
            SessionCall.asksForDistributions(
                SessionRequest.newBuilder()
                    .setTruncate(Truncate.newBuilder().setLength(3))
                    .build()))
        .isFalse();
  }

  @Test
  void fullDistributionsAndLargeTopKAreConvertedOffTheSchedulerThread() {
    assertThat(
            SessionCall.asksForDistributions(
                SessionRequest.newBuilder()
                    .setPropose(
                        Propose.newBuilder()
                            .setK(4)
                            .setOptions(ResultOptions.newBuilder().setFullDistribution(true)))
                    .build()))
        .isTrue();
    assertThat(
            SessionCall.asksForDistributions(
                verify(ResultOptions.newBuilder().setTopKProbs(SessionCall.INLINE_TOP_K + 1))))
        .isTrue();
    assertThat(
            SessionCall.asksForDistributions(
                verify(ResultOptions.newBuilder().setNodeTopK(SessionCall.INLINE_TOP_K + 1))))
        .isTrue();
  }
}
