package io.draftmesh.router;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.ProbDistribution;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * {@link ProbDistribution}'s packing (little-endian int32 ids and float32 probs; dense when the ids
 * are empty) for router-side drafters that read a worker's distributions and send their own.
 */
final class ProbCodec {
  private ProbCodec() {}

  /** The distribution as a dense array over {@code vocab} tokens. */
  static float[] dense(ProbDistribution d, int vocab) {
    float[] out = new float[vocab];
    ByteBuffer pb = d.getProbs().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    if (d.getTokenIds().isEmpty()) {
      for (int i = 0; i < vocab && 4 * i < d.getProbs().size(); i++) {
        out[i] = pb.getFloat(4 * i);
      }
      return out;
    }
    ByteBuffer ib = d.getTokenIds().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    int n = Math.min(d.getTokenIds().size(), d.getProbs().size()) / 4;
    for (int i = 0; i < n; i++) {
      int id = ib.getInt(4 * i);
      if (id >= 0 && id < vocab) {
        out[id] = pb.getFloat(4 * i);
      }
    }
    return out;
  }

  /** The entries of a sparse distribution (e.g. a position's top-k), most likely first. */
  static int[] ids(ProbDistribution d) {
    ByteBuffer ib = d.getTokenIds().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    int[] ids = new int[d.getTokenIds().size() / 4];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = ib.getInt(4 * i);
    }
    return ids;
  }

  /** The probabilities of a sparse distribution's entries, in the order of {@link #ids}. */
  static float[] probs(ProbDistribution d) {
    ByteBuffer pb = d.getProbs().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] p = new float[d.getProbs().size() / 4];
    for (int i = 0; i < p.length; i++) {
      p[i] = pb.getFloat(4 * i);
    }
    return p;
  }

  /** Its nonzero entries, sparse (a drafter's conditional distributions are mostly zeros). */
  static ProbDistribution sparse(float[] dense) {
    int n = 0;
    for (float v : dense) {
      n += v > 0 ? 1 : 0;
    }
    ByteBuffer ids = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer probs = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < dense.length; i++) {
      if (dense[i] > 0) {
        ids.putInt(i);
        probs.putFloat(dense[i]);
      }
    }
    return ProbDistribution.newBuilder()
        .setTokenIds(ByteString.copyFrom(ids.array()))
        .setProbs(ByteString.copyFrom(probs.array()))
        .build();
  }
}
