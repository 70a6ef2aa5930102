package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.protobuf.InvalidProtocolBufferException;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.proto.v1.ProbDistribution;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Arrays;

/**
 * Fuzz target for the wire codec of distributions (a draft's q, a client's full distribution): the
 * first two bytes pick a vocabulary size (1..1024), the rest is a serialized {@code
 * ProbDistribution}. Decoding either refuses with INVALID_ARGUMENT naming the field, or yields a
 * distribution over that vocabulary (ids in range and unique, probabilities in [0, 1] summing to 1
 * within the tolerance) that survives a round trip through the wire unchanged.
 *
 * <p>Under plain JUnit this runs the committed inputs ({@code DistributionCodecFuzzTestInputs/});
 * {@code ./draftmesh fuzz distribution --minutes N} (JAZZER_FUZZ=1) fuzzes.
 */
class DistributionCodecFuzzTest {
  @FuzzTest(maxDuration = "10m")
  void distribution(byte[] bytes) {
    if (bytes.length < 2) {
      return;
    }
    int vocab = 1 + (((bytes[0] & 0xff) | (bytes[1] & 0xff) << 8) % 1024);
    ProbDistribution wire;
    try {
      wire = ProbDistribution.parseFrom(Arrays.copyOfRange(bytes, 2, bytes.length));
    } catch (InvalidProtocolBufferException notAMessage) {
      return; // the gRPC layer refuses those before any codec runs
    }
    ProbDist d;
    try {
      d = ProtoCodec.fromProto(wire, vocab, "draft_distributions[0]");
    } catch (StatusRuntimeException refused) {
      assertThat(refused.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(refused.getStatus().getDescription()).startsWith("draft_distributions[0].");
      return;
    }
    assertThat(d.vocabSize()).isEqualTo(vocab);
    double sum = 0;
    boolean[] seen = new boolean[vocab];
    for (int i = 0; i < d.size(); i++) {
      int id = d.idAt(i);
      assertThat(id).isBetween(0, vocab - 1);
      assertThat(seen[id]).as("id %d twice", id).isFalse();
      seen[id] = true;
      float p = d.probs()[i];
      assertThat(p >= 0f && p <= 1f).as("probability %s in [0, 1]", p).isTrue(); // -0.0 is 0
      sum += p;
    }
    assertThat(Math.abs(sum - 1)).isLessThanOrEqualTo(ProtoCodec.MASS_TOLERANCE);
    assertThat(ProtoCodec.fromProto(ProtoCodec.toProto(d), vocab, "again")).isEqualTo(d);
  }
}
