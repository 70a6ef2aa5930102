package io.draftmesh.engine.compaction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class SpecPcPolicyTest {

  @Test
  void windowRowsAreWeightedFromZeroToOneAndLookaheadStepsCountUnweighted() {
    // 2 layers, 2 heads, window 3 over 10 keys. Row 0 has weight 0, row 1 0.5, row 2 1.
    float[][] a = Attention.zeros(2, 2, 3, 10);
    Attention.set(a, 2, 3, 10, 1, 0, 0, 2, 0.9f); // weight 0: contributes nothing
    Attention.set(a, 2, 3, 10, 1, 1, 1, 3, 0.8f); // weight 0.5: 0.4
    Attention.set(a, 2, 3, 10, 0, 0, 2, 4, 0.3f); // weight 1: 0.3 (layer 0)
    float[][] step = Attention.zeros(2, 2, 1, 11);
    Attention.set(step, 2, 1, 11, 1, 1, 0, 5, 0.35f);
    Attention.set(step, 2, 1, 11, 1, 1, 0, 10, 0.6f); // a generated key: cut off
    SpecPcPolicy p = new SpecPcPolicy(3, 1, 1, 0);
    float[] s =
        p.scores(
            new CapturedAttention(2, 2, 3, 10, a),
            List.of(new CapturedAttention(2, 2, 1, 11, step)));
    assertThat(s).hasSize(10);
    assertThat(s[2]).isZero();
    assertThat(s[3]).isEqualTo(0.4f);
    assertThat(s[4]).isEqualTo(0.3f);
    assertThat(s[5]).isEqualTo(0.35f);
    // Starting layer 1 ignores layer 0's key 4.
    float[] fromLayer1 =
        new SpecPcPolicy(3, 1, 1, 1).scores(new CapturedAttention(2, 2, 3, 10, a), List.of());
    assertThat(fromLayer1[4]).isZero();
    assertThat(fromLayer1[3]).isEqualTo(0.4f);
  }

  @Test
  void aStartingLayerTheDraftLacksMeansAllLayers() {
    assertThat(new SpecPcPolicy().effectiveStartingLayer(3)).isZero();
    assertThat(new SpecPcPolicy().effectiveStartingLayer(16)).isEqualTo(8);
  }

  @Test
  void selectionKeepsTheWindowThePicksAndTheirNearestNeighboursInImportanceOrder() {
    float[] s = new float[30];
    s[10] = 0.9f;
    s[20] = 0.5f;
    s[3] = 0.4f;
    // window 4 (26..29), kernel 1, 3 neighbours (offsets 0, -1, +1), budget 10:
    // window 4 + pick 10 with 9, 11 + pick 20 with 19, 21 = 10.
    SpecPcPolicy p = new SpecPcPolicy(4, 1, 3, 0);
    assertThat(p.select(s, 10)).containsExactly(9, 10, 11, 19, 20, 21, 26, 27, 28, 29);
    // budget 8: the window comes first, so the cut falls inside pick 20's neighbourhood, nearest
    // first: 20 stays, 19 and 21 go.
    assertThat(p.select(s, 8)).containsExactly(9, 10, 11, 20, 26, 27, 28, 29);
  }

  @Test
  void neighbourOffsetsAreNearestFirstLeftBeforeRight() {
    assertThat(SpecPcPolicy.neighborOffsets(1)).containsExactly(0);
    assertThat(SpecPcPolicy.neighborOffsets(3)).containsExactly(0, -1, 1);
    // even: -(n-1)/2 = -1 .. n-1-(n-1)/2 = 2
    assertThat(SpecPcPolicy.neighborOffsets(4)).containsExactly(0, -1, 1, 2);
  }

  @Test
  void neighboursAreClampedToThePromptAndPoolingSpreadsAPeak() {
    float[] s = new float[20];
    s[0] = 1f;
    SpecPcPolicy p = new SpecPcPolicy(2, 1, 5, 0);
    // pick 0 with clamped neighbours: 0, (−1→0), 1, (−2→0), 2, then the next picks by score.
    int[] kept = p.select(s, 5);
    assertThat(kept).containsExactly(0, 1, 2, 18, 19);
    // kernel 5: pooled 1.0 spreads to 0..2; ties go lowest-first, so picks stay at the start.
    assertThat(new SpecPcPolicy(2, 5, 1, 0).select(s, 5)).containsExactly(0, 1, 2, 18, 19);
  }

  @Test
  void aBudgetOfAtLeastThePromptKeepsEveryTokenAndABudgetBelowTheWindowIsRejected() {
    SpecPcPolicy p = new SpecPcPolicy(4, 3, 3, 0);
    assertThat(p.select(new float[12], 12)).containsExactly(IntStream.range(0, 12).toArray());
    assertThat(p.select(new float[12], 100)).hasSize(12);
    assertThatThrownBy(() -> p.select(new float[12], 3)).hasMessageContaining("budget: 3");
  }

  @Test
  void keptCountIsExactlyTheBudgetOnRandomScores() {
    java.util.Random r = new java.util.Random(5);
    float[] s = new float[500];
    for (int i = 0; i < s.length; i++) {
      s[i] = r.nextFloat();
    }
    int[] kept = new SpecPcPolicy().select(s, 128);
    assertThat(kept).hasSize(128).isSorted().doesNotHaveDuplicates();
    assertThat(kept).contains(IntStream.range(436, 500).toArray());
  }
}
