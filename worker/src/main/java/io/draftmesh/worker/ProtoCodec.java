package io.draftmesh.worker;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.proto.v1.ProbDistribution;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.BitSet;
import java.util.List;

/**
 * Conversions between the wire messages and the engine's types. Input is validated here, at the
 * edge: every rejection is INVALID_ARGUMENT naming the field, its value and what was expected.
 */
public final class ProtoCodec {
  /**
   * How far a distribution's mass may stray from 1 (float32 sums over a large vocabulary drift).
   */
  static final double MASS_TOLERANCE = 1e-2;

  private ProtoCodec() {}

  // ---- ProbDist ----

  /** Packs a distribution little-endian: dense leaves token_ids empty. */
  public static ProbDistribution toProto(ProbDist d) {
    ProbDistribution.Builder b = ProbDistribution.newBuilder().setProbs(packFloats(d.probs()));
    if (!d.isDense()) {
      b.setTokenIds(packInts(d.ids()));
    }
    return b.build();
  }

  /**
   * Unpacks and validates a distribution over a vocabulary of {@code vocab} tokens.
   *
   * @param field the request field it came from, for error messages
   */
  public static ProbDist fromProto(ProbDistribution p, int vocab, String field) {
    ByteString ids = p.getTokenIds();
    ByteString probs = p.getProbs();
    if (ids.isEmpty()) {
      if (probs.size() != 4L * vocab) {
        throw Statuses.invalid(
            field
                + ".probs: "
                + probs.size()
                + " bytes (expected: "
                + 4L * vocab
                + ", vocab_size float32 values, for a dense distribution with empty token_ids)");
      }
      float[] values = unpackFloats(probs);
      checkMass(values, field);
      return ProbDist.dense(values);
    }
    if (ids.size() % 4 != 0) {
      throw Statuses.invalid(
          field + ".token_ids: " + ids.size() + " bytes (expected: a multiple of 4, int32 ids)");
    }
    int n = ids.size() / 4;
    if (n > vocab) {
      throw Statuses.invalid(
          field + ".token_ids: " + n + " ids (expected: at most vocab_size " + vocab + ")");
    }
    if (probs.size() != 4L * n) {
      throw Statuses.invalid(
          field
              + ".probs: "
              + probs.size()
              + " bytes (expected: "
              + 4L * n
              + ", one float32 per id in token_ids)");
    }
    int[] idValues = unpackInts(ids);
    BitSet seen = new BitSet(vocab);
    for (int i = 0; i < n; i++) {
      int id = idValues[i];
      if (id < 0 || id >= vocab) {
        throw Statuses.invalid(
            field + ".token_ids[" + i + "]: " + id + " (expected: 0.." + (vocab - 1) + ")");
      }
      if (seen.get(id)) {
        throw Statuses.invalid(
            field + ".token_ids[" + i + "]: " + id + " (expected: each id once, but it repeats)");
      }
      seen.set(id);
    }
    float[] values = unpackFloats(probs);
    checkMass(values, field);
    return new ProbDist(vocab, idValues, values);
  }

  private static void checkMass(float[] probs, String field) {
    double sum = 0;
    for (int i = 0; i < probs.length; i++) {
      float v = probs[i];
      if (!(v >= 0f && v <= 1f)) {
        throw Statuses.invalid(field + ".probs[" + i + "]: " + v + " (expected: 0..1)");
      }
      sum += v;
    }
    if (Math.abs(sum - 1.0) > MASS_TOLERANCE) {
      throw Statuses.invalid(
          field + ".probs: sum " + (float) sum + " (expected: 1 ± " + MASS_TOLERANCE + ")");
    }
  }

  static ByteString packFloats(float[] values) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asFloatBuffer().put(values);
    return UnsafeByteOperations.unsafeWrap(buf.array());
  }

  static ByteString packInts(int[] values) {
    ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.asIntBuffer().put(values);
    return UnsafeByteOperations.unsafeWrap(buf.array());
  }

  static float[] unpackFloats(ByteString bytes) {
    float[] out = new float[bytes.size() / 4];
    bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  static int[] unpackInts(ByteString bytes) {
    int[] out = new int[bytes.size() / 4];
    bytes.asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
    return out;
  }

  // ---- the rest ----

  public static io.draftmesh.proto.v1.Position toProto(Position p) {
    io.draftmesh.proto.v1.Position.Builder b =
        io.draftmesh.proto.v1.Position.newBuilder()
            .setTokenId(p.tokenId())
            .setTokenProb(p.tokenProb())
            .setArgmaxTokenId(p.argmaxTokenId())
            .setArgmaxProb(p.argmaxProb())
            .setEntropyBits(p.entropyBits());
    if (p.top() != null) {
      b.setTop(toProto(p.top()));
    }
    if (p.full() != null) {
      b.setFull(toProto(p.full()));
    }
    return b.build();
  }

  /** Sampling params as the engine takes them; the engine validates the ranges on open. */
  public static SamplingParams fromProto(io.draftmesh.proto.v1.SamplingParams p) {
    return new SamplingParams(
        p.getTemperature(), p.getTopK(), p.getTopP(), p.getMinP(), p.getSeed());
  }

  /**
   * Result options, checking top_k_probs and node_top_k against the vocabulary (the engine refuses
   * node_top_k on any op but a tree verify).
   */
  public static ResultOptions fromProto(
      io.draftmesh.proto.v1.ResultOptions o, int vocab, String field) {
    int k = o.getTopKProbs();
    if (k < 0 || k > vocab) {
      throw Statuses.invalid(
          field + ".top_k_probs: " + k + " (expected: 0 for none, or 1.." + vocab + ")");
    }
    int nodeK = o.getNodeTopK();
    if (nodeK < 0 || nodeK > vocab) {
      throw Statuses.invalid(
          field + ".node_top_k: " + nodeK + " (expected: 0 for none, or 1.." + vocab + ")");
    }
    if (k == 0 && !o.getFullDistribution() && nodeK == 0) {
      return ResultOptions.NONE;
    }
    return new ResultOptions(k, o.getFullDistribution(), nodeK);
  }

  static int[] ids(List<Integer> ids) {
    int[] out = new int[ids.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ids.get(i);
    }
    return out;
  }
}
