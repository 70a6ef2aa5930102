package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The gate's rule on given costs: measure both kinds, run the cheaper, probe the other. */
class SpeculationGateTest {
  /**
   * Runs {@code steps} decisions at the given costs (ns per token); returns how many speculated.
   */
  private static int run(
      SpeculationGate g, int steps, long roundNanosPerToken, long plainNanosPerToken) {
    int speculated = 0;
    for (int i = 0; i < steps; i++) {
      if (g.speculateNext()) {
        speculated++;
        g.speculated(3 * roundNanosPerToken, 3);
      } else {
        g.plain(8 * plainNanosPerToken, 8);
      }
    }
    return speculated;
  }

  @Test
  void measuresSpeculationFirstThenOneChunk() {
    SpeculationGate g = new SpeculationGate();
    for (int i = 0; i < SpeculationGate.WARMUP_ROUNDS; i++) {
      assertThat(g.speculateNext()).as("warm-up round %d", i).isTrue();
      g.speculated(3_000, 3);
    }
    assertThat(g.speculateNext()).as("the first chunk, to measure plain steps").isFalse();
  }

  @Test
  void runsPlainChunksWhenRoundsCostMorePerTokenAndStillProbesThem() {
    SpeculationGate g = new SpeculationGate();
    int speculated = run(g, 5 + 170, 1_000, 500);
    // 4 warm-up rounds, then plain chunks with one probe round after every PROBE_EVERY of them.
    assertThat(speculated)
        .isEqualTo(SpeculationGate.WARMUP_ROUNDS + 170 / (SpeculationGate.PROBE_EVERY + 1));
  }

  @Test
  void keepsSpeculatingWhenRoundsAreCheaperAndProbesPlainSteps() {
    SpeculationGate g = new SpeculationGate();
    int speculated = run(g, 5 + 170, 500, 1_000);
    assertThat(speculated)
        .isEqualTo(SpeculationGate.WARMUP_ROUNDS + 170 - 170 / (SpeculationGate.PROBE_EVERY + 1));
  }

  @Test
  void aGainBelowTheMarginDoesNotSwitch() {
    SpeculationGate g = new SpeculationGate();
    int speculated = run(g, 5 + 170, 1_000, 980); // plain 2 % cheaper: not worth a switch
    assertThat(speculated)
        .isEqualTo(SpeculationGate.WARMUP_ROUNDS + 170 - 170 / (SpeculationGate.PROBE_EVERY + 1));
  }

  @Test
  void followsACostThatChanges() {
    SpeculationGate g = new SpeculationGate();
    run(g, 5 + 36, 500, 1_000); // speculating
    // Rounds become dear (a longer context, a busier target): the first dear round moves their
    // running cost past the chunks', and from then on only the probes speculate.
    int speculated = run(g, 170, 3_000, 1_000);
    assertThat(speculated)
        .isBetween(
            170 / (SpeculationGate.PROBE_EVERY + 1), 170 / (SpeculationGate.PROBE_EVERY + 1) + 2);
  }
}
