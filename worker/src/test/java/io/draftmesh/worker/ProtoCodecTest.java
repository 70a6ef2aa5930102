package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.proto.v1.ProbDistribution;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.Test;

class ProtoCodecTest {
  @Test
  void denseRoundTripIsLittleEndianFloat32() {
    ProbDist d = ProbDist.dense(new float[] {0.25f, 0.5f, 0.25f});
    ProbDistribution p = ProtoCodec.toProto(d);
    assertThat(p.getTokenIds().isEmpty()).isTrue();
    assertThat(p.getProbs().size()).isEqualTo(12);
    // 0.25f = 0x3E800000, little-endian
    assertThat(p.getProbs().substring(0, 4).toByteArray()).containsExactly(0x00, 0x00, 0x80, 0x3E);
    assertThat(ProtoCodec.fromProto(p, 3, "d")).isEqualTo(d);
  }

  @Test
  void sparseRoundTrip() {
    ProbDist d = new ProbDist(10, new int[] {7, 2}, new float[] {0.75f, 0.25f});
    ProbDistribution p = ProtoCodec.toProto(d);
    assertThat(p.getTokenIds().toByteArray()).containsExactly(7, 0, 0, 0, 2, 0, 0, 0);
    ProbDist back = ProtoCodec.fromProto(p, 10, "d");
    assertThat(back).isEqualTo(d);
    assertThat(back.prob(7)).isEqualTo(0.75f);
  }

  @Test
  void rejectsMalformedBytesNamingTheField() {
    assertInvalid(
        ProbDistribution.newBuilder().setProbs(ByteString.copyFrom(new byte[8])).build(),
        3,
        "q.probs: 8 bytes (expected: 12");
    assertInvalid(
        ProbDistribution.newBuilder()
            .setTokenIds(ByteString.copyFrom(new byte[5]))
            .setProbs(ByteString.copyFrom(new byte[4]))
            .build(),
        3,
        "q.token_ids: 5 bytes (expected: a multiple of 4");
    assertInvalid(
        ProbDistribution.newBuilder()
            .setTokenIds(ProtoCodec.packInts(new int[] {1}))
            .setProbs(ProtoCodec.packFloats(new float[] {0.5f, 0.5f}))
            .build(),
        3,
        "q.probs: 8 bytes (expected: 4, one float32 per id");
    assertInvalid(
        ProbDistribution.newBuilder()
            .setTokenIds(ProtoCodec.packInts(new int[] {1, 1}))
            .setProbs(ProtoCodec.packFloats(new float[] {0.5f, 0.5f}))
            .build(),
        3,
        "q.token_ids[1]: 1 (expected: each id once");
    assertInvalid(
        ProtoCodec.toProto(ProbDist.dense(new float[] {0.5f, Float.NaN, 0.5f})),
        3,
        "q.probs[1]: NaN");
    assertInvalid(
        ProtoCodec.toProto(ProbDist.dense(new float[] {0.5f, 0.1f, 0.1f})), 3, "q.probs: sum 0.7");
  }

  private static void assertInvalid(ProbDistribution p, int vocab, String message) {
    assertThatThrownBy(() -> ProtoCodec.fromProto(p, vocab, "q"))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).startsWith(message);
            });
  }
}
