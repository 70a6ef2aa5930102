package io.draftmesh.router;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Checks a draft worker's proposal before any of it reaches the target. The draft is an
 * accelerator: a proposal the target would refuse (ids outside the vocabulary, more tokens than
 * asked, malformed distributions) must end speculation, not the request, and one the target would
 * take but that breaks the acceptance rule (a drafted token its own distribution gives no mass,
 * which makes p/q infinite) must not reach it at all. The checks mirror the worker's codec.
 */
final class DraftProposals {
  /** The mass a distribution may miss or exceed 1 by (the worker's tolerance). */
  static final double MASS_TOLERANCE = 1e-2;

  private DraftProposals() {}

  /**
   * Why {@code p} cannot be verified, or null if it can.
   *
   * @param k the number of tokens asked for
   * @param vocab the target's vocabulary size (the draft's is checked equal at the start)
   * @param distributions whether each token must come with its full distribution (sampling)
   */
  static String problem(Proposed p, int k, int vocab, boolean distributions) {
    int m = p.getTokenIdsCount();
    if (m < 1) {
      return "the draft proposed no tokens (expected: 1.." + k + ")";
    }
    if (m > k) {
      return "the draft proposed " + m + " tokens (expected: 1.." + k + ")";
    }
    for (int i = 0; i < m; i++) {
      int id = p.getTokenIds(i);
      if (id < 0 || id >= vocab) {
        return "the draft's token_ids[" + i + "]: " + id + " (expected: 0.." + (vocab - 1) + ")";
      }
    }
    if (!distributions) {
      return null;
    }
    if (p.getPositionsCount() != m) {
      return "the draft sent "
          + p.getPositionsCount()
          + " positions for "
          + m
          + " tokens (expected: one distribution per token)";
    }
    for (int i = 0; i < m; i++) {
      Position pos = p.getPositions(i);
      if (!pos.hasFull()) {
        return "the draft's positions[" + i + "]: no full distribution (expected: one)";
      }
      String bad = distribution(pos.getFull(), vocab, p.getTokenIds(i));
      if (bad != null) {
        return "the draft's positions[" + i + "].full: " + bad;
      }
    }
    return null;
  }

  /** Why {@code d} is no distribution over {@code vocab} with mass on {@code token}, or null. */
  private static String distribution(ProbDistribution d, int vocab, int token) {
    ByteString ids = d.getTokenIds();
    ByteString probs = d.getProbs();
    int n = ids.isEmpty() ? vocab : ids.size() / 4;
    if (!ids.isEmpty() && (ids.size() % 4 != 0 || n > vocab)) {
      return "token_ids of " + ids.size() + " bytes (expected: at most " + vocab + " int32 ids)";
    }
    if (probs.size() != 4L * n) {
      return "probs of " + probs.size() + " bytes (expected: " + 4L * n + ")";
    }
    ByteBuffer pb = probs.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer ib = ids.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    java.util.BitSet seen = ids.isEmpty() ? null : new java.util.BitSet(vocab);
    double sum = 0;
    float onToken = 0;
    for (int i = 0; i < n; i++) {
      int id = ids.isEmpty() ? i : ib.getInt(4 * i);
      if (seen != null) {
        if (id < 0 || id >= vocab || seen.get(id)) {
          return "token_ids["
              + i
              + "]: "
              + id
              + " (expected: distinct ids in 0.."
              + (vocab - 1)
              + ")";
        }
        seen.set(id);
      }
      float v = pb.getFloat(4 * i);
      if (!(v >= 0f && v <= 1f)) {
        return "probs[" + i + "]: " + v + " (expected: 0..1)";
      }
      sum += v;
      if (id == token) {
        onToken = v;
      }
    }
    if (Math.abs(sum - 1.0) > MASS_TOLERANCE) {
      return "probs sum to " + (float) sum + " (expected: 1 ± " + MASS_TOLERANCE + ")";
    }
    if (!(onToken > 0f)) {
      return "no mass on the drafted token " + token + " (expected: q(token) > 0)";
    }
    return null;
  }
}
