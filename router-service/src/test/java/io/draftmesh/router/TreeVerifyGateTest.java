package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
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
   * costing what is given; returns the steps that verified.
   */
  private static List<Integer> run(
      TreeVerifyGate g, int steps, double expected, long verifyNanos, long plainNanos) {
    List<Integer> verified = new ArrayList<>();
    for (int i = 0; i < steps; i++) {
      if (g.verifyNext(expected, 4)) {
        verified.add(i);
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
  void weakTreesTakePlainStepsAndVerifiesStillProbeTheirCostEverMoreRarely() {
    int p = SpeculationGate.PROBE_EVERY;
    // The first verify, then probes after p, 2p, 4p, 8p plain steps.
    assertThat(run(new TreeVerifyGate(), 200, 1.5, 2_000, 1_000))
        .containsExactly(0, 1 + p, 2 + 3 * p, 3 + 7 * p, 4 + 15 * p);
  }

  @Test
  void strongTreesAreVerifiedAndPlainStepsStillProbeTheirCostEverMoreRarely() {
    int p = SpeculationGate.PROBE_EVERY;
    List<Integer> verified = run(new TreeVerifyGate(), 200, 2.5, 2_000, 1_000);
    List<Integer> plain = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      if (!verified.contains(i)) {
        plain.add(i);
      }
    }
    // The first plain step, then probes after p, 2p, 4p, 8p verifies.
    assertThat(plain).containsExactly(1, 2 + p, 3 + 3 * p, 4 + 7 * p, 5 + 15 * p);
  }

  @Test
  void onceTheRuleChoosesAKindAgainItsProbesStartAgainFromTheFirstInterval() {
    TreeVerifyGate g = new TreeVerifyGate();
    int p = SpeculationGate.PROBE_EVERY;
    assertThat(run(g, 2 + 3 * p, 1.5, 2_000, 1_000)).containsExactly(0, 1 + p); // next after 4p
    assertThat(run(g, 3, 3.0, 2_000, 1_000)).hasSize(3); // strong trees: the rule verifies
    // Weak again: the next probing verify comes after p plain steps, not 4p or 8p.
    assertThat(run(g, 3 * p, 1.5, 2_000, 1_000)).containsExactly(p);
  }

  @Test
  void itFollowsACostThatChanges() {
    TreeVerifyGate g = new TreeVerifyGate();
    run(g, 5, 1.8, 2_000, 1_000); // plain steps pay
    assertThat(g.verifyNext(1.8, 4)).isFalse();
    // Plain steps become dear (a busier target): within a few, verifying pays.
    assertThat(run(g, 8, 1.8, 2_000, 3_000)).hasSizeBetween(5, 7);
    assertThat(g.verifyNext(1.8, 4)).isTrue();
  }

  @Test
  void aDrafterWithoutAnEstimateIsAlwaysVerified() {
    TreeVerifyGate g = new TreeVerifyGate();
    assertThat(run(g, 50, Double.NaN, 5_000, 1_000)).hasSize(50);
  }
}
