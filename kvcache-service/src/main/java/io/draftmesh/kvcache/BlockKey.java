package io.draftmesh.kvcache;

import io.draftmesh.kvcache.client.KvKeys;
import java.util.Arrays;

/** A 32-byte block key or fingerprint as a map key: equality by content. Immutable. */
final class BlockKey {
  private final byte[] bytes;
  private final int hash;

  private BlockKey(byte[] bytes) {
    this.bytes = bytes;
    this.hash = Arrays.hashCode(bytes);
  }

  /** Wraps a copy of {@code bytes}, which must be {@link KvKeys#KEY_BYTES} long. */
  static BlockKey of(byte[] bytes) {
    if (bytes.length != KvKeys.KEY_BYTES) {
      throw new IllegalArgumentException(
          "key: " + bytes.length + " bytes (expected: " + KvKeys.KEY_BYTES + ")");
    }
    return new BlockKey(bytes.clone());
  }

  /** A copy of the bytes. */
  byte[] bytes() {
    return bytes.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BlockKey k && Arrays.equals(bytes, k.bytes);
  }

  @Override
  public int hashCode() {
    return hash;
  }

  @Override
  public String toString() {
    return KvKeys.shortHex(bytes);
  }
}
