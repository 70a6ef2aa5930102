package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Draft-ahead: while the target verifies, the draft proposes the next round; the router uses it
 * only when the target accepted everything and its bonus token is the draft's first token ahead.
 * The scripted models are functions of a session's length, so a draft session that holds one token
 * too many or too few proposes other tokens, and its acceptance shows it.
 */
class DraftAheadTest {
  /**
   * Against the target {@link ScriptedWorker#counting}, a draft that agrees with it except at
   * positions 0, 6, 12, ... and 1, 10, 19, ..., where it says 7, and after a 7, where it says 9: it
   * also reads what its session holds, not only how much. Over 60 tokens at k = 4 its rounds end
   * every way: a rejection, all accepted with the wrong first token ahead, all accepted with the
   * right one.
   */
  private static Position mostlyCounting(List<Integer> out) {
    int n = out.size();
    if (n > 0 && out.get(n - 1) == 7) {
      return ScriptedWorker.predicting(9);
    }
    return ScriptedWorker.predicting(n % 6 == 0 || n % 9 == 1 ? 7 : 100 + n);
  }

  private static ScriptedWorker worker(String id, ScriptedWorker.Model model, long params)
      throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info(id, ScriptedMesh.ZOO_TOKENIZER, 4096, 0, params), model, -1, false);
  }

  private static GenerateRequest request(boolean ahead) {
    return GenerateRequest.newBuilder()
        .setTokenIds(io.draftmesh.proto.v1.TokenIds.newBuilder().addIds(7).addIds(8))
        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(4).setDraftAhead(ahead))
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(60))
        .build();
  }

  private record Run(List<Integer> ids, GenerationStats stats) {}

  private static Run run(ScriptedWorker.Model draftModel, boolean ahead) throws Exception {
    try (ScriptedWorker t = worker("target", ScriptedWorker::counting, 12_000_000);
        ScriptedWorker d = worker("draft", draftModel, 1_000_000);
        ScriptedMesh mesh = new ScriptedMesh(t, d, Duration.ofSeconds(10))) {
      List<GenerateChunk> chunks = mesh.chunks(request(ahead));
      List<Integer> ids = chunks.stream().flatMap(c -> c.getTokenIdsList().stream()).toList();
      assertThat(t.awaitSessionsEnded(Duration.ofSeconds(10))).isTrue();
      return new Run(ids, ScriptedMesh.last(chunks).getStats());
    }
  }

  private static void assertCounting(List<Integer> ids) {
    assertThat(ids).hasSize(60);
    for (int i = 0; i < ids.size(); i++) {
      assertThat(ids.get(i)).as("token %d", i).isEqualTo(100 + i);
    }
  }

  @Test
  void aDraftThatIsAlwaysRightProposesOnlyOnceOutsideTheVerifies() throws Exception {
    Run r = run(ScriptedWorker::counting, true);
    assertCounting(r.ids());
    GenerationStats s = r.stats();
    assertThat(s.getFallback()).as(s.getFallbackReason()).isFalse();
    assertThat(s.getDraftAheadCalls()).isGreaterThan(5);
    // Every round after the first verified tokens a Propose ahead had brought.
    assertThat(s.getDraftAheadHits()).isEqualTo(s.getDraftAheadCalls());
    assertThat(s.getDraftCalls() - s.getDraftAheadCalls()).isEqualTo(1);
    assertThat(s.getAccepted()).isEqualTo(s.getDrafted());
  }

  @Test
  void rejectionsRollTheDraftBackToExactlyWhereItWouldBeWithoutDraftAhead() throws Exception {
    Run ahead = run(DraftAheadTest::mostlyCounting, true);
    Run plain = run(DraftAheadTest::mostlyCounting, false);
    assertCounting(ahead.ids());
    assertCounting(plain.ids());
    GenerationStats a = ahead.stats();
    GenerationStats p = plain.stats();
    assertThat(a.getFallback()).as(a.getFallbackReason()).isFalse();
    assertThat(p.getDraftAheadCalls()).isZero();
    // Some Proposes ahead were used and some discarded (a rejection, or a wrong bonus guess) ...
    assertThat(a.getDraftAheadHits()).isPositive().isLessThan(a.getDraftAheadCalls());
    // ... and the rounds drafted and accepted exactly what they do without it: a draft session
    // left one token off would have proposed other tokens.
    assertThat(a.getRounds()).isEqualTo(p.getRounds());
    assertThat(a.getDrafted()).isEqualTo(p.getDrafted());
    assertThat(a.getAccepted()).isEqualTo(p.getAccepted());
    // Every round not fed by a hit asked the draft once more.
    assertThat(a.getDraftCalls() - a.getDraftAheadCalls())
        .isEqualTo(p.getDraftCalls() - a.getDraftAheadHits());
  }
}
