package io.draftmesh.kvkeys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The identity of a full KV block: {@code key(0) = SHA-256(seed || ids)}, {@code key(i) =
 * SHA-256(key(i-1) || ids)}, the block's token ids as u32 little-endian. The seed is a model
 * fingerprint (kvcache.proto specifies it and carries golden vectors), so the key of a block names
 * the whole prefix up to and including it, for one model and KV layout only. Pure, deterministic
 * (no process seed) and thread-safe.
 */
public final class BlockKeys {
  /** Bytes of a seed (fingerprint) and of a block key. */
  public static final int KEY_BYTES = 32;

  private BlockKeys() {}

  /**
   * The key of the block with {@code blockSize} token ids starting at {@code from} in {@code
   * tokens}, whose parent is {@code parent} (the seed for a chain's first block).
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
   * The keys of the first {@code blocks} full blocks of {@code tokens}, in chain order (at most
   * {@code tokens.length / blockSize}; a trailing partial block has none).
   */
  public static List<byte[]> chain(byte[] seed, int blockSize, int[] tokens, int blocks) {
    int n = Math.min(blocks, tokens.length / blockSize);
    List<byte[]> keys = new ArrayList<>(Math.max(0, n));
    byte[] parent = seed;
    for (int i = 0; i < n; i++) {
      parent = blockKey(parent, tokens, i * blockSize, blockSize);
      keys.add(parent);
    }
    return keys;
  }

  /** The keys of every full block of {@code tokens}, in chain order. */
  public static List<byte[]> chain(byte[] seed, int blockSize, int[] tokens) {
    return chain(seed, blockSize, tokens, Integer.MAX_VALUE);
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
    return hex(Arrays.copyOf(key, Math.min(8, key.length)));
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

  /** A reset SHA-256 digest of this thread. */
  public static MessageDigest sha256() {
    MessageDigest d = SHA256.get();
    d.reset();
    return d;
  }
}
