package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.Drafter;
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
 * Token Recycling's trees are verified only where they are expected to pay for the verify ({@link
 * TreeVerifyGate}). The target repeats a cycle of 5 tokens, so once the table has seen it every
 * tree is the cycle's next 6 tokens and all of it is accepted; a target whose every Verify answers
 * 1 s late makes a verify cost far more than the ~5 tokens it is expected to commit, whatever the
 * machine's load: a plain step would have to average 200 ms to change that. (At 100 ms late the
 * test failed twice in three runs at load average 6.5: the gate verified nearly every round, which
 * only plain steps averaging over 20 ms explain.) The decision rule itself is {@link
 * TreeVerifyGateTest}'s, on given costs.
 */
class TokenRecyclingGateTest {
  private static final int TOKENS = 80;

  private static ScriptedWorker target() throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info("target", ScriptedMesh.ZOO_TOKENIZER, 4096, 0, 12_000_000),
        ScriptedWorker.cycling(5),
        -1,
        false);
  }

  private static GenerateRequest request() {
    return GenerateRequest.newBuilder()
        .setTokenIds(io.draftmesh.proto.v1.TokenIds.newBuilder().addIds(7).addIds(8))
        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
        .setSpeculative(
            SpeculativeOptions.newBuilder()
                .setDrafter(Drafter.DRAFTER_TOKEN_RECYCLING)
                .setTreeNodes(8))
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(TOKENS))
        .build();
  }

  /** Runs the request; checks the output is the target's own and returns the final stats. */
  private static GenerationStats run(ScriptedWorker t) throws Exception {
    try (ScriptedWorker d = target();
        ScriptedMesh mesh = new ScriptedMesh(t, d, Duration.ofSeconds(10))) {
      List<GenerateChunk> chunks = mesh.chunks(request());
      List<Integer> ids = chunks.stream().flatMap(c -> c.getTokenIdsList().stream()).toList();
      assertThat(ids).hasSize(TOKENS);
      for (int i = 0; i < ids.size(); i++) {
        assertThat(ids.get(i)).as("token %d", i).isEqualTo(100 + i % 5);
      }
      GenerationStats s = ScriptedMesh.last(chunks).getStats();
      assertThat(s.getFallback()).as(s.getFallbackReason()).isFalse();
      assertThat(t.awaitSessionsEnded(Duration.ofSeconds(10))).isTrue();
      return s;
    }
  }

  @Test
  void dearVerifiesGiveWayToPlainStepsThatStillProbeThem() throws Exception {
    try (ScriptedWorker t = target().slowVerify(1_000)) {
      GenerationStats s = run(t);
      // Most tokens from plain steps where a tree was drafted ...
      assertThat(s.getPlainTokens()).isGreaterThan(TOKENS / 2);
      // ... the first verify, and probes after 8 and 16 plain steps (the next would come after 32)
      assertThat(s.getRounds()).isBetween(2, 4);
      // ... whose trees, drafted from what plain steps taught the table, were right.
      assertThat(s.getAccepted()).isEqualTo(s.getDrafted());
    }
  }
}
