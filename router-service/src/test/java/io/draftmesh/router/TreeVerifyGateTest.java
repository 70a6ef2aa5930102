package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The tree gate's rule on given costs: verify a tree only where it commits more per nanosecond. */
class TreeVerifyGateTest {
  @Test
  void aTreeIsVerifiedWhenItsExpectedTokensPayForItsCostAndOnlyThen() {
    // Plain step 1,000 ns; verifies of 4 nodes took 2,000: a 4-node verify must commit 2 tokens.
    assertThat(TreeVerifyGate.verifyPays(2.5, 4, 2_000, 4, 1_000)).isTrue();
    assertThat(TreeVerifyGate.verifyPays(1.5, 4, 2_000, 4, 1_000)).isFalse();
  }

  @Test
  void theSameTreeIsVerifiedWhereVerifiesAreCheap() {
    // 1.5 expected tokens: not worth a verify at twice a plain step, worth one at 1.4 times.
    assertThat(TreeVerifyGate.verifyPays(1.5, 4, 2_000, 4, 1_000)).isFalse();
    assertThat(TreeVerifyGate.verifyPays(1.5, 4, 1_400, 4, 1_000)).isTrue();
    // The same ratio at other absolute costs decides the same.
    assertThat(TreeVerifyGate.verifyPays(1.5, 4, 1_400_000, 4, 1_000_000)).isTrue();
  }

  @Test
  void aSmallerTreeIsChargedLess() {
    // Verifies of 4 nodes cost 2,000, a plain step 1,000: a 1-node tree is charged 1,250.
    assertThat(TreeVerifyGate.verifyPays(1.3, 1, 2_000, 4, 1_000)).isTrue();
    assertThat(TreeVerifyGate.verifyPays(1.2, 1, 2_000, 4, 1_000)).isFalse();
    assertThat(TreeVerifyGate.verifyPays(1.3, 4, 2_000, 4, 1_000)).isFalse();
  }

  /**
   * {@code steps} decisions on 4-node trees expected to commit {@code expected} tokens, each kind
   * costing what is given; returns how many verified.
   */
  private static int run(
      TreeVerifyGate g, int steps, double expected, long verifyNanos, long plainNanos) {
    int verified = 0;
    for (int i = 0; i < steps; i++) {
      if (g.verifyNext(expected, 4)) {
        verified++;
        g.verified(verifyNanos, 4);
      } else {
        g.plain(plainNanos);
      }
    }
    return verified;
  }

  @Test
  void itMeasuresAVerifyThenAPlainStepFirst() {
    TreeVerifyGate g = new TreeVerifyGate();
    assertThat(g.verifyNext(1.01, 4)).as("no verify measured yet").isTrue();
    g.verified(2_000, 4);
    assertThat(g.verifyNext(9, 4)).as("no plain step measured yet").isFalse();
    g.plain(1_000);
    assertThat(g.verifyNext(2.5, 4)).isTrue();
    assertThat(g.verifyNext(1.5, 4)).isFalse();
  }

  @Test
  void weakTreesTakePlainStepsAndAVerifyStillProbesTheirCost() {
    int cycle = SpeculationGate.PROBE_EVERY + 1;
    // After the first verify, PROBE_EVERY plain steps and one probing verify, over and over.
    assertThat(run(new TreeVerifyGate(), 1 + 20 * cycle, 1.5, 2_000, 1_000)).isEqualTo(1 + 20);
  }

  @Test
  void strongTreesAreVerifiedAndAPlainStepStillProbesItsCost() {
    int cycle = SpeculationGate.PROBE_EVERY + 1;
    // The first verify, the first plain step, then PROBE_EVERY verifies and one plain step.
    assertThat(run(new TreeVerifyGate(), 1 + 20 * cycle, 2.5, 2_000, 1_000))
        .isEqualTo(1 + 20 * cycle - 20);
  }

  @Test
  void itFollowsACostThatChanges() {
    TreeVerifyGate g = new TreeVerifyGate();
    run(g, 5, 1.8, 2_000, 1_000); // plain steps pay
    assertThat(g.verifyNext(1.8, 4)).isFalse();
    // Plain steps become dear (a busier target): within a few, verifying pays.
    int verified = run(g, 8, 1.8, 2_000, 3_000);
    assertThat(verified).isBetween(5, 7);
    assertThat(g.verifyNext(1.8, 4)).isTrue();
  }

  @Test
  void aDrafterWithoutAnEstimateIsAlwaysVerified() {
    TreeVerifyGate g = new TreeVerifyGate();
    assertThat(run(g, 50, Double.NaN, 5_000, 1_000)).isEqualTo(50);
  }
}
