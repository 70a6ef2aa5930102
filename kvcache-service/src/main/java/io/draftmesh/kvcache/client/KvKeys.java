package io.draftmesh.kvcache.client;

import io.draftmesh.proto.v1.ModelSpec;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;

/**
 * Block identity, as {@code kvcache.proto} specifies it: a model fingerprint (SHA-256 over the
 * canonical bytes of a {@link ModelSpec}) seeds a chain of block keys, {@code key(i) =
 * SHA-256(key(i-1) || block i's token ids as u32 little-endian)}, over full blocks only. Pure and
 * deterministic, so the service, workers and any other client compute the same keys. Thread-safe.
 */
public final class KvKeys {
  /** Bytes of a fingerprint and of a block key. */
  public static final int KEY_BYTES = 32;

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
    return sha256().digest(out.toByteArray());
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
    if (parent.length != KEY_BYTES) {
      throw new IllegalArgumentException(
          "parent: " + parent.length + " bytes (expected: " + KEY_BYTES + ")");
    }
    if (from < 0 || blockSize < 1 || from + blockSize > tokens.length) {
      throw new IllegalArgumentException(
          "block ["
              + from
              + ", "
              + (from + blockSize)
              + "): outside the "
              + tokens.length
              + " token ids (expected: a full block)");
    }
    ByteBuffer b = ByteBuffer.allocate(KEY_BYTES + 4 * blockSize).order(ByteOrder.LITTLE_ENDIAN);
    b.put(parent);
    for (int i = from; i < from + blockSize; i++) {
      if (tokens[i] < 0) {
        throw new IllegalArgumentException(
            "token_ids[" + i + "]: " + tokens[i] + " (expected: >= 0)");
      }
      b.putInt(tokens[i]);
    }
    return sha256().digest(b.array());
  }

  /**
   * The keys of every full block of {@code tokens}, in chain order; a trailing partial block has
   * none.
   */
  public static List<byte[]> chain(byte[] fingerprint, int blockSize, int[] tokens) {
    int blocks = tokens.length / blockSize;
    List<byte[]> keys = new ArrayList<>(blocks);
    byte[] parent = fingerprint;
    for (int i = 0; i < blocks; i++) {
      parent = blockKey(parent, tokens, i * blockSize, blockSize);
      keys.add(parent);
    }
    return keys;
  }

  /** Lower-case hex, for logs and messages. */
  public static String hex(byte[] bytes) {
    StringBuilder sb = new StringBuilder(bytes.length * 2);
    for (byte x : bytes) {
      sb.append(Character.forDigit((x >> 4) & 0xF, 16)).append(Character.forDigit(x & 0xF, 16));
    }
    return sb.toString();
  }

  /** The first 8 bytes in hex: enough to tell blocks apart in a log line. */
  public static String shortHex(byte[] key) {
    return hex(java.util.Arrays.copyOf(key, Math.min(8, key.length)));
  }

  // One digest per thread: MessageDigest.getInstance looks the provider up each time, which cost
  // more than hashing a 16-token block. digest() resets it for the next use.
  private static final ThreadLocal<MessageDigest> SHA256 =
      ThreadLocal.withInitial(
          () -> {
            try {
              return MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
              throw new IllegalStateException("every JDK has SHA-256", e);
            }
          });

  private static MessageDigest sha256() {
    MessageDigest d = SHA256.get();
    d.reset();
    return d;
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
