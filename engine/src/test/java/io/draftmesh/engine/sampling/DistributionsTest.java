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
}
