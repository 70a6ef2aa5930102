package io.draftmesh.engine.speculative;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.speculative.TreeVerifier.Outcome;
import org.junit.jupiter.api.Test;

/** The greedy tree rule and the tree checks. */
class TreeVerifierTest {
  //          node:   0   1   2   3   4
  //        parent:  -1  -1   0   0   1
  private static final int[] TOKENS = {7, 8, 9, 10, 11};
  private static final int[] PARENTS = {-1, -1, 0, 0, 1};

  @Test
  void greedyFollowsTheBranchThatMatchesTheArgmax() {
    // argmax after prefix = 8 (node 1), after node 1 = 11 (node 4), after node 4 = 3: bonus.
    int[] argmax = {8, 0, 11, 0, 0, 3};
    assertThat(TreeVerifier.greedy(TOKENS, PARENTS, argmax))
        .isEqualTo(new Outcome(new int[] {1, 4}, 3, true));
  }

  @Test
  void greedyCorrectsWhereNoChildMatches() {
    // After node 0 the target wants 5, which neither child (9, 10) is.
    int[] argmax = {7, 5, 0, 0, 0, 0};
    assertThat(TreeVerifier.greedy(TOKENS, PARENTS, argmax))
        .isEqualTo(new Outcome(new int[] {0}, 5, false));
    assertThat(TreeVerifier.greedy(TOKENS, PARENTS, new int[] {1, 0, 0, 0, 0, 0}))
        .isEqualTo(new Outcome(new int[0], 1, false));
  }

  @Test
  void greedyTakesTheSecondSiblingWhenTheFirstMisses() {
    int[] argmax = {7, 10, 0, 0, 4, 0};
    assertThat(TreeVerifier.greedy(TOKENS, PARENTS, argmax))
        .isEqualTo(new Outcome(new int[] {0, 3}, 4, true));
  }

  @Test
  void badTreesNameTheField() {
    assertThatThrownBy(() -> TreeVerifier.validate(TOKENS, new int[] {-1, 0, 2, 0, 1}))
        .isInstanceOf(EngineException.class)
        .hasMessageContaining("verify.tree_parents[2]: 2")
        .hasMessageContaining("own parent");
    assertThatThrownBy(() -> TreeVerifier.validate(TOKENS, new int[] {-1, 3, 0, 1, 1}))
        .hasMessageContaining("verify.tree_parents[1]: 3")
        .hasMessageContaining("cycles");
    assertThatThrownBy(() -> TreeVerifier.validate(TOKENS, new int[] {-1, -2, 0, 1, 1}))
        .hasMessageContaining("verify.tree_parents[1]: -2");
    assertThatThrownBy(() -> TreeVerifier.validate(TOKENS, new int[] {-1, 0}))
        .hasMessageContaining("verify.tree_parents: 2 given (expected: 5");
    assertThatThrownBy(() -> TreeVerifier.greedy(TOKENS, PARENTS, new int[3]))
        .hasMessageContaining("verify.target_argmax");
  }
}
