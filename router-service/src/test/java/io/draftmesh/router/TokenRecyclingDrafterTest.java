package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Verified;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** Token Recycling's table outlives the request that filled it, and stays with its model. */
class TokenRecyclingDrafterTest {
  private static final int VOCAB = 64;

  /** The target's prediction after a token: {@code top} most likely first. */
  private static Position predicted(int... top) {
    ByteBuffer ids = ByteBuffer.allocate(4 * top.length).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer probs = ByteBuffer.allocate(4 * top.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < top.length; i++) {
      ids.putInt(top[i]);
      probs.putFloat(1f / (i + 2));
    }
    return Position.newBuilder()
        .setTokenId(top[0])
        .setTop(
            ProbDistribution.newBuilder()
                .setTokenIds(ByteString.copyFrom(ids.array()))
                .setProbs(ByteString.copyFrom(probs.array())))
        .build();
  }

  @Test
  void aVerifiedTreeTeachesTheTableWhatFollowsEveryNodeRejectedOnesIncluded() {
    TokenRecyclingTable table = new TokenRecyclingTable(VOCAB);
    TokenRecyclingDrafter drafter = new TokenRecyclingDrafter(table, true);
    DraftTree tree = new DraftTree();
    int a = tree.add(20, -1, null);
    tree.add(21, a, null); // the target rejects 20: neither node is on the accepted path
    Verified v =
        Verified.newBuilder()
            .setAccepted(0)
            .setNextTokenId(30)
            .addPositions(predicted(30, 31)) // after the last token, 9
            .addTreeNodePositions(predicted(22, 23)) // after node 20
            .addTreeNodePositions(predicted(24, VOCAB + 5)) // after node 21: not this model's ids
            .build();
    drafter.verified(new int[] {9, 30}, 1, 1, tree, v);
    assertThat(table.candidates(20)).containsExactly(22, 23);
    assertThat(table.candidates(21)).as("ids outside the vocabulary are never learned").isNull();
    assertThat(table.candidates(9)).containsExactly(30, 31);
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

    // Another model's table knows nothing of it.
    DraftTree other =
        new TokenRecyclingDrafter(new TokenRecyclingTable(VOCAB), true)
            .draft(new int[] {9}, 1, 8, 4);
    assertThat(other.size()).isZero();
  }
}
