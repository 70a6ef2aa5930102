package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.runtime.EngineException;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

class TokenSamplerTest {

  @Test
  void inverseCdfWalksTheEntries() {
    ProbDist dense = ProbDist.dense(new float[] {0.25f, 0f, 0.5f, 0.25f});
    assertThat(TokenSampler.sample(dense, 0.0)).isEqualTo(0);
    assertThat(TokenSampler.sample(dense, 0.2499)).isEqualTo(0);
    assertThat(TokenSampler.sample(dense, 0.25)).isEqualTo(2); // never the zero-probability token
    assertThat(TokenSampler.sample(dense, 0.7499)).isEqualTo(2);
    assertThat(TokenSampler.sample(dense, 0.75)).isEqualTo(3);
    assertThat(TokenSampler.sample(dense, Math.nextDown(1.0))).isEqualTo(3);

    ProbDist sparse = new ProbDist(1000, new int[] {500, 7}, new float[] {0.75f, 0.25f});
    assertThat(TokenSampler.sample(sparse, 0.74)).isEqualTo(500);
    assertThat(TokenSampler.sample(sparse, 0.76)).isEqualTo(7);
  }

  @Test
  void roundOffPastTheEndGivesLastPositiveToken() {
    // unnormalised mass is scaled by its total; trailing zeros are skipped
    ProbDist dist = ProbDist.dense(new float[] {0.1f, 0.1f, 0f});
    assertThat(TokenSampler.sample(dist, 0.4)).isEqualTo(0);
    assertThat(TokenSampler.sample(dist, Math.nextDown(1.0))).isEqualTo(1);
    assertThat(TokenSampler.sample(dist, 1.0)).isEqualTo(1); // out of contract, still safe
  }

  @Test
  void noMassIsAnInternalError() {
    assertThatThrownBy(() -> TokenSampler.sample(ProbDist.dense(new float[3]), 0.5))
        .isInstanceOf(EngineException.class)
        .extracting(e -> ((EngineException) e).kind())
        .isEqualTo(EngineException.Kind.INTERNAL);
  }

  @Test
  void empiricalFrequenciesMatchTheDistribution() {
    double[] expected = {0.05, 0.4, 0.0, 0.25, 0.2, 0.1};
    float[] probs = new float[expected.length];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = (float) expected[i];
    }
    ProbDist dist = ProbDist.dense(probs);
    RandomGenerator rng = TokenSampler.seeded(20240601L);
    long[] counts = new long[probs.length];
    for (int i = 0; i < 60_000; i++) {
      counts[TokenSampler.sample(dist, rng)]++;
    }
    ChiSquare.Result result = ChiSquare.test(counts, expected);
    assertThat(result.df()).isEqualTo(4);
    assertThat(result.pValue()).as("%s", result).isGreaterThan(1e-3);

    // power: the same counts are far from a slightly different distribution
    double[] shifted = {0.07, 0.38, 0.0, 0.25, 0.2, 0.1};
    assertThat(ChiSquare.test(counts, shifted).pValue()).isLessThan(1e-3);
  }

  @Test
  void seededStreamsAreReproducible() {
    ProbDist dist = ProbDist.dense(new float[] {0.1f, 0.2f, 0.3f, 0.4f});
    RandomGenerator a = TokenSampler.seeded(99);
    RandomGenerator b = TokenSampler.seeded(99);
    RandomGenerator c = TokenSampler.seeded(100);
    int[] fromA = new int[200];
    int[] fromB = new int[200];
    int[] fromC = new int[200];
    for (int i = 0; i < 200; i++) {
      fromA[i] = TokenSampler.sample(dist, a);
      fromB[i] = TokenSampler.sample(dist, b);
      fromC[i] = TokenSampler.sample(dist, c);
    }
    assertThat(fromA).containsExactly(fromB);
    assertThat(fromA).isNotEqualTo(fromC);
  }
}
