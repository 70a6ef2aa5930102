package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
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
}
