package io.draftmesh.kvcache.client;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * A compacted KV cache as stored in kvcache-service (layout {@code compacted-v1}, all integers
 * little-endian, strings as u32 length + UTF-8):
 *
 * <pre>
 *   "DMKVCMP1"                                      8 ASCII bytes
 *   key                                             32 bytes ({@link CompressedKeys#key})
 *   str method | u32 n_params | n_params x (str name | i64 value)   names ascending
 *   u32 prefix_tokens | u32 layers | u32 kv_heads | u32 head_dim | u32 kept
 *   positions    (layers, kv_heads, kept) u32, ascending per head, each in [0, prefix_tokens)
 *   kv           per layer: keys then values, each (kv_heads, kept, head_dim) float32
 *   u32 crc32c   of every byte before it
 * </pre>
 *
 * Slot i of head h holds the KV of prompt position {@code positions[l][h][i]}; keys are stored
 * after RoPE at that original position. The entry names its own key, method and parameters, so an
 * entry read back under another key (a service returning the wrong bytes) is refused by {@link
 * #decode}, and its CRC32C makes it self-checking wherever it is kept. Immutable by convention (the
 * arrays are not copied).
 *
 * @param key the key it is stored under
 * @param method the compaction method, e.g. {@code snapkv}
 * @param params the method's effective parameters by name (ascending)
 * @param prefixTokens the compacted prefix's length
 * @param layers layers of the model
 * @param kvHeads KV heads per layer
 * @param headDim floats per key and per value
 * @param positions (layers, kvHeads, kept): the kept prompt positions
 * @param kv the kept slots' keys and values in the layout above
 */
public record CompressedEntry(
    byte[] key,
    String method,
    SortedMap<String, Long> params,
    int prefixTokens,
    int layers,
    int kvHeads,
    int headDim,
    int[][][] positions,
    byte[] kv) {

  /** The layout's name. */
  public static final String LAYOUT = "compacted-v1";

  private static final byte[] MAGIC = "DMKVCMP1".getBytes(StandardCharsets.US_ASCII);

  /** Slots kept per layer and KV head. */
  public int kept() {
    return positions.length == 0 || positions[0].length == 0 ? 0 : positions[0][0].length;
  }

  /** Bytes of {@code kept} slots' keys and values for a model of this shape. */
  public static long kvBytes(int layers, int kvHeads, int headDim, int kept) {
    return 2L * layers * kvHeads * kept * headDim * Float.BYTES;
  }

  /** The entry's bytes; throws {@link IllegalArgumentException} when its parts disagree. */
  public byte[] encode() {
    checkShape();
    byte[] m = method.getBytes(StandardCharsets.UTF_8);
    int size = MAGIC.length + key.length + 4 + m.length + 4;
    for (String name : params.keySet()) {
      size += 4 + name.getBytes(StandardCharsets.UTF_8).length + 8;
    }
    size += 5 * 4 + layers * kvHeads * kept() * 4 + kv.length + 4;
    ByteBuffer out = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    out.put(MAGIC).put(key);
    string(out, method);
    out.putInt(params.size());
    for (Map.Entry<String, Long> p : params.entrySet()) {
      string(out, p.getKey());
      out.putLong(p.getValue());
    }
    out.putInt(prefixTokens).putInt(layers).putInt(kvHeads).putInt(headDim).putInt(kept());
    for (int[][] layer : positions) {
      for (int[] head : layer) {
        for (int p : head) {
          out.putInt(p);
        }
      }
    }
    out.put(kv);
    out.putInt(crc(out.array(), out.position()));
    return out.array();
  }

  /**
   * Parses and checks an entry: magic, CRC32C, sizes and positions; throws {@link
   * IllegalArgumentException} saying what is wrong.
   */
  public static CompressedEntry decode(byte[] bytes) {
    ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    if (bytes.length < MAGIC.length + KvKeys.KEY_BYTES + 4 * 8
        || !Arrays.equals(Arrays.copyOf(bytes, MAGIC.length), MAGIC)) {
      throw new IllegalArgumentException("not a " + LAYOUT + " entry (magic)");
    }
    int stored = in.getInt(bytes.length - 4);
    int actual = crc(bytes, bytes.length - 4);
    if (stored != actual) {
      throw new IllegalArgumentException("entry CRC32C mismatch");
    }
    try {
      in.position(MAGIC.length);
      byte[] key = new byte[KvKeys.KEY_BYTES];
      in.get(key);
      String method = string(in);
      int n = in.getInt();
      if (n < 0 || n > CompressedKeys.MAX_PARAMS) {
        throw new IllegalArgumentException("params: " + n);
      }
      SortedMap<String, Long> params = new TreeMap<>();
      for (int i = 0; i < n; i++) {
        params.put(string(in), in.getLong());
      }
      int prefix = in.getInt();
      int layers = in.getInt();
      int heads = in.getInt();
      int dim = in.getInt();
      int kept = in.getInt();
      if (prefix < 1 || layers < 1 || heads < 1 || dim < 1 || kept < 1 || kept > prefix) {
        throw new IllegalArgumentException(
            "shape: prefix "
                + prefix
                + ", layers "
                + layers
                + ", kv heads "
                + heads
                + ", head dim "
                + dim
                + ", kept "
                + kept);
      }
      long rest = (long) layers * heads * kept * 4 + kvBytes(layers, heads, dim, kept) + 4;
      if (in.remaining() != rest) {
        throw new IllegalArgumentException(
            "size: " + in.remaining() + " bytes after the header (expected: " + rest + ")");
      }
      int[][][] positions = new int[layers][heads][kept];
      for (int[][] layer : positions) {
        for (int[] head : layer) {
          for (int i = 0; i < kept; i++) {
            head[i] = in.getInt();
          }
        }
      }
      byte[] kv = new byte[Math.toIntExact(kvBytes(layers, heads, dim, kept))];
      in.get(kv);
      CompressedEntry e =
          new CompressedEntry(key, method, params, prefix, layers, heads, dim, positions, kv);
      e.checkShape();
      return e;
    } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
      throw new IllegalArgumentException("truncated entry", e);
    }
  }

  /**
   * Throws {@link IllegalArgumentException} unless this entry is the one asked for: stored under
   * {@code key} for a model of this shape, with this method, these parameters and this prefix.
   */
  public void requireMatch(
      byte[] key,
      String method,
      SortedMap<String, Long> params,
      int prefixTokens,
      int layers,
      int kvHeads,
      int headDim) {
    if (!Arrays.equals(key, this.key)) {
      throw new IllegalArgumentException("entry of another key");
    }
    if (!method.equals(this.method) || !params.equals(this.params)) {
      throw new IllegalArgumentException(
          "entry of "
              + this.method
              + " "
              + this.params
              + " (expected: "
              + method
              + " "
              + params
              + ")");
    }
    if (prefixTokens != this.prefixTokens
        || layers != this.layers
        || kvHeads != this.kvHeads
        || headDim != this.headDim) {
      throw new IllegalArgumentException(
          "entry of a "
              + this.prefixTokens
              + "-token prefix, "
              + this.layers
              + "x"
              + this.kvHeads
              + "x"
              + this.headDim
              + " (expected: "
              + prefixTokens
              + ", "
              + layers
              + "x"
              + kvHeads
              + "x"
              + headDim
              + ")");
    }
  }

  private void checkShape() {
    if (key.length != KvKeys.KEY_BYTES) {
      throw new IllegalArgumentException("key: " + key.length + " bytes");
    }
    int kept = kept();
    if (positions.length != layers) {
      throw new IllegalArgumentException("positions: " + positions.length + " layers");
    }
    for (int l = 0; l < layers; l++) {
      if (positions[l].length != kvHeads) {
        throw new IllegalArgumentException(
            "positions layer " + l + ": " + positions[l].length + " kv heads");
      }
      for (int h = 0; h < kvHeads; h++) {
        int[] p = positions[l][h];
        if (p.length != kept) {
          throw new IllegalArgumentException(
              "positions layer "
                  + l
                  + " head "
                  + h
                  + ": "
                  + p.length
                  + " (expected: "
                  + kept
                  + ")");
        }
        for (int i = 0; i < kept; i++) {
          if (p[i] < 0 || p[i] >= prefixTokens || (i > 0 && p[i] <= p[i - 1])) {
            throw new IllegalArgumentException(
                "positions layer "
                    + l
                    + " head "
                    + h
                    + ": "
                    + p[i]
                    + " at "
                    + i
                    + " (expected: ascending, in 0.."
                    + (prefixTokens - 1)
                    + ")");
          }
        }
      }
    }
    if (kv.length != kvBytes(layers, kvHeads, headDim, kept)) {
      throw new IllegalArgumentException(
          "kv: "
              + kv.length
              + " bytes (expected: "
              + kvBytes(layers, kvHeads, headDim, kept)
              + ")");
    }
  }

  private static void string(ByteBuffer out, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.putInt(b.length).put(b);
  }

  private static String string(ByteBuffer in) {
    int n = in.getInt();
    if (n < 0 || n > in.remaining()) {
      throw new IllegalArgumentException("string of " + n + " bytes");
    }
    byte[] b = new byte[n];
    in.get(b);
    return new String(b, StandardCharsets.UTF_8);
  }

  private static int crc(byte[] b, int len) {
    CRC32C c = new CRC32C();
    c.update(b, 0, len);
    return (int) c.getValue();
  }
}
