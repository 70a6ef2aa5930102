package io.draftmesh.kvcache.client;

import io.draftmesh.kvkeys.BlockKeys;
import io.draftmesh.proto.v1.ModelSpec;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Block identity, as {@code kvcache.proto} specifies it: a model fingerprint (SHA-256 over the
 * canonical bytes of a {@link ModelSpec}) seeds a chain of block keys, {@code key(i) =
 * SHA-256(key(i-1) || block i's token ids as u32 little-endian)}, over full blocks only (the chain
 * itself is {@link BlockKeys}, shared with the engine's prefix cache). Pure and deterministic, so
 * the service, workers and any other client compute the same keys. Thread-safe.
 */
public final class KvKeys {
  /** Bytes of a fingerprint and of a block key. */
  public static final int KEY_BYTES = BlockKeys.KEY_BYTES;

  private static final byte[] FINGERPRINT_DOMAIN =
      "draftmesh.kv.fingerprint.v1".getBytes(StandardCharsets.US_ASCII);

  private KvKeys() {}

  /**
   * The fingerprint of {@code spec}; throws {@link IllegalArgumentException} naming the field when
   * the spec is not valid (see {@link #validate}).
   */
  public static byte[] fingerprint(ModelSpec spec) {
    validate(spec);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(FINGERPRINT_DOMAIN);
    string(out, spec.getArchitecture());
    bytes(out, spec.getWeightsDigest().toByteArray());
    string(out, spec.getDtype());
    u32(out, spec.getNumLayers());
    u32(out, spec.getNumKvHeads());
    u32(out, spec.getHeadDim());
    string(out, spec.getKvLayout());
    u32(out, spec.getBlockSize());
    return BlockKeys.sha256().digest(out.toByteArray());
  }

  /**
   * Throws {@link IllegalArgumentException} naming the first field of {@code spec} out of range.
   */
  public static void validate(ModelSpec spec) {
    nonBlank("architecture", spec.getArchitecture());
    int digest = spec.getWeightsDigest().size();
    if (digest < 1 || digest > 64) {
      throw new IllegalArgumentException("weights_digest: " + digest + " bytes (expected: 1..64)");
    }
    nonBlank("dtype", spec.getDtype());
    positive("num_layers", spec.getNumLayers());
    positive("num_kv_heads", spec.getNumKvHeads());
    positive("head_dim", spec.getHeadDim());
    nonBlank("kv_layout", spec.getKvLayout());
    positive("block_size", spec.getBlockSize());
  }

  /**
   * The key of the block with {@code blockSize} token ids starting at {@code from} in {@code
   * tokens}, whose parent is {@code parent} (the fingerprint for a chain's first block).
   */
  public static byte[] blockKey(byte[] parent, int[] tokens, int from, int blockSize) {
    return BlockKeys.blockKey(parent, tokens, from, blockSize);
  }

  /**
   * The keys of every full block of {@code tokens}, in chain order; a trailing partial block has
   * none.
   */
  public static List<byte[]> chain(byte[] fingerprint, int blockSize, int[] tokens) {
    return BlockKeys.chain(fingerprint, blockSize, tokens);
  }

  /** Lower-case hex, for logs and messages. */
  public static String hex(byte[] bytes) {
    return BlockKeys.hex(bytes);
  }

  /** The first 8 bytes in hex: enough to tell blocks apart in a log line. */
  public static String shortHex(byte[] key) {
    return BlockKeys.shortHex(key);
  }

  private static void string(ByteArrayOutputStream out, String s) {
    bytes(out, s.getBytes(StandardCharsets.UTF_8));
  }

  private static void bytes(ByteArrayOutputStream out, byte[] b) {
    u32(out, b.length);
    out.writeBytes(b);
  }

  private static void u32(ByteArrayOutputStream out, int v) {
    out.write(v);
    out.write(v >>> 8);
    out.write(v >>> 16);
    out.write(v >>> 24);
  }

  private static void nonBlank(String field, String value) {
    if (value.isBlank()) {
      throw new IllegalArgumentException(field + ": empty (expected: a non-empty string)");
    }
  }

  private static void positive(String field, int value) {
    if (value < 1) {
      throw new IllegalArgumentException(field + ": " + value + " (expected: >= 1)");
    }
  }
}
