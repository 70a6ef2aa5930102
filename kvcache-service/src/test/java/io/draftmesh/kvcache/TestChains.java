package io.draftmesh.kvcache;

import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.ModelSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Test chains: a model spec, its fingerprint, and blocks with deterministic payloads. */
final class TestChains {
  static final int BLOCK_SIZE = 4;

  static final ModelSpec SPEC =
      ModelSpec.newBuilder()
          .setArchitecture("LlamaForCausalLM")
          .setWeightsDigest(com.google.protobuf.ByteString.copyFromUtf8("test-weights"))
          .setDtype("float32")
          .setNumLayers(2)
          .setNumKvHeads(2)
          .setHeadDim(8)
          .setKvLayout("paged-v1")
          .setBlockSize(BLOCK_SIZE)
          .build();

  static final byte[] FP = KvKeys.fingerprint(SPEC);

  private TestChains() {}

  /** Token ids {@code seed*1000 + i}: chains with different seeds share no block. */
  static int[] tokens(int seed, int blocks) {
    int[] t = new int[blocks * BLOCK_SIZE];
    for (int i = 0; i < t.length; i++) {
      t[i] = seed * 1000 + i;
    }
    return t;
  }

  /** A block's payload, determined by its key. */
  static byte[] payload(byte[] key, int size) {
    byte[] b = new byte[size];
    new Random(java.util.Arrays.hashCode(key)).nextBytes(b);
    return b;
  }

  /** The blocks of {@code tokens} as store metas with payloads of {@code size} bytes. */
  static List<Object[]> metas(int[] tokens, int size) {
    List<byte[]> keys = KvKeys.chain(FP, BLOCK_SIZE, tokens);
    List<Object[]> out = new ArrayList<>();
    for (int i = 0; i < keys.size(); i++) {
      byte[] p = payload(keys.get(i), size);
      int[] t = java.util.Arrays.copyOfRange(tokens, i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
      BlockMeta m =
          new BlockMeta(
              BlockKey.of(keys.get(i)),
              i == 0 ? null : BlockKey.of(keys.get(i - 1)),
              BlockKey.of(FP),
              t,
              size,
              BlockStore.crc(p));
      out.add(new Object[] {m, p});
    }
    return out;
  }

  static List<BlockKey> keys(int[] tokens) {
    List<BlockKey> out = new ArrayList<>();
    for (byte[] k : KvKeys.chain(FP, BLOCK_SIZE, tokens)) {
      out.add(BlockKey.of(k));
    }
    return out;
  }
}
