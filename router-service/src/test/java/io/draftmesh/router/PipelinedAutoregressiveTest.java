package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The autoregressive tail keeps one Propose in flight ahead of the one it reads, so the target
 * starts the next op without waiting for a round trip.
 */
class PipelinedAutoregressiveTest {
  private static ScriptedWorker target() throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info("target", ScriptedMesh.ZOO_TOKENIZER, 4096, 0, 12_000_000),
        ScriptedWorker::counting,
        -1,
        false);
  }

  private static GenerateRequest request(int maxTokens) {
    return GenerateRequest.newBuilder()
        .setTokenIds(io.draftmesh.proto.v1.TokenIds.newBuilder().addIds(7).addIds(8))
        .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
        .build();
  }

  @Test
  void theNextProposeGoesOutBeforeTheAnswerToThePreviousOne() throws Exception {
    // The worker answers the first Propose only when the next request arrives: a router that
    // waits for each answer before sending the next op would hang until its target timeout.
    try (ScriptedWorker t = target().holdingFirstPropose();
        ScriptedMesh mesh = new ScriptedMesh(t, null, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks = mesh.chunks(request(40));
      GenerateChunk last = ScriptedMesh.last(chunks);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
      List<Integer> ids = chunks.stream().flatMap(c -> c.getTokenIdsList().stream()).toList();
      // Open's token (100), then every Propose's, in order, exactly max_tokens of them.
      assertThat(ids).hasSize(40);
      for (int i = 0; i < ids.size(); i++) {
        assertThat(ids.get(i)).as("token %d", i).isEqualTo(100 + i);
      }
      assertThat(t.awaitSessionsEnded(Duration.ofSeconds(10))).isTrue();
      // Nothing was sent past the last wanted token: the final Propose asked for just the rest.
      assertThat(t.sessions.get(0).output()).hasSize(40);
    }
  }
}
