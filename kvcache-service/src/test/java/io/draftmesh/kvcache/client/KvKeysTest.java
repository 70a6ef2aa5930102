package io.draftmesh.kvcache.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.ModelSpec;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class KvKeysTest {
  static ModelSpec golden() throws Exception {
    return ModelSpec.newBuilder()
        .setArchitecture("LlamaForCausalLM")
        .setWeightsDigest(
            ByteString.copyFrom(
                MessageDigest.getInstance("SHA-256")
                    .digest("weights".getBytes(StandardCharsets.US_ASCII))))
        .setDtype("float32")
        .setNumLayers(2)
        .setNumKvHeads(2)
        .setHeadDim(8)
        .setKvLayout("paged-v1")
        .setBlockSize(4)
        .build();
  }

  /** The vectors in kvcache.proto, computed independently with Python's hashlib. */
  @Test
  void goldenVectorsMatchTheProtoComments() throws Exception {
    ModelSpec spec = golden();
    assertThat(KvKeys.hex(spec.getWeightsDigest().toByteArray()))
        .isEqualTo("9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c");
    byte[] fp = KvKeys.fingerprint(spec);
    assertThat(KvKeys.hex(fp))
        .isEqualTo("1e3d56ae169ce6592297dcebf69dc3c2e106fbc14cb269ca4d1b4c7b3b5dd1e5");
    List<byte[]> chain = KvKeys.chain(fp, 4, new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
    assertThat(chain).hasSize(2); // the partial block [9] has no key
    assertThat(KvKeys.hex(chain.get(0)))
        .isEqualTo("2668b93031fa59965838cc49d7996b9a5e7a4df211851cdba92391160853de5d");
    assertThat(KvKeys.hex(chain.get(1)))
        .isEqualTo("02b562089695249bb304a0c8bd19b45d954780b0ea42a83e39ddcf8ef25de37b");
    assertThat(KvKeys.hex(KvKeys.fingerprint(spec.toBuilder().setBlockSize(8).build())))
        .isEqualTo("28259bf35e7d7be6b80b5f5515118713510eeb46ca7bc31575d03464910cf3c3");
  }

  @Test
  void keysAreDeterministicAcrossCallsAndChainedThroughTheParent() throws Exception {
    byte[] fp = KvKeys.fingerprint(golden());
    int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8};
    assertThat(KvKeys.chain(fp, 4, tokens))
        .usingElementComparator(java.util.Arrays::compare)
        .containsExactlyElementsOf(KvKeys.chain(fp, 4, tokens.clone()));
    // The same second block after a different first block has a different key.
    int[] other = {9, 2, 3, 4, 5, 6, 7, 8};
    assertThat(KvKeys.chain(fp, 4, other).get(1)).isNotEqualTo(KvKeys.chain(fp, 4, tokens).get(1));
  }

  /** Every field of the spec changes the fingerprint, and so every key of the same tokens. */
  @Test
  void differentFingerprintsNeverCollideOnTheSameTokens() throws Exception {
    ModelSpec base = golden();
    List<UnaryOperator<ModelSpec.Builder>> changes =
        List.of(
            b -> b.setArchitecture("Qwen2ForCausalLM"),
            b -> b.setWeightsDigest(ByteString.copyFrom(new byte[32])),
            b -> b.setDtype("float16"),
            b -> b.setNumLayers(3),
            b -> b.setNumKvHeads(1),
            b -> b.setHeadDim(16),
            b -> b.setKvLayout("paged-v2"),
            b -> b.setBlockSize(2),
            // Length prefixes keep field boundaries apart: "ab"+"c" differs from "a"+"bc".
            b -> b.setArchitecture("LlamaForCausalLMf").setDtype("loat32"));
    Random rnd = new Random(12);
    int[] tokens = new int[64];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = rnd.nextInt(50_000);
    }
    Set<String> fingerprints = new HashSet<>();
    Set<String> keys = new HashSet<>();
    int keyCount = 0;
    for (int c = -1; c < changes.size(); c++) {
      ModelSpec s = c < 0 ? base : changes.get(c).apply(base.toBuilder()).build();
      byte[] fp = KvKeys.fingerprint(s);
      assertThat(fingerprints.add(KvKeys.hex(fp))).as("fingerprint of change %d", c).isTrue();
      for (byte[] k : KvKeys.chain(fp, s.getBlockSize(), tokens)) {
        keys.add(KvKeys.hex(k));
        keyCount++;
      }
    }
    assertThat(keys).hasSize(keyCount);
  }

  @Test
  void partialBlocksAreNeverKeyed() throws Exception {
    byte[] fp = KvKeys.fingerprint(golden());
    assertThat(KvKeys.chain(fp, 4, new int[] {1, 2, 3})).isEmpty();
    assertThat(KvKeys.chain(fp, 4, new int[] {1, 2, 3, 4, 5, 6, 7})).hasSize(1);
    assertThatThrownBy(() -> KvKeys.blockKey(fp, new int[] {1, 2, 3}, 0, 4))
        .hasMessageContaining("expected: a full block");
  }

  @Test
  void invalidInputNamesTheField() throws Exception {
    byte[] fp = KvKeys.fingerprint(golden());
    assertThatThrownBy(() -> KvKeys.chain(fp, 2, new int[] {1, -5}))
        .hasMessage("token_ids[1]: -5 (expected: >= 0)");
    assertThatThrownBy(() -> KvKeys.fingerprint(golden().toBuilder().setBlockSize(0).build()))
        .hasMessage("block_size: 0 (expected: >= 1)");
    assertThatThrownBy(() -> KvKeys.fingerprint(golden().toBuilder().setDtype("").build()))
        .hasMessage("dtype: empty (expected: a non-empty string)");
    assertThatThrownBy(
            () ->
                KvKeys.fingerprint(golden().toBuilder().setWeightsDigest(ByteString.EMPTY).build()))
        .hasMessage("weights_digest: 0 bytes (expected: 1..64)");
    assertThatThrownBy(() -> KvKeys.blockKey(new byte[16], new int[] {1}, 0, 1))
        .hasMessage("parent: 16 bytes (expected: 32)");
  }
}
