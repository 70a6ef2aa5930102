package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Verified;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * Token Recycling's table outlives the request that filled it, stays with its model, and learns
 * from every node the target scored; its trees are the paper's template.
 */
class TokenRecyclingDrafterTest {
  private static final int VOCAB = 64;

  /** The target's prediction after a token: {@code top} most likely first. */
  private static Position predicted(int... top) {
    return Position.newBuilder().setTokenId(top[0]).setTop(topK(top)).build();
  }

  /** A sparse top-k, most likely first. */
  private static ProbDistribution topK(int... top) {
    ByteBuffer ids = ByteBuffer.allocate(4 * top.length).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer probs = ByteBuffer.allocate(4 * top.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < top.length; i++) {
      ids.putInt(top[i]);
      probs.putFloat(1f / (i + 2));
    }
    return ProbDistribution.newBuilder()
        .setTokenIds(ByteString.copyFrom(ids.array()))
        .setProbs(ByteString.copyFrom(probs.array()))
        .build();
  }

  @Test
  void aLaterRequestOfTheSameModelDraftsFromWhatAnEarlierOneSaw() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    int[] seq = {5, 9, 12};
    // The first request's target decoded after 9 (predicting 12, then 7) and after 12 (3, then 4).
    new TokenRecyclingDrafter(table, true)
        .decoded(
            seq,
            2,
            3,
            Proposed.newBuilder()
                .addPositions(predicted(12, 7))
                .addPositions(predicted(3, 4))
                .build());

    // A new request, its own drafter, the same table: its first round already has a tree.
    DraftTree tree = new TokenRecyclingDrafter(table, true).draft(new int[] {40, 9}, 2, 8, 4);
    assertThat(tree.size()).isEqualTo(4); // 9 -> {12, 7}; 12 -> {3, 4}; 7 was never seen
    assertThat(tree.token(0)).isEqualTo(12);
    assertThat(tree.token(1)).isEqualTo(7);
    assertThat(tree.token(2)).isEqualTo(3);
    assertThat(tree.parent(2)).isEqualTo(0);

    // Candidates that are not this model's tokens are never learned.
    table.learn(40, new int[] {1, VOCAB + 5});
    assertThat(table.candidates(40)).isNull();

    // Another model's table knows nothing of it.
    DraftTree other =
        new TokenRecyclingDrafter(new TokenRecyclingTable(VOCAB), true)
            .draft(new int[] {9}, 1, 8, 4);
    assertThat(other.size()).isZero();
  }

  @Test
  void itLearnsTheTargetsTopKAfterARejectedNode() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    table.learn(9, new int[] {12, 7});
    TokenRecyclingDrafter drafter = new TokenRecyclingDrafter(table, true);
    int[] seq = new int[8];
    seq[0] = 9;
    DraftTree tree = drafter.draft(seq, 1, 8, 4);
    assertThat(tree.tokens()).containsExactly(12, 7);
    // The target accepted 12 (node 0), then corrected to 30; node 1 (token 7) was rejected, and
    // what the target would say after it is in node_top[1].
    seq[1] = 12;
    seq[2] = 30;
    Verified v =
        Verified.newBuilder()
            .setAccepted(1)
            .addAcceptedPath(0)
            .setNextTokenId(30)
            .addPositions(predicted(12, 7))
            .addPositions(predicted(30, 31))
            .addNodeTop(topK(30, 31))
            .addNodeTop(topK(44, 45, 46))
            .build();
    drafter.verified(seq, 1, 3, tree, v);
    assertThat(table.candidates(7)).containsExactly(44, 45, 46);
    assertThat(table.candidates(12)).containsExactly(30, 31);
  }

  @Test
  void theContextThatHappenedWinsOverARejectedNodeWithTheSameToken() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    table.learn(9, new int[] {12, 7});
    table.learn(12, new int[] {7});
    TokenRecyclingDrafter drafter = new TokenRecyclingDrafter(table, true);
    int[] seq = {9, 7, 20, 0};
    DraftTree tree = drafter.draft(seq, 1, 8, 4);
    assertThat(tree.tokens()).containsExactly(12, 7, 7); // 9 -> {12, 7}; 12 -> {7}
    // Token 7 is node 1 (accepted, after 9) and node 2 (rejected, after 12): node 1's context won.
    Verified v =
        Verified.newBuilder()
            .setAccepted(1)
            .addAcceptedPath(1)
            .setNextTokenId(20)
            .addPositions(predicted(7, 12))
            .addPositions(predicted(20, 21))
            .addNodeTop(topK(7))
            .addNodeTop(topK(20, 21))
            .addNodeTop(topK(50, 51))
            .build();
    drafter.verified(seq, 1, 3, tree, v);
    assertThat(table.candidates(7)).containsExactly(20, 21);
  }

  /** A table that knows K distinct candidates after every token. */
  private static TokenRecyclingTable fullTable() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    for (int t = 0; t < VOCAB; t++) {
      int[] next = new int[TokenRecyclingDrafter.K];
      for (int r = 0; r < next.length; r++) {
        next[r] = (t * 7 + r + 1) % VOCAB;
      }
      table.learn(t, next);
    }
    return table;
  }

  @Test
  void aFullBudgetDraftsThePapersTemplate() {
    TokenRecyclingTable table = fullTable();
    int[] seq = {3};
    DraftTree tree = new TokenRecyclingDrafter(table, true).draft(seq, 1, 200, 16);
    assertThat(tree.size()).isEqualTo(80);
    int[] perLevel = new int[7];
    for (int j = 0; j < tree.size(); j++) {
      perLevel[tree.depth(j)]++;
      int after = tree.parent(j) < 0 ? 3 : tree.token(tree.parent(j));
      assertThat(table.candidates(after)).contains(tree.token(j));
    }
    assertThat(perLevel).containsExactly(0, 8, 21, 25, 15, 8, 3);
    // The depth limit cuts the template's deeper levels.
    assertThat(new TokenRecyclingDrafter(table, true).draft(seq, 1, 200, 2).size())
        .isEqualTo(8 + 21);
  }

  @Test
  void aSmallBudgetKeepsTheNodesMostLikelyReachedByTheMeasuredHitRates() {
    TokenRecyclingTable table = fullTable();
    int[] seq = {3};
    // Nothing measured: every rank at 1/2, so the template's first level comes first.
    DraftTree first = new TokenRecyclingDrafter(table, true).draft(seq, 1, 8, 16);
    for (int j = 0; j < 8; j++) {
      assertThat(first.depth(j)).isEqualTo(1);
    }
    // Rank 0 is accepted 9 times in 10, the others never: the budget goes down the rank-0 spine.
    for (int i = 0; i < 100; i++) {
      table.tried(0, i % 10 != 0);
      for (int r = 1; r < TokenRecyclingDrafter.K; r++) {
        table.tried(r, false);
      }
    }
    DraftTree deep = new TokenRecyclingDrafter(table, true).draft(seq, 1, 8, 16);
    assertThat(deep.size()).isEqualTo(8);
    int maxDepth = 0;
    for (int j = 0; j < deep.size(); j++) {
      maxDepth = Math.max(maxDepth, deep.depth(j));
    }
    assertThat(maxDepth).isEqualTo(6); // the template's whole rank-0 spine
  }

  @Test
  void aVerifyCountsTheRanksTriedWhereTheirContextHappened() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    table.learn(9, new int[] {12, 7});
    table.learn(12, new int[] {13, 14});
    table.learn(7, new int[] {15});
    TokenRecyclingDrafter drafter = new TokenRecyclingDrafter(table, true);
    int[] seq = {9, 12, 14, 20};
    DraftTree tree = drafter.draft(seq, 1, 8, 4);
    // 9 -> {12 (rank 0), 7 (rank 1)}; 12 -> {13 (0), 14 (1)}; 7 -> {15 (0)}
    assertThat(tree.tokens()).containsExactly(12, 7, 13, 14, 15);
    Verified v =
        Verified.newBuilder()
            .setAccepted(2)
            .addAcceptedPath(0)
            .addAcceptedPath(3)
            .setNextTokenId(20)
            .build();
    drafter.verified(seq, 1, 4, tree, v);
    // Tried where it happened: 12, 7 (after 9) and 13, 14 (after 12); 15 hung under rejected 7.
    // Rank 0: 12 hit, 13 missed -> (1 + 1) / (2 + 2). Rank 1: 7 missed, 14 hit -> the same.
    assertThat(table.hitRate(0)).isEqualTo(0.5);
    assertThat(table.hitRate(1)).isEqualTo(0.5);
    Verified second =
        Verified.newBuilder().setAccepted(1).addAcceptedPath(0).setNextTokenId(20).build();
    drafter.verified(seq, 1, 3, drafter.draft(seq, 1, 8, 4), second);
    // 12 (rank 0) hit, 7 (rank 1) missed; the children of 12 come after the accepted path ends
    // (after 12 the target emitted the correction), so 13 (rank 0) and 14 (rank 1) missed too.
    assertThat(table.hitRate(0)).isEqualTo(3.0 / 6);
    assertThat(table.hitRate(1)).isEqualTo(2.0 / 6);
  }

  @Test
  void theExpectedAcceptedNodesAreTheSumOfThePathsHitRateProducts() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    table.learn(9, new int[] {12, 7});
    table.learn(12, new int[] {13, 14});
    table.learn(7, new int[] {15});
    TokenRecyclingDrafter drafter = new TokenRecyclingDrafter(table, true);
    int[] seq = {9};
    DraftTree tree = drafter.draft(seq, 1, 8, 4);
    // 12 (rank 0), 7 (1) after 9; 13 (0), 14 (1) after 12; 15 (0) after 7. Nothing measured: every
    // rank at 1/2, so 1/2 + 1/2 + 3 nodes at 1/4.
    assertThat(tree.tokens()).containsExactly(12, 7, 13, 14, 15);
    assertThat(drafter.expectedAccepted(tree)).isCloseTo(1.75, within(1e-12));
    // Rank 0 hits 8 times in 8 (9/10), rank 1 never in 8 (1/10).
    for (int i = 0; i < 8; i++) {
      table.tried(0, true);
      table.tried(1, false);
    }
    DraftTree measured = drafter.draft(seq, 1, 8, 4);
    assertThat(measured.tokens()).containsExactlyInAnyOrder(12, 7, 13, 14, 15); // 13 now before 7
    double expected = 0.9 + 0.1 + 0.9 * 0.9 + 0.9 * 0.1 + 0.1 * 0.9;
    assertThat(drafter.expectedAccepted(measured)).isCloseTo(expected, within(1e-12));
    // A tree it did not draft last: no estimate.
    DraftTree other = new DraftTree();
    other.add(12, -1, null);
    assertThat(drafter.expectedAccepted(other)).isNaN();
  }
}
