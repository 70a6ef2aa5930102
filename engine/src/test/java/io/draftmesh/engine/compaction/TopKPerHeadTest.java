package io.draftmesh.engine.compaction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class TopKPerHeadTest {
  @Test
  void keepsTheHighestAscendingAndBreaksTiesTowardTheLowerPosition() {
    float[] s = {0.1f, 0.5f, 0.5f, 0.9f, 0.5f};
    assertThat(TopKPerHead.top(s, 1)).containsExactly(3);
    // Three tie at 0.5: positions 1 and 2 win over 4.
    assertThat(TopKPerHead.top(s, 3)).containsExactly(1, 2, 3);
    assertThat(TopKPerHead.top(s, 0)).isEmpty();
  }

  @Test
  void eachHeadKeepsItsOwnPositionsPlusTheSharedWindow() {
    float[][][] scores = {{{0, 9, 0, 0}, {0, 0, 0, 9}}};
    KvSelection sel = TopKPerHead.select(scores, 1, 4, 6, 6, 0);
    assertThat(sel.kept()[0][0]).containsExactly(1, 4, 5);
    assertThat(sel.kept()[0][1]).containsExactly(3, 4, 5);
    assertThat(sel.keptPerHead()).isEqualTo(3);
    assertThat(sel.droppedPerHead()).isEqualTo(3);
  }

  @Test
  void rejectsCandidatesInsideTheAlwaysKeptRangeAndAnOversizedK() {
    assertThatThrownBy(() -> TopKPerHead.select(new float[][][] {{{0, 0, 0}}}, 1, 2, 3, 3, 0))
        .hasMessageContaining("candidates: 3");
    assertThatThrownBy(() -> TopKPerHead.top(new float[2], 3)).hasMessageContaining("k: 3");
  }
}
