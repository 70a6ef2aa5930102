package io.draftmesh.engine.speculative;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.draftmesh.engine.sampling.ProbDist;
import org.junit.jupiter.api.Test;

class SpeculationMathTest {

  @Test
  void checkVectorsFromThePapers() {
    assertThat(SpeculationMath.expectedTokensPerRound(0.8, 4)).isCloseTo(3.3616, within(1e-4));
    assertThat(SpeculationMath.idealSpeedup(0.8, 4, 0.1)).isCloseTo(2.4011, within(1e-4));
    assertThat(SpeculationMath.expectedTokensPerRound(0.75, 7)).isCloseTo(3.5995, within(1e-4));
    assertThat(SpeculationMath.idealSpeedup(0.75, 7, 0.05)).isCloseTo(2.6663, within(1e-4));
    assertThat(SpeculationMath.expectedTokensPerRound(0.9, 8)).isCloseTo(6.1258, within(1e-4));
    assertThat(SpeculationMath.idealSpeedup(0.9, 8, 0.3)).isCloseTo(1.8017, within(1e-4));
  }

  @Test
  void edgesOfTheFormula() {
    assertThat(SpeculationMath.expectedTokensPerRound(1.0, 5)).isEqualTo(6.0);
    assertThat(SpeculationMath.expectedTokensPerRound(0.0, 5)).isEqualTo(1.0);
    assertThat(SpeculationMath.expectedTokensPerRound(0.6, 0)).isEqualTo(1.0);
    // agrees with the closed form away from alpha = 1
    double alpha = 0.37;
    assertThat(SpeculationMath.expectedTokensPerRound(alpha, 6))
        .isCloseTo((1 - Math.pow(alpha, 7)) / (1 - alpha), within(1e-12));
    assertThatThrownBy(() -> SpeculationMath.expectedTokensPerRound(1.2, 3))
        .hasMessageStartingWith("alpha: 1.2");
    assertThatThrownBy(() -> SpeculationMath.expectedTokensPerRound(0.5, -1))
        .hasMessageStartingWith("gamma: -1");
  }

  @Test
  void measuredVerifyCostDividesTheIdeal() {
    // 3.3616 / (4 * 0.1 + 2)
    assertThat(SpeculationMath.idealSpeedup(0.8, 4, 0.1, 2.0)).isCloseTo(1.40067, within(1e-5));
    assertThat(SpeculationMath.idealSpeedup(0.8, 4, 0.1, 1.0))
        .isEqualTo(SpeculationMath.idealSpeedup(0.8, 4, 0.1));
    assertThatThrownBy(() -> SpeculationMath.idealSpeedup(0.8, 4, 0.1, 0))
        .hasMessageStartingWith("verifyCostRatio: 0.0");
  }

  @Test
  void alphaIsOneMinusTotalVariation() {
    float[] p = {0.5f, 0.3f, 0.2f, 0f};
    float[] q = {0.2f, 0.3f, 0.1f, 0.4f};
    // min: 0.2 + 0.3 + 0.1 + 0 = 0.6; TV = (0.3 + 0 + 0.1 + 0.4) / 2 = 0.4
    assertThat(SpeculationMath.alphaFromTotalVariation(p, q)).isCloseTo(0.6, within(1e-6));
    assertThat(SpeculationMath.alphaFromTotalVariation(p, p)).isCloseTo(1.0, within(1e-6));
    ProbDist sparseP = new ProbDist(4, new int[] {2, 0, 1}, new float[] {0.2f, 0.5f, 0.3f});
    ProbDist sparseQ = new ProbDist(4, new int[] {3, 2}, new float[] {0.6f, 0.4f});
    assertThat(SpeculationMath.alphaFromTotalVariation(sparseP, ProbDist.dense(q)))
        .isCloseTo(0.6, within(1e-6));
    assertThat(SpeculationMath.alphaFromTotalVariation(sparseP, sparseQ))
        .isCloseTo(0.2, within(1e-6));
  }
}
