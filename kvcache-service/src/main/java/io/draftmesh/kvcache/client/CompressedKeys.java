package io.draftmesh.kvcache.client;

import io.draftmesh.kvkeys.BlockKeys;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

/**
 * The identity of a compacted KV cache, as {@code kvcache.proto} specifies it: SHA-256 over a
 * domain string, the model fingerprint, the compacted prefix's token ids, the compaction method and
 * its effective parameters by name. A lookup only matches the same model, prefix, method and
 * parameters; the domain keeps these keys apart from block keys. Pure and deterministic.
 * Thread-safe.
 *
 * <p>Only query-agnostic methods may be stored: their selection is a function of the compacted
 * prefix alone (StreamingLLM keeps sinks and the recent window; SnapKV's observation window is the
 * prefix's own last tokens; H2O sums the attention of the prefix's own queries, all of them, over
 * the prefix, and a later request's tokens come after the compaction). SpecKV and SpecPC choose by
 * the draft's answer to the request's query, so their caches would be wrong for any other request.
 */
public final class CompressedKeys {
  /** Methods whose compacted caches may be stored, by the names requests use. */
  public static final List<String> QUERY_AGNOSTIC = List.of("h2o", "snapkv", "streaming_llm");

  /** The most parameters a method may name. */
  public static final int MAX_PARAMS = 16;

  private static final byte[] DOMAIN =
      "draftmesh.kv.compressed.v1".getBytes(StandardCharsets.US_ASCII);

  private CompressedKeys() {}

  /**
   * The key of the compaction of {@code tokens} by {@code method} with {@code params}; throws
   * {@link IllegalArgumentException} naming the field when an argument is out of range (see {@link
   * #validate}).
   */
  public static byte[] key(
      byte[] fingerprint, int[] tokens, String method, SortedMap<String, Long> params) {
    validate(fingerprint, tokens, method, params);
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 + 4 * tokens.length);
    out.writeBytes(DOMAIN);
    out.writeBytes(fingerprint);
    u32(out, tokens.length);
    for (int t : tokens) {
      u32(out, t);
    }
    string(out, method);
    u32(out, params.size());
    for (Map.Entry<String, Long> p : params.entrySet()) {
      string(out, p.getKey());
      long v = p.getValue();
      for (int i = 0; i < Long.BYTES; i++) {
        out.write((int) (v >>> (8 * i)));
      }
    }
    return BlockKeys.sha256().digest(out.toByteArray());
  }

  /** True when {@code method}'s compacted caches may be stored and shared. */
  public static boolean queryAgnostic(String method) {
    return QUERY_AGNOSTIC.contains(method);
  }

  /** Throws {@link IllegalArgumentException} naming the first argument out of range. */
  public static void validate(
      byte[] fingerprint, int[] tokens, String method, SortedMap<String, Long> params) {
    if (fingerprint.length != KvKeys.KEY_BYTES) {
      throw new IllegalArgumentException(
          "model_fingerprint: "
              + fingerprint.length
              + " bytes (expected: "
              + KvKeys.KEY_BYTES
              + ")");
    }
    if (tokens.length < 1) {
      throw new IllegalArgumentException("token_ids: none (expected: the compacted prefix, >= 1)");
    }
    for (int i = 0; i < tokens.length; i++) {
      if (tokens[i] < 0) {
        throw new IllegalArgumentException(
            "token_ids[" + i + "]: " + tokens[i] + " (expected: >= 0)");
      }
    }
    if (!queryAgnostic(method)) {
      throw new IllegalArgumentException(
          "method: \""
              + method
              + "\" (expected: a query-agnostic method, one of "
              + String.join(", ", QUERY_AGNOSTIC)
              + "; a cache chosen by the query fits no other request)");
    }
    if (params.size() > MAX_PARAMS) {
      throw new IllegalArgumentException(
          "params: " + params.size() + " (expected: at most " + MAX_PARAMS + ")");
    }
    for (String name : params.keySet()) {
      if (name.isEmpty()) {
        throw new IllegalArgumentException("params: an empty name (expected: a parameter's name)");
      }
    }
  }

  private static void string(ByteArrayOutputStream out, String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    u32(out, b.length);
    out.writeBytes(b);
  }

  private static void u32(ByteArrayOutputStream out, int v) {
    out.write(v);
    out.write(v >>> 8);
    out.write(v >>> 16);
    out.write(v >>> 24);
  }
}
