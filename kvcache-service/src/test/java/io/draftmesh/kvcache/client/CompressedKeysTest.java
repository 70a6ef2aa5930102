package io.draftmesh.kvcache.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class CompressedKeysTest {
  static final int[] IDS = {1, 2, 3, 4, 5, 6, 7, 8, 9};

  static SortedMap<String, Long> params(Object... nameValue) {
    SortedMap<String, Long> m = new TreeMap<>();
    for (int i = 0; i < nameValue.length; i += 2) {
      m.put((String) nameValue[i], ((Number) nameValue[i + 1]).longValue());
    }
    return m;
  }

  /** The vectors in kvcache.proto, computed independently with Python's hashlib. */
  @Test
  void goldenVectorsMatchTheProtoComments() throws Exception {
    byte[] fp = KvKeys.fingerprint(KvKeysTest.golden());
    assertThat(
            KvKeys.hex(
                CompressedKeys.key(fp, IDS, "streaming_llm", params("budget", 6, "sinks", 4))))
        .isEqualTo("f1779b787de94679ecdb153924e53c6e98638b58ab0bc0f1ec9dad36f23fb6c8");
    assertThat(
            KvKeys.hex(
                CompressedKeys.key(fp, IDS, "streaming_llm", params("budget", 6, "sinks", 2))))
        .isEqualTo("fcbd63b0c8e4fba61b87a7bf11cb4734ae15db492e2bd70cf9bdb3587e4cafe5");
    assertThat(
            KvKeys.hex(
                CompressedKeys.key(
                    fp,
                    IDS,
                    "snapkv",
                    params("window", 4, "reduction", 0, "pool", 0, "kernel", 7, "budget", 6))))
        .isEqualTo("b1e36957dfb74440024edcaffcad0e0b39c5b50ace81956d6fa9d97c7a5b5a92");
    assertThat(
            KvKeys.hex(
                CompressedKeys.key(
                    fp,
                    java.util.Arrays.copyOf(IDS, 8),
                    "streaming_llm",
                    params("budget", 6, "sinks", 4))))
        .isEqualTo("f4badb56904059ff26cf57626706036bcaed028b8a0678b373bbdefff84da931");
  }

  @Test
  void noTwoModelsPrefixesMethodsOrParametersShareAKey() throws Exception {
    byte[] fp = KvKeys.fingerprint(KvKeysTest.golden());
    byte[] other = KvKeys.fingerprint(KvKeysTest.golden().toBuilder().setNumLayers(3).build());
    Set<String> keys = new HashSet<>();
    List<byte[]> models = List.of(fp, other);
    List<int[]> prefixes = List.of(IDS, new int[] {1, 2, 3, 4, 5, 6, 7, 8}, new int[] {9, 1});
    List<SortedMap<String, Long>> snap =
        List.of(
            params("budget", 6, "kernel", 7, "pool", 0, "reduction", 0, "window", 4),
            params("budget", 7, "kernel", 7, "pool", 0, "reduction", 0, "window", 4),
            params("budget", 6, "kernel", 5, "pool", 0, "reduction", 0, "window", 4),
            params("budget", 6, "kernel", 7, "pool", 1, "reduction", 1, "window", 4),
            params("budget", 6, "kernel", 7, "pool", 0, "reduction", 0, "window", 3));
    List<SortedMap<String, Long>> streaming =
        List.of(params("budget", 6, "sinks", 4), params("budget", 6, "sinks", 0));
    int n = 0;
    for (byte[] m : models) {
      for (int[] p : prefixes) {
        for (SortedMap<String, Long> s : snap) {
          keys.add(KvKeys.hex(CompressedKeys.key(m, p, "snapkv", s)));
          n++;
        }
        for (SortedMap<String, Long> s : streaming) {
          keys.add(KvKeys.hex(CompressedKeys.key(m, p, "streaming_llm", s)));
          n++;
        }
        // Never a block key of the same model and ids: another domain.
        keys.add(KvKeys.hex(KvKeys.blockKey(m, p, 0, p.length)));
        n++;
      }
    }
    assertThat(keys).hasSize(n);
    // A parameter's name is part of the key, not only its value.
    assertThat(CompressedKeys.key(fp, IDS, "streaming_llm", params("budget", 6, "sinks", 4)))
        .isNotEqualTo(
            CompressedKeys.key(fp, IDS, "streaming_llm", params("budget", 6, "sinkz", 4)));
    assertThat(CompressedKeys.key(fp, IDS, "streaming_llm", new TreeMap<>(Map.of("budget", 6L))))
        .isEqualTo(CompressedKeys.key(fp, IDS.clone(), "streaming_llm", params("budget", 6)))
        .as("deterministic");
  }

  @Test
  void queryDependentMethodsAndBadArgumentsAreRefusedNamingTheField() throws Exception {
    byte[] fp = KvKeys.fingerprint(KvKeysTest.golden());
    SortedMap<String, Long> p = params("budget", 6, "kernel", 7, "window", 4);
    assertThatThrownBy(() -> CompressedKeys.key(fp, IDS, "speckv", p))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("method: \"speckv\" (expected: a query-agnostic method");
    assertThatThrownBy(() -> CompressedKeys.key(fp, IDS, "specpc", p))
        .hasMessageStartingWith("method: \"specpc\"");
    assertThatThrownBy(() -> CompressedKeys.key(new byte[31], IDS, "snapkv", p))
        .hasMessage("model_fingerprint: 31 bytes (expected: 32)");
    assertThatThrownBy(() -> CompressedKeys.key(fp, new int[0], "snapkv", p))
        .hasMessageStartingWith("token_ids: none");
    assertThatThrownBy(() -> CompressedKeys.key(fp, new int[] {1, -2}, "snapkv", p))
        .hasMessage("token_ids[1]: -2 (expected: >= 0)");
    assertThatThrownBy(() -> CompressedKeys.key(fp, IDS, "snapkv", params("", 1)))
        .hasMessageStartingWith("params: an empty name");
    assertThat(CompressedKeys.queryAgnostic("snapkv")).isTrue();
    assertThat(CompressedKeys.queryAgnostic("streaming_llm")).isTrue();
    assertThat(CompressedKeys.queryAgnostic("h2o"))
        .as("scores with the prefix's own queries")
        .isTrue();
    assertThat(CompressedKeys.queryAgnostic("speckv")).isFalse();
    assertThat(CompressedKeys.queryAgnostic("specpc")).isFalse();
    assertThat(CompressedKeys.queryAgnostic("pyramidkv"))
        .as("not a method of this engine")
        .isFalse();
  }
}
