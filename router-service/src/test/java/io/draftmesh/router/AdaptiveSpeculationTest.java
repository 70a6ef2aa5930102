package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Adaptive speculation writes with the target alone while rounds cost more per token than plain
 * steps ({@link SpeculationGate}). A target whose every Verify answers 40 ms late makes a round far
 * dearer per token than a chunk of Proposes (answered at once), whatever the machine's load.
 */
class AdaptiveSpeculationTest {
  private static ScriptedWorker worker(String id, long params) throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info(id, ScriptedMesh.ZOO_TOKENIZER, 4096, 0, params),
        ScriptedWorker::counting,
        -1,
        false);
  }

  private static GenerateRequest request(SpeculativeOptions.Builder options, int maxTokens) {
    return GenerateRequest.newBuilder()
        .setTokenIds(io.draftmesh.proto.v1.TokenIds.newBuilder().addIds(7).addIds(8))
        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
        .setSpeculative(options)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
        .build();
  }

  @Test
  void dearRoundsGiveWayToPlainChunksAndTheDraftKeepsUp() throws Exception {
    try (ScriptedWorker t = worker("target", 12_000_000).slowVerify(40);
        ScriptedWorker d = worker("draft", 1_000_000);
        ScriptedMesh mesh = new ScriptedMesh(t, d, Duration.ofSeconds(10))) {
      GenerateRequest request =
          request(SpeculativeOptions.newBuilder().setK(2).setAdaptive(true).setMaxK(2), 200);
      List<GenerateChunk> chunks = mesh.chunks(request);
      List<Integer> ids = chunks.stream().flatMap(c -> c.getTokenIdsList().stream()).toList();
      assertThat(ids).hasSize(200);
      for (int i = 0; i < ids.size(); i++) {
        assertThat(ids.get(i)).as("token %d", i).isEqualTo(100 + i);
      }
      GenerationStats s = ScriptedMesh.last(chunks).getStats();
      assertThat(s.getFallback()).as(s.getFallbackReason()).isFalse();
      // Most tokens came from plain chunks (after the warm-up rounds, only the probes speculate)
      // ...
      assertThat(s.getPlainTokens()).isGreaterThan(100);
      // ... and the rounds that did run after plain stretches found the draft caught up: a draft
      // session missing a stretch would have proposed other tokens than the target's.
      assertThat(s.getRounds()).isGreaterThan(SpeculationGate.WARMUP_ROUNDS);
      assertThat(s.getAccepted()).isEqualTo(s.getDrafted());
      assertThat(t.awaitSessionsEnded(Duration.ofSeconds(10))).isTrue();
    }
  }

  @Test
  void withoutAdaptiveEveryTokenIsSpeculated() throws Exception {
    try (ScriptedWorker t = worker("target", 12_000_000).slowVerify(40);
        ScriptedWorker d = worker("draft", 1_000_000);
        ScriptedMesh mesh = new ScriptedMesh(t, d, Duration.ofSeconds(10))) {
      GenerateRequest request = request(SpeculativeOptions.newBuilder().setK(2), 30);
      GenerationStats s = ScriptedMesh.last(mesh.chunks(request)).getStats();
      assertThat(s.getPlainTokens()).isZero();
    }
  }
}
