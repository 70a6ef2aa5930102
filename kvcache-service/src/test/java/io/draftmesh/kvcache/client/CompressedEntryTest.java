package io.draftmesh.kvcache.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.SortedMap;
import org.junit.jupiter.api.Test;

class CompressedEntryTest {
  static final int LAYERS = 2;
  static final int HEADS = 2;
  static final int DIM = 8;
  static final int PREFIX = 20;
  static final int KEPT = 6;

  /** An entry whose heads keep different positions; KV bytes from {@code seed}. */
  static CompressedEntry entry(byte[] key, int seed) {
    int[][][] positions = new int[LAYERS][HEADS][];
    Random r = new Random(seed);
    for (int l = 0; l < LAYERS; l++) {
      for (int h = 0; h < HEADS; h++) {
        positions[l][h] = r.ints(0, PREFIX).distinct().limit(KEPT).sorted().toArray();
      }
    }
    byte[] kv = new byte[(int) CompressedEntry.kvBytes(LAYERS, HEADS, DIM, KEPT)];
    r.nextBytes(kv);
    return new CompressedEntry(
        key,
        "snapkv",
        CompressedKeysTest.params("budget", KEPT, "kernel", 7, "window", 4),
        PREFIX,
        LAYERS,
        HEADS,
        DIM,
        positions,
        kv);
  }

  static byte[] key() {
    byte[] k = new byte[32];
    new Random(7).nextBytes(k);
    return k;
  }

  @Test
  void roundTripsEveryFieldAndSaysItsSize() {
    CompressedEntry e = entry(key(), 1);
    byte[] bytes = e.encode();
    CompressedEntry back = CompressedEntry.decode(bytes);
    assertThat(back.key()).isEqualTo(e.key());
    assertThat(back.method()).isEqualTo("snapkv");
    assertThat(back.params()).isEqualTo(e.params());
    assertThat(back.prefixTokens()).isEqualTo(PREFIX);
    assertThat(back.kept()).isEqualTo(KEPT);
    assertThat(back.positions()).isDeepEqualTo(e.positions());
    assertThat(back.kv()).isEqualTo(e.kv());
    assertThat(bytes).startsWith("DMKVCMP1".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    // magic, key, method, 3 params, 5 shape ints, positions, kv, crc
    int header = 8 + 32 + (4 + 6) + 4 + (4 + 6 + 8) + (4 + 6 + 8) + (4 + 6 + 8) + 5 * 4;
    assertThat(bytes).hasSize(header + LAYERS * HEADS * KEPT * 4 + (int) e.kv().length + 4);
    // Little-endian, in the documented order: prefix tokens right after the parameters.
    assertThat(ByteBuffer.wrap(bytes, header - 20, 4).order(ByteOrder.LITTLE_ENDIAN).getInt())
        .isEqualTo(PREFIX);
    back.requireMatch(key(), "snapkv", e.params(), PREFIX, LAYERS, HEADS, DIM); // does not throw
  }

  @Test
  void everyFlippedByteIsCaught() {
    byte[] bytes = entry(key(), 2).encode();
    Random r = new Random(3);
    for (int trial = 0; trial < 200; trial++) {
      byte[] bad = bytes.clone();
      int at = r.nextInt(bad.length);
      bad[at] ^= (byte) (1 << r.nextInt(8));
      assertThatThrownBy(() -> CompressedEntry.decode(bad))
          .as("flipped byte %d", at)
          .isInstanceOf(IllegalArgumentException.class);
    }
    assertThatThrownBy(() -> CompressedEntry.decode(java.util.Arrays.copyOf(bytes, 100)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> CompressedEntry.decode(new byte[0]))
        .hasMessageContaining("not a compacted-v1 entry");
  }

  @Test
  void anEntryOfAnotherKeyMethodParametersPrefixOrShapeIsRefused() {
    CompressedEntry e = CompressedEntry.decode(entry(key(), 4).encode());
    SortedMap<String, Long> p = e.params();
    byte[] other = key();
    other[0] ^= 1;
    assertThatThrownBy(() -> e.requireMatch(other, "snapkv", p, PREFIX, LAYERS, HEADS, DIM))
        .hasMessage("entry of another key");
    assertThatThrownBy(() -> e.requireMatch(key(), "streaming_llm", p, PREFIX, LAYERS, HEADS, DIM))
        .hasMessageStartingWith("entry of snapkv");
    SortedMap<String, Long> budget = new java.util.TreeMap<>(p);
    budget.put("budget", 7L);
    assertThatThrownBy(() -> e.requireMatch(key(), "snapkv", budget, PREFIX, LAYERS, HEADS, DIM))
        .hasMessageStartingWith("entry of snapkv");
    assertThatThrownBy(() -> e.requireMatch(key(), "snapkv", p, PREFIX + 1, LAYERS, HEADS, DIM))
        .hasMessageStartingWith("entry of a 20-token prefix");
    assertThatThrownBy(() -> e.requireMatch(key(), "snapkv", p, PREFIX, LAYERS, HEADS + 1, DIM))
        .hasMessageContaining("(expected: 20, 2x3x8)");
  }

  @Test
  void positionsMustAscendWithinThePrefixAndSizesAgree() {
    CompressedEntry e = entry(key(), 5);
    int[][][] unordered = {
      {e.positions()[0][0], e.positions()[0][1]}, {e.positions()[1][0], {5, 4, 6, 7, 8, 9}}
    };
    assertThatThrownBy(
            () ->
                new CompressedEntry(
                        key(), "snapkv", e.params(), PREFIX, LAYERS, HEADS, DIM, unordered, e.kv())
                    .encode())
        .hasMessageContaining("positions layer 1 head 1: 4 at 1 (expected: ascending, in 0..19)");
    int[][][] outside = {
      {e.positions()[0][0], e.positions()[0][1]}, {e.positions()[1][0], {1, 2, 3, 4, 5, 20}}
    };
    assertThatThrownBy(
            () ->
                new CompressedEntry(
                        key(), "snapkv", e.params(), PREFIX, LAYERS, HEADS, DIM, outside, e.kv())
                    .encode())
        .hasMessageContaining("20 at 5");
    assertThatThrownBy(
            () ->
                new CompressedEntry(
                        key(),
                        "snapkv",
                        e.params(),
                        PREFIX,
                        LAYERS,
                        HEADS,
                        DIM,
                        e.positions(),
                        new byte[10])
                    .encode())
        .hasMessageStartingWith("kv: 10 bytes");
  }
}
