package io.draftmesh.engine.speculative;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.TokenSampler;
import io.draftmesh.engine.speculative.SpeculativeVerifier.Outcome;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

class SpeculativeVerifierTest {

  private static ProbDist dense(double... probs) {
    float[] f = new float[probs.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) probs[i];
    }
    return ProbDist.dense(f);
  }

  @Test
  void greedyAcceptsAllAndTakesTheBonus() {
    Outcome outcome = SpeculativeVerifier.greedy(new int[] {5, 6, 7}, new int[] {5, 6, 7, 8});
    assertThat(outcome).isEqualTo(new Outcome(3, 8, true));
    assertThat(outcome.emitted(new int[] {5, 6, 7})).containsExactly(5, 6, 7, 8);
    assertThat(outcome.emittedCount()).isEqualTo(4);
  }

  @Test
  void greedyStopsAtFirstMismatch() {
    assertThat(SpeculativeVerifier.greedy(new int[] {5, 6, 7}, new int[] {9, 6, 7, 8}))
        .isEqualTo(new Outcome(0, 9, false));
    Outcome middle = SpeculativeVerifier.greedy(new int[] {5, 6, 7}, new int[] {5, 1, 7, 8});
    assertThat(middle).isEqualTo(new Outcome(1, 1, false));
    assertThat(middle.emitted(new int[] {5, 6, 7})).containsExactly(5, 1);
    assertThat(SpeculativeVerifier.greedy(new int[] {5, 6, 7}, new int[] {5, 6, 2, 8}))
        .isEqualTo(new Outcome(2, 2, false));
    // no draft: the target's own next token, counted as the bonus
    assertThat(SpeculativeVerifier.greedy(new int[0], new int[] {4}))
        .isEqualTo(new Outcome(0, 4, true));
  }

  @Test
  void greedyValidatesLengths() {
    assertThatThrownBy(() -> SpeculativeVerifier.greedy(new int[] {1, 2}, new int[] {1, 2}))
        .isInstanceOf(EngineException.class)
        .hasMessage(
            "verify.target_argmax: 2 given, expected 3 (one per draft token, plus the bonus"
                + " position)");
    assertThatThrownBy(() -> SpeculativeVerifier.greedy(null, new int[] {1}))
        .hasMessage("verify.draft_tokens: missing");
  }

  @Test
  void identicalDistributionsAcceptEverything() {
    ProbDist d = dense(0.2, 0.3, 0.5);
    RandomGenerator rng = TokenSampler.seeded(1);
    for (int trial = 0; trial < 100; trial++) {
      int[] draft = {TokenSampler.sample(d, rng), TokenSampler.sample(d, rng)};
      Outcome outcome =
          SpeculativeVerifier.sample(
              draft, new ProbDist[] {d, d}, new ProbDist[] {d, d, dense(0, 1, 0)}, rng);
      assertThat(outcome.accepted()).isEqualTo(2);
      assertThat(outcome.bonus()).isTrue();
      assertThat(outcome.nextToken()).isEqualTo(1);
    }
  }

  @Test
  void tokenImpossibleUnderTargetIsAlwaysReplaced() {
    ProbDist q = dense(0.5, 0.5, 0);
    ProbDist p = dense(0, 0.5, 0.5);
    RandomGenerator rng = TokenSampler.seeded(2);
    for (int trial = 0; trial < 200; trial++) {
      Outcome outcome =
          SpeculativeVerifier.sample(new int[] {0}, new ProbDist[] {q}, new ProbDist[] {p, p}, rng);
      assertThat(outcome.accepted()).isZero();
      // residual max(0, p - q) = (0, 0, 0.5): the correction must be token 2
      assertThat(outcome.nextToken()).isEqualTo(2);
    }
  }

  @Test
  void draftTokenWithZeroDraftProbabilityIsRejected() {
    // q(1) = 0: token 1 cannot have come from q; the rule rejects and samples the residual
    // max(0, p - q) = (0, 0.6, 0) -> token 1 via the target, never forced by the drafter.
    ProbDist q = dense(0.6, 0, 0.4);
    ProbDist p = dense(0.2, 0.6, 0.2);
    Outcome outcome =
        SpeculativeVerifier.sample(
            new int[] {1}, new ProbDist[] {q}, new ProbDist[] {p, p}, TokenSampler.seeded(3));
    assertThat(outcome).isEqualTo(new Outcome(0, 1, false));
  }

  @Test
  void equalDistributionsWithZeroResidualFallBackToTarget() {
    // p == q but the draft token has q = 0 (inconsistent input): residual is empty -> sample p
    ProbDist p = new ProbDist(4, new int[] {3}, new float[] {1f});
    Outcome outcome =
        SpeculativeVerifier.sample(
            new int[] {0}, new ProbDist[] {p}, new ProbDist[] {p, p}, TokenSampler.seeded(4));
    assertThat(outcome).isEqualTo(new Outcome(0, 3, false));
  }

  @Test
  void sampleValidatesItsInputsNamingTheField() {
    ProbDist d = dense(0.5, 0.5);
    RandomGenerator rng = TokenSampler.seeded(5);
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {0, 1, 0, 1}, new ProbDist[] {d, d, d}, new ProbDist[5], rng))
        .isInstanceOf(EngineException.class)
        .hasMessage("verify.draft_distributions: 3 given, expected 4 (one per draft token)")
        .extracting(e -> ((EngineException) e).kind())
        .isEqualTo(EngineException.Kind.INVALID_ARGUMENT);
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {0}, new ProbDist[] {d}, new ProbDist[] {d}, rng))
        .hasMessage(
            "verify.target_distributions: 1 given, expected 2"
                + " (one per draft token, plus the bonus position)");
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {0},
                    new ProbDist[] {dense(0.5, 0.25, 0.25)},
                    new ProbDist[] {d, d},
                    rng))
        .hasMessage("verify.draft_distributions[0]: vocab size 3, expected 2 (the target's)");
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {0}, new ProbDist[] {d}, new ProbDist[] {d, dense(1, 0, 0)}, rng))
        .hasMessage(
            "verify.target_distributions[1]: vocab size 3, expected 2"
                + " (that of target_distributions[0])");
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {2}, new ProbDist[] {d}, new ProbDist[] {d, d}, rng))
        .hasMessage("verify.draft_tokens[0]: 2 (expected: 0..1)");
    assertThatThrownBy(
            () ->
                SpeculativeVerifier.sample(
                    new int[] {0}, new ProbDist[] {null}, new ProbDist[] {d, d}, rng))
        .hasMessage("verify.draft_distributions[0]: missing");
  }
}
