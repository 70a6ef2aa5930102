package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.TestMesh.Result;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Stop conditions through the router when a verify round accepts more than may be streamed: with
 * the target's own checkpoint as draft every round accepts k tokens plus a bonus, so max_tokens and
 * stop sequences fall inside rounds.
 */
class StopAndLengthIT {
  static TestMesh mesh;

  @BeforeAll
  static void start() {
    mesh = TestMesh.get();
  }

  static GenerateRequest.Builder request(Strategy strategy, int maxTokens) {
    return GenerateRequest.newBuilder()
        .setText("The old lighthouse keeper")
        .setStrategy(strategy)
        .setDraft("same")
        .setIgnoreEos(true)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(8))
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens));
  }

  @Test
  void maxTokensInsideARoundStreamsExactlyMaxTokens() {
    Result ar = mesh.generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, 30).build());
    for (int max : new int[] {1, 2, 7, 11}) {
      Result r = mesh.generate(request(Strategy.STRATEGY_SPECULATIVE, max).build());
      assertThat(r.ids()).isEqualTo(ar.ids().subList(0, max));
      assertThat(r.last().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
      assertThat(r.last().getUsage().getCompletionTokens()).isEqualTo(max);
    }
  }

  @Test
  void aStopSequenceInsideARoundEndsTheTextBeforeItAndNoTokenFollowsIt() {
    Result ar = mesh.generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, 30).build());
    String full = ar.text();
    assertThat(full).isEqualTo(mesh.tokenizer.decode(GreedyLosslessIT.toArray(ar.ids()), true));
    // A stop sequence from the middle of the output that avoids replacement characters.
    int at = full.length() / 2;
    while (at < full.length() - 3 && full.substring(at, at + 3).contains("\uFFFD")) {
      at++;
    }
    String stop = full.substring(at, at + 3);
    int first = full.indexOf(stop);
    List<GenerateChunk> chunks =
        mesh.chunks(
            request(Strategy.STRATEGY_SPECULATIVE, 30)
                .setSampling(Sampling.newBuilder().setMaxTokens(30).addStop(stop))
                .build());
    Result r = Result.of(chunks);
    assertThat(r.text()).isEqualTo(full.substring(0, first));
    assertThat(r.last().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
    // Ids: a prefix of the target's, ending with the token that completed the stop sequence.
    int n = r.ids().size();
    assertThat(r.ids()).isEqualTo(ar.ids().subList(0, n));
    String decoded = mesh.tokenizer.decode(GreedyLosslessIT.toArray(r.ids()), true);
    String decodedShorter =
        mesh.tokenizer.decode(GreedyLosslessIT.toArray(r.ids().subList(0, n - 1)), true);
    assertThat(decoded).contains(stop);
    assertThat(decodedShorter).doesNotContain(stop);
    assertThat(r.last().getStats().getAccepted()).isPositive();
    // Of the time waiting on the target, the Verifies' part.
    assertThat(r.last().getStats().getVerifyTimeMs())
        .isPositive()
        .isLessThanOrEqualTo(r.last().getStats().getTargetTimeMs());
  }

  @Test
  void streamedTextIsTheDecodedIdsForEveryStrategy() {
    for (Strategy s :
        List.of(
            Strategy.STRATEGY_AUTOREGRESSIVE,
            Strategy.STRATEGY_SPECULATIVE,
            Strategy.STRATEGY_NGRAM)) {
      List<GenerateChunk> chunks = mesh.chunks(request(s, 40).build());
      Result r = Result.of(chunks);
      assertThat(r.text())
          .isEqualTo(mesh.tokenizer.decode(GreedyLosslessIT.toArray(r.ids()), true));
      assertThat(chunks.size()).as("streamed in several chunks").isGreaterThan(2);
      for (GenerateChunk c : chunks) {
        assertThat(c.getProvenanceCount()).isEqualTo(c.getTokenIdsCount());
      }
      for (GenerateChunk c : chunks.subList(0, chunks.size() - 1)) {
        assertThat(c.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
        assertThat(c.hasUsage()).isFalse();
      }
    }
  }
}
