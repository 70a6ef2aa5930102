package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.draftmesh.engine.runtime.EngineException;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Hand-computed examples. Base distribution (0.40, 0.30, 0.15, 0.10, 0.05) unless noted. */
class SamplingPipelineTest {
  private static final float[] BASE = logitsOf(0.40, 0.30, 0.15, 0.10, 0.05);

  private static float[] logitsOf(double... probs) {
    float[] logits = new float[probs.length];
    for (int i = 0; i < probs.length; i++) {
      logits[i] = (float) Math.log(probs[i]) + 3f; // arbitrary shift: softmax ignores it
    }
    return logits;
  }

  private static ProbDist probs(SamplingParams params, float[] logits) {
    return SamplingPipeline.of(params).probs(logits);
  }

  private static SamplingParams params(float temperature, int topK, float topP, float minP) {
    return new SamplingParams(temperature, topK, topP, minP, 0L);
  }

  private static void assertDense(ProbDist dist, double... expected) {
    assertThat(dist.isDense()).isTrue();
    float[] actual = dist.probs();
    assertThat(actual).hasSize(expected.length);
    for (int i = 0; i < expected.length; i++) {
      assertThat((double) actual[i]).as("p[%d]", i).isCloseTo(expected[i], within(1e-6));
    }
  }

  @Test
  void offSettingsGiveThePlainSoftmax() {
    SamplingPipeline pipeline = SamplingPipeline.of(params(1f, 0, 1f, 0f));
    assertThat(pipeline.transforms()).isEmpty();
    assertDense(pipeline.probs(BASE), 0.40, 0.30, 0.15, 0.10, 0.05);
    assertThat(SamplingPipeline.of(params(1f, 0, 0f, 0f)).transforms()).isEmpty();
  }

  @Test
  void temperatureDividesLogits() {
    // T = 0.5 squares the probabilities: (0.16, 0.09, 0.0225, 0.01, 0.0025) / 0.285
    assertDense(
        probs(params(0.5f, 0, 0f, 0f), BASE),
        0.16 / 0.285,
        0.09 / 0.285,
        0.0225 / 0.285,
        0.01 / 0.285,
        0.0025 / 0.285);
    // T = 2 takes square roots
    double[] roots = {
      Math.sqrt(0.4), Math.sqrt(0.3), Math.sqrt(0.15), Math.sqrt(0.1), Math.sqrt(0.05)
    };
    double sum = Arrays.stream(roots).sum();
    assertDense(
        probs(params(2f, 0, 0f, 0f), BASE), Arrays.stream(roots).map(r -> r / sum).toArray());
  }

  @Test
  void topKKeepsExactlyKLowestIdOnTies() {
    assertDense(probs(params(1f, 2, 0f, 0f), BASE), 0.4 / 0.7, 0.3 / 0.7, 0, 0, 0);
    // three tokens tie for second place: ids 1 and 2 are kept with the winner, id 4 is not
    float[] tied = logitsOf(0.1, 0.2, 0.2, 0.3, 0.2);
    assertDense(probs(params(1f, 3, 0f, 0f), tied), 0, 2 / 7.0, 2 / 7.0, 3 / 7.0, 0);
    assertDense(probs(params(1f, 1, 0f, 0f), logitsOf(0.3, 0.3, 0.4)), 0, 0, 1);
    assertDense(probs(params(1f, 1, 0f, 0f), logitsOf(0.4, 0.2, 0.4)), 1, 0, 0);
  }

  @Test
  void topPKeepsSmallestPrefixReachingP() {
    // cumulative 0.40, 0.70, 0.85, 0.95, 1.00
    assertDense(probs(params(1f, 0, 0.75f, 0f), BASE), 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0, 0);
    assertDense(probs(params(1f, 0, 0.5f, 0f), BASE), 0.4 / 0.7, 0.3 / 0.7, 0, 0, 0);
    assertDense(
        probs(params(1f, 0, 0.9f, 0f), BASE), 0.4 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.1 / 0.95, 0);
    // always at least one token
    assertDense(probs(params(1f, 0, 0.01f, 0f), BASE), 1, 0, 0, 0, 0);
  }

  @Test
  void minPKeepsTokensAboveFractionOfTheTop() {
    // min_p 0.3: threshold 0.12 keeps 0.40, 0.30, 0.15
    assertDense(probs(params(1f, 0, 0f, 0.3f), BASE), 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0, 0);
    // min_p 0.6: threshold 0.24
    assertDense(probs(params(1f, 0, 0f, 0.6f), BASE), 0.4 / 0.7, 0.3 / 0.7, 0, 0, 0);
  }

  @Test
  void stepsApplyInOrderTemperatureTopKTopPMinP() {
    // top-k 3 first: (0.4706, 0.3529, 0.1765); top-p 0.8 then stops at 0.8235 -> 2 tokens.
    // (top-p 0.8 on the base first would keep 3.)
    assertDense(probs(params(1f, 3, 0.8f, 0f), BASE), 0.4 / 0.7, 0.3 / 0.7, 0, 0, 0);
    // temperature 0.5 first: (0.5614, 0.3158, ...) -> top-p 0.8 keeps 2. (Base would keep 3.)
    assertDense(probs(params(0.5f, 0, 0.8f, 0f), BASE), 0.16 / 0.25, 0.09 / 0.25, 0, 0, 0);
    // top-p 0.9 keeps 4, then min-p 0.3 (threshold 0.12) keeps 3
    assertDense(probs(params(1f, 0, 0.9f, 0.3f), BASE), 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0, 0);
    assertThat(SamplingPipeline.of(params(0.7f, 3, 0.9f, 0.1f)).transforms())
        .containsExactly(
            new LogitsTransform.Temperature(0.7f),
            new LogitsTransform.TopK(3),
            new LogitsTransform.TopP(0.9f),
            new LogitsTransform.MinP(0.1f));
  }

  @Test
  void greedyIsOneHotOnArgmax() {
    SamplingPipeline greedy = SamplingPipeline.of(SamplingParams.GREEDY);
    assertThat(greedy.isGreedy()).isTrue();
    ProbDist dist = greedy.probs(logitsOf(0.2, 0.4, 0.4));
    assertThat(dist).isEqualTo(ProbDist.oneHot(3, 1));
  }

  @Test
  void sparseWhenFewSurviveMostLikelyFirst() {
    SplittableRandom rng = new SplittableRandom(3);
    float[] logits = new float[1000];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) rng.nextGaussian();
    }
    float[] before = logits.clone();
    ProbDist top10 = probs(params(1f, 10, 0f, 0f), logits);
    assertThat(logits).containsExactly(before); // input untouched
    assertThat(top10.isDense()).isFalse();
    assertThat(top10.ids()).hasSize(10);
    Integer[] order = new Integer[logits.length];
    Arrays.setAll(order, i -> i);
    Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
    assertThat(top10.ids()).containsExactly(Arrays.stream(order, 0, 10).mapToInt(i -> i).toArray());
    double sum = 0;
    for (int i = 0; i < 10; i++) {
      sum += top10.probs()[i];
      if (i > 0) {
        assertThat(top10.probs()[i]).isLessThanOrEqualTo(top10.probs()[i - 1]);
      }
    }
    assertThat(sum).isCloseTo(1.0, within(1e-6));

    ProbDist top300 = probs(params(1f, 300, 0f, 0f), logits);
    assertThat(top300.isDense()).isTrue();
    int support = 0;
    for (float p : top300.toDense()) {
      support += p > 0 ? 1 : 0;
    }
    assertThat(support).isEqualTo(300);
    // the same distribution either way on the common support
    assertThat(top300.prob(order[0]) / top300.prob(order[1]))
        .isCloseTo(top10.prob(order[0]) / top10.prob(order[1]), within(1e-5f));
  }

  @Test
  void largeVocabularyTopKMatchesFullSort() {
    SplittableRandom rng = new SplittableRandom(11);
    float[] logits = new float[150_000];
    for (int i = 0; i < logits.length; i++) {
      logits[i] = (float) Math.floor(rng.nextGaussian() * 20) / 4; // many ties
    }
    ProbDist dist = probs(params(0.8f, 50, 0.95f, 0.05f), logits);
    long[] keys = new long[logits.length];
    for (int i = 0; i < logits.length; i++) {
      keys[i] = Selection.key(logits[i], i);
    }
    Arrays.sort(keys);
    int[] expected = Arrays.stream(keys, 0, dist.ids().length).mapToInt(Selection::id).toArray();
    assertThat(dist.ids()).containsExactly(expected);
    assertThat(dist.ids().length).isBetween(1, 50);
  }

  @Test
  void topPWithoutTopKMatchesAFullSortReference() {
    SplittableRandom rng = new SplittableRandom(5);
    for (int vocab : new int[] {300, 5000, 40_000}) {
      float[] logits = new float[vocab];
      for (int i = 0; i < vocab; i++) {
        logits[i] = (float) (rng.nextGaussian() * 0.5); // flat: the nucleus spans many rounds
      }
      for (float p : new float[] {0.05f, 0.5f, 0.95f}) {
        ProbDist dist = probs(params(1f, 0, p, 0f), logits);
        long[] keys = new long[vocab];
        double max = Float.NEGATIVE_INFINITY;
        double sum = 0;
        for (int i = 0; i < vocab; i++) {
          keys[i] = Selection.key(logits[i], i);
          max = Math.max(max, logits[i]);
        }
        for (float x : logits) {
          sum += Math.exp(x - max);
        }
        Arrays.sort(keys);
        double cumulative = 0;
        int keep = 0;
        while (cumulative < p * sum) {
          cumulative += Math.exp(logits[Selection.id(keys[keep++])] - max);
        }
        int[] expected = Arrays.stream(keys, 0, keep).mapToInt(Selection::id).sorted().toArray();
        int[] actual = IntStream.range(0, vocab).filter(i -> dist.prob(i) > 0).toArray();
        assertThat(actual).as("vocab %d, top_p %s", vocab, p).containsExactly(expected);
      }
    }
  }

  /**
   * A vocabulary-sized dense distribution (the Vector API lanes' path) against a double reference.
   */
  @Test
  void vocabularySizedTemperatureSoftmaxMatchesADoubleReference() {
    SplittableRandom rng = new SplittableRandom(3);
    for (int vocab : new int[] {4096, 32_003}) {
      float[] logits = new float[vocab];
      for (int i = 0; i < vocab; i++) {
        logits[i] = i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) (rng.nextGaussian() * 3);
      }
      ProbDist dist = probs(params(0.7f, 0, 0f, 0f), logits);
      assertThat(dist.isDense()).isTrue();
      double max = Float.NEGATIVE_INFINITY;
      for (float x : logits) {
        max = Math.max(max, x / 0.7f);
      }
      double sum = 0;
      for (float x : logits) {
        sum += Math.exp(x / 0.7f - max);
      }
      double total = 0;
      for (int i = 0; i < vocab; i++) {
        double expected = Math.exp(logits[i] / 0.7f - max) / sum;
        assertThat((double) dist.prob(i))
            .as("vocab %d p[%d]", vocab, i)
            .isCloseTo(expected, within(1e-6));
        total += dist.prob(i);
      }
      assertThat(total).isCloseTo(1.0, within(1e-5));
      assertThat(dist.prob(0)).isZero(); // masked
    }
  }

  @Test
  void maskedTokensNeverSurvive() {
    float[] logits = {0f, Float.NEGATIVE_INFINITY, 1f, Float.NEGATIVE_INFINITY};
    assertDense(
        probs(params(1f, 3, 0f, 0f), logits), 1 / (1 + Math.E), 0, Math.E / (1 + Math.E), 0);
  }

  @Test
  void invalidParamsAndLogitsAreRejected() {
    assertThatThrownBy(() -> SamplingPipeline.of(params(-1f, 0, 0f, 0f)))
        .isInstanceOf(EngineException.class)
        .hasMessageStartingWith("sampling.temperature: -1.0");
    SamplingPipeline pipeline = SamplingPipeline.of(params(1f, 2, 0f, 0f));
    assertThatThrownBy(() -> pipeline.probs(new float[] {0f, Float.NaN, 1f}))
        .isInstanceOf(EngineException.class)
        .hasMessage("logits[1]: NaN");
    assertThatThrownBy(() -> new LogitsTransform.TopP(0f))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("top_p: 0.0");
  }
}
