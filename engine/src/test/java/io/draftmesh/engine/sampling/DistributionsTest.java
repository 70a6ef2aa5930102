package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.draftmesh.engine.runtime.EngineException;
import org.junit.jupiter.api.Test;

class DistributionsTest {

  @Test
  void argmaxTakesLowestIndexOnTies() {
    assertThat(Distributions.argmax(new float[] {1f, 3f, 2f, 3f})).isEqualTo(1);
    assertThat(Distributions.argmax(new float[] {Float.NEGATIVE_INFINITY, -5f})).isEqualTo(1);
    assertThat(Distributions.argmax(new float[] {Float.NaN, -5f, Float.NaN})).isEqualTo(1);
  }

  @Test
  void softmaxIsStableAndNormalised() {
    float[] p = Distributions.softmax(new float[] {1000f, 1001f, -1e30f});
    double e = Math.E;
    assertThat(p[0]).isCloseTo((float) (1 / (1 + e)), within(1e-7f));
    assertThat(p[1]).isCloseTo((float) (e / (1 + e)), within(1e-7f));
    assertThat(p[2]).isZero();

    float[] masked = Distributions.softmax(new float[] {0f, Float.NEGATIVE_INFINITY, 0f});
    assertThat(masked).containsExactly(0.5f, 0f, 0.5f);
  }

  @Test
  void rejectsNaNAndInfiniteMaximum() {
    assertThatThrownBy(() -> Distributions.softmax(new float[] {0f, Float.NaN}))
        .isInstanceOf(EngineException.class)
        .hasMessage("logits[1]: NaN")
        .extracting(e -> ((EngineException) e).kind())
        .isEqualTo(EngineException.Kind.INTERNAL);
    assertThatThrownBy(() -> Distributions.entropyBits(new float[] {Float.NEGATIVE_INFINITY}))
        .isInstanceOf(EngineException.class)
        .hasMessageContaining("maximum is -Infinity");
    assertThatThrownBy(() -> Distributions.maxProb(new float[] {0f, Float.POSITIVE_INFINITY}))
        .isInstanceOf(EngineException.class);
  }

  @Test
  void entropyInBitsOfRawSoftmax() {
    assertThat(Distributions.entropyBits(new float[8])).isCloseTo(3f, within(1e-6f));
    // p = (1/2, 1/4, 1/4): H = 1.5 bits, independent of a common shift of the logits
    float[] logits = {(float) Math.log(2) + 40f, 40f, 40f};
    assertThat(Distributions.entropyBits(logits)).isCloseTo(1.5f, within(1e-5f));
    assertThat(Distributions.entropyBits(new float[] {0f, Float.NEGATIVE_INFINITY})).isZero();
    assertThat(Distributions.entropyBits(new float[] {0f, -200f})).isCloseTo(0f, within(1e-6f));
  }

  @Test
  void maxProbIsTopOfSoftmax() {
    float[] logits = {(float) Math.log(2), 0f, 0f};
    assertThat(Distributions.maxProb(logits)).isCloseTo(0.5f, within(1e-6f));
    assertThat(Distributions.maxProb(new float[] {3f})).isEqualTo(1f);
  }

  @Test
  void topKOfDenseAndSparse() {
    float[] probs = {0.1f, 0.3f, 0.0f, 0.3f, 0.2f, 0.1f};
    ProbDist top = Distributions.topK(probs, 3);
    assertThat(top.ids()).containsExactly(1, 3, 4);
    assertThat(top.probs()).containsExactly(0.3f, 0.3f, 0.2f);
    assertThat(top.vocabSize()).isEqualTo(6);

    // ties at the boundary: lower id first; zero-probability tokens never listed
    assertThat(Distributions.topK(probs, 4).ids()).containsExactly(1, 3, 4, 0);
    assertThat(Distributions.topK(probs, 10).ids()).containsExactly(1, 3, 4, 0, 5);
    assertThat(Distributions.topK(probs, 0).ids()).isEmpty();

    ProbDist sparse = new ProbDist(100, new int[] {42, 7, 99}, new float[] {0.2f, 0.5f, 0.3f});
    ProbDist topSparse = Distributions.topK(sparse, 2);
    assertThat(topSparse.ids()).containsExactly(7, 99);
    assertThat(topSparse.probs()).containsExactly(0.5f, 0.3f);
  }

  /**
   * Vocabulary-sized logits take the Vector API lanes (the tests' JVM has the module): each figure
   * equals a double-precision reference computed here, with masked tokens, ties at the maximum and
   * lengths that leave a scalar tail.
   */
  @Test
  void vocabularySizedLogitsMatchADoubleReference() {
    java.util.Random random = new java.util.Random(7);
    for (int n : new int[] {64, 4096, 4099, 32000}) {
      for (int trial = 0; trial < 4; trial++) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
          x[i] = (float) Math.min(29, random.nextGaussian() * (trial + 1) * 2);
        }
        for (int i = 0; i < n / 10; i++) {
          x[random.nextInt(n)] = Float.NEGATIVE_INFINITY;
        }
        int top = n / 3 + trial;
        x[top] = 30f;
        if (trial == 1) {
          x[n - 1] = 30f; // a tie: the lower index wins
        }
        double max = 30.0;
        double sum = 0;
        double weighted = 0;
        for (float v : x) {
          double e = Math.exp(v - max);
          if (e > 0) {
            sum += e;
            weighted += e * (v - max);
          }
        }
        double entropy = (Math.log(sum) - weighted / sum) / Math.log(2);
        String at = "n " + n + " trial " + trial;

        assertThat(Distributions.argmax(x)).as(at).isEqualTo(top);
        Distributions.RawStats stats = Distributions.rawStats(x);
        assertThat(stats.argmax()).as(at).isEqualTo(top);
        assertThat((double) stats.maxProb()).as(at).isCloseTo(1 / sum, within(1e-6 / sum));
        assertThat((double) stats.entropyBits()).as(at).isCloseTo(entropy, within(1e-5));
        assertThat((double) Distributions.entropyBits(x)).as(at).isCloseTo(entropy, within(1e-5));
        assertThat((double) Distributions.maxProb(x)).as(at).isCloseTo(1 / sum, within(1e-6 / sum));
        float[] p = Distributions.softmax(x);
        double total = 0;
        for (int i = 0; i < n; i++) {
          double expected = Math.exp(x[i] - max) / sum;
          assertThat((double) p[i]).as(at + " p[" + i + "]").isCloseTo(expected, within(1e-6));
          total += p[i];
        }
        assertThat(total).as(at).isCloseTo(1.0, within(1e-5));
      }
    }
  }

  @Test
  void aNaNAnywhereInALongVectorIsNamed() {
    float[] x = new float[4096];
    x[3000] = Float.NaN;
    assertThatThrownBy(() -> Distributions.rawStats(x))
        .isInstanceOf(EngineException.class)
        .hasMessage("logits[3000]: NaN");
    float[] infinite = new float[4096];
    infinite[17] = Float.POSITIVE_INFINITY;
    assertThatThrownBy(() -> Distributions.softmax(infinite))
        .isInstanceOf(EngineException.class)
        .hasMessageContaining("maximum is Infinity");
    assertThat(Distributions.argmax(x)).isZero(); // NaN never wins: the first of the zeros
  }

  /** The few-k pass and the selection give the k largest, ties by lower id, zeros never listed. */
  @Test
  void topKAgreesWithASortOfEveryToken() {
    java.util.Random random = new java.util.Random(11);
    float[] probs = new float[4096];
    for (int i = 0; i < probs.length; i++) {
      // coarse values, so ties are common; a fifth are zero
      probs[i] = random.nextInt(5) == 0 ? 0f : random.nextInt(200) / 1000f;
    }
    Integer[] order = new Integer[probs.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    java.util.Arrays.sort(
        order, (a, b) -> probs[a] != probs[b] ? Float.compare(probs[b], probs[a]) : a - b);
    for (int k : new int[] {1, 2, 8, 63, 64, 65, 200}) {
      ProbDist top = Distributions.topK(probs, k);
      assertThat(top.ids()).as("k " + k).hasSize(k);
      for (int r = 0; r < k; r++) {
        assertThat(top.ids()[r]).as("k " + k + " rank " + r).isEqualTo(order[r]);
        assertThat(top.probs()[r]).isEqualTo(probs[order[r]]);
      }
    }
    float[] few = new float[4096];
    few[9] = 0.5f;
    few[4000] = 0.25f;
    assertThat(Distributions.topK(few, 8).ids()).containsExactly(9, 4000);
  }
}
