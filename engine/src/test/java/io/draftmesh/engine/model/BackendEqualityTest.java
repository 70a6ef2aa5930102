package io.draftmesh.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.cpu.VectorModel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Vector API backend computes what the DJL reference computes, step for step, on the three
 * architectures (Llama; Qwen2 with Q/K/V bias and tied embeddings; Mistral-style GQA with llama3
 * RoPE scaling), with weights stored as F32 and as F16 (which the vector backend keeps as F16 in
 * memory and DJL widens: both multiply the same values).
 *
 * <p>Tolerance 1e-4 absolute on logits of magnitude ~1 (float32 both, different summation orders
 * and exp implementations: observed differences are ~1e-6); a wrong position, mask, bias or head
 * mapping moves logits by O(0.1), which the non-degeneracy checks make sure the data can show.
 *
 * <p>With a float16 KV pool both backends store the same rounding of their keys and values, but
 * those differ by ~1e-6 before rounding, so an element may land on the neighbouring half (2^-11
 * relative) in one backend and not the other; {@link #KV16_TOLERANCE} allows for a few such flips
 * (observed differences up to 4e-5).
 */
class BackendEqualityTest {
  private static final float TOLERANCE = 1e-4f;
  private static final float KV16_TOLERANCE = 5e-4f;

  @TempDir static Path dir;

  /** Every architecture and head width with F32 and F16 weights, then with a float16 KV pool. */
  static Stream<Arguments> checkpoints() {
    List<Arguments> out = new ArrayList<>();
    for (DType dtype : List.of(DType.F32, DType.F16)) {
      architectures(out, dtype, KvDtype.FLOAT32);
    }
    architectures(out, DType.F32, KvDtype.FLOAT16);
    return out.stream();
  }

  private static void architectures(List<Arguments> out, DType dtype, KvDtype kv) {
    out.add(Arguments.of("llama", RandomCheckpoint.tinyLlama(), dtype, kv));
    out.add(Arguments.of("qwen2", RandomCheckpoint.tinyQwen2(), dtype, kv));
    out.add(Arguments.of("gqa", RandomCheckpoint.tinyGqa(), dtype, kv));
    out.add(Arguments.of("pair-head", registerHeads(2), dtype, kv));
    out.add(Arguments.of("quad-head", registerHeads(4), dtype, kv));
    out.add(Arguments.of("octo-head", registerHeads(8), dtype, kv));
  }

  /**
   * GQA whose head is exactly {@code vectors} vectors of this machine's float lanes (four: 64 wide
   * on AVX-512, 32 on AVX2): the float32 attention paths that keep a query and an output in
   * registers (two, four, eight vectors) and the float16 ones (one, two int vectors of packed
   * halves; four keep only the output).
   */
  private static ModelConfig registerHeads(int vectors) {
    ModelConfig gqa = RandomCheckpoint.tinyGqa();
    int headDim = vectors * FloatVector.SPECIES_PREFERRED.length();
    int heads = 4;
    return new ModelConfig(
        ModelConfig.LLAMA,
        gqa.vocabSize(),
        heads * headDim,
        gqa.intermediateSize(),
        gqa.numLayers(),
        heads,
        2,
        headDim,
        10000.0,
        null,
        gqa.rmsNormEps(),
        gqa.maxPositionEmbeddings(),
        false,
        false,
        gqa.bosTokenId(),
        gqa.eosTokenId());
  }

  /** Both backends over one checkpoint, each with a pool of its own. */
  private static final class Pair implements AutoCloseable {
    final NDManager manager = NDManager.newBaseManager();
    final LlamaModel djl;
    final VectorModel vector;
    final KvBlockPool djlPool;
    final KvBlockPool vectorPool;
    final int vocab;
    final float tolerance;

    Pair(String name, ModelConfig config, DType dtype) throws IOException {
      this(name, config, dtype, KvDtype.FLOAT32);
    }

    Pair(String name, ModelConfig config, DType dtype, KvDtype kv) throws IOException {
      Path modelDir = dir.resolve(name + "-" + dtype);
      if (!Files.exists(modelDir.resolve("config.json"))) {
        RandomCheckpoint.write(modelDir, config, 13, dtype, 0);
      }
      try (Checkpoint ckpt = Checkpoint.load(modelDir)) {
        djl = LlamaModel.load(ckpt, manager, 512);
        vector = VectorModel.load(ckpt, 512, 2, true);
      }
      djlPool = pool(config, kv);
      vectorPool = pool(config, kv);
      vocab = config.vocabSize();
      tolerance = kv == KvDtype.FLOAT16 ? KV16_TOLERANCE : TOLERANCE;
    }

    static KvBlockPool pool(ModelConfig c, KvDtype kv) {
      return KvBlockPool.withBudget(c.numLayers(), c.numKvHeads(), c.headDim(), 16, 8L << 20, kv);
    }

    @Override
    public void close() {
      djlPool.close();
      vectorPool.close();
      vector.close();
      djl.close();
      manager.close();
    }
  }

  /** One sequence fed identically to both backends, each with its own block table. */
  private static final class Twin implements AutoCloseable {
    final Pair pair;
    final BlockTable djlTable;
    final BlockTable vectorTable;
    final List<Integer> tokens = new ArrayList<>();

    Twin(Pair pair) {
      this.pair = pair;
      this.djlTable = new BlockTable(pair.djlPool);
      this.vectorTable = new BlockTable(pair.vectorPool);
    }

    /** Feeds ids after the current tokens; returns {djl, vector} logits for every fed row. */
    float[][][] feed(int[] ids) {
      int start = tokens.size();
      for (int id : ids) {
        tokens.add(id);
      }
      djlTable.reserve(tokens.size());
      vectorTable.reserve(tokens.size());
      int[] rows = new int[ids.length];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = i;
      }
      float[][] a =
          pair.djl
              .forward(List.of(new SeqStep(ids, start, djlTable, rows, false)), pair.djlPool)
              .get(0)
              .logits();
      float[][] b =
          pair.vector
              .forward(List.of(new SeqStep(ids, start, vectorTable, rows, false)), pair.vectorPool)
              .get(0)
              .logits();
      return new float[][][] {a, b};
    }

    void truncate(int length) {
      tokens.subList(length, tokens.size()).clear();
      djlTable.truncate(length);
      vectorTable.truncate(length);
    }

    @Override
    public void close() {
      djlTable.close();
      vectorTable.close();
    }
  }

  static int[] randomTokens(int n, int vocab, long seed) {
    Random r = new Random(seed);
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(vocab);
    }
    return t;
  }

  static float maxAbsDiff(float[][] a, float[][] b) {
    assertThat(a.length).isEqualTo(b.length);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      assertThat(a[i]).hasSameSizeAs(b[i]);
      for (int j = 0; j < a[i].length; j++) {
        max = Math.max(max, Math.abs(a[i][j] - b[i][j]));
      }
    }
    return max;
  }

  static void assertSame(Pair p, float[][][] djlAndVector, String what) {
    assertThat(maxAbsDiff(djlAndVector[0], djlAndVector[1])).as(what).isLessThan(p.tolerance);
  }

  @ParameterizedTest(name = "{0} {2} kv {3}")
  @MethodSource("checkpoints")
  void prefillThenSingleDecodeSteps(String name, ModelConfig config, DType dtype, KvDtype kv)
      throws Exception {
    try (Pair p = new Pair(name, config, dtype, kv);
        Twin s = new Twin(p)) {
      int[] tokens = randomTokens(45, p.vocab, 1);
      float[][][] prefill = s.feed(Arrays.copyOf(tokens, 20));
      assertSame(p, prefill, "prefill of 20");
      // The data can show a difference: logits move between positions.
      assertThat(maxAbsDiff(new float[][] {prefill[0][3]}, new float[][] {prefill[0][4]}))
          .isGreaterThan(0.01f);
      for (int i = 20; i < tokens.length; i++) {
        assertSame(p, s.feed(new int[] {tokens[i]}), "decode at position " + i);
      }
    }
  }

  @ParameterizedTest(name = "{0} {2} kv {3}")
  @MethodSource("checkpoints")
  void chunkedPrefillAndKTokenVerify(String name, ModelConfig config, DType dtype, KvDtype kv)
      throws Exception {
    try (Pair p = new Pair(name, config, dtype, kv);
        Twin chunked = new Twin(p)) {
      int[] tokens = randomTokens(70, p.vocab, 2);
      for (int from = 0; from < 64; from += 17) {
        int to = Math.min(64, from + 17);
        assertSame(p, chunked.feed(Arrays.copyOfRange(tokens, from, to)), "chunk from " + from);
      }
      // Verify: 6 rows (the pending token plus 5 drafts) in one step.
      assertSame(p, chunked.feed(Arrays.copyOfRange(tokens, 64, 70)), "6-row verify");
    }
  }

  @ParameterizedTest(name = "{0} {2} kv {3}")
  @MethodSource("checkpoints")
  void truncateThenAppendDifferentTokens(String name, ModelConfig config, DType dtype, KvDtype kv)
      throws Exception {
    try (Pair p = new Pair(name, config, dtype, kv);
        Twin s = new Twin(p)) {
      s.feed(randomTokens(40, p.vocab, 3));
      s.truncate(23); // rolls back into the middle of a block; stale KV past 23 must not be seen
      float[][][] after = s.feed(randomTokens(9, p.vocab, 4));
      assertSame(p, after, "after truncate");
      // And both equal a fresh sequence with the same tokens (the DJL side of it suffices now).
      try (Twin fresh = new Twin(p)) {
        int[] all = s.tokens.stream().mapToInt(Integer::intValue).toArray();
        float[][][] again = fresh.feed(all);
        float[][] tail = Arrays.copyOfRange(again[1], 23, 32);
        assertThat(maxAbsDiff(tail, after[1])).isLessThan(p.tolerance);
      }
    }
  }

  @ParameterizedTest(name = "{0} {2} kv {3}")
  @MethodSource("checkpoints")
  void batchedRaggedStepEqualsDjlsBatchedStep(
      String name, ModelConfig config, DType dtype, KvDtype kv) throws Exception {
    try (Pair p = new Pair(name, config, dtype, kv)) {
      int[][] seqs = {
        randomTokens(33, p.vocab, 5), randomTokens(9, p.vocab, 6), randomTokens(50, p.vocab, 7)
      };
      int[] prefix = {30, 4, 47};
      List<Twin> twins = new ArrayList<>();
      List<SeqStep> djlBatch = new ArrayList<>();
      List<SeqStep> vectorBatch = new ArrayList<>();
      for (int i = 0; i < seqs.length; i++) {
        Twin t = new Twin(p);
        twins.add(t);
        t.feed(Arrays.copyOf(seqs[i], prefix[i]));
        int[] fed = Arrays.copyOfRange(seqs[i], prefix[i], seqs[i].length);
        t.djlTable.reserve(seqs[i].length);
        t.vectorTable.reserve(seqs[i].length);
        int[] rows = i == 1 ? new int[] {fed.length - 1} : new int[] {0, fed.length - 1};
        djlBatch.add(new SeqStep(fed, prefix[i], t.djlTable, rows, i == 2));
        vectorBatch.add(new SeqStep(fed, prefix[i], t.vectorTable, rows, i == 2));
      }
      List<StepResult> a = p.djl.forward(djlBatch, p.djlPool);
      List<StepResult> b = p.vector.forward(vectorBatch, p.vectorPool);
      for (int i = 0; i < seqs.length; i++) {
        assertThat(maxAbsDiff(a.get(i).logits(), b.get(i).logits()))
            .as("sequence %d", i)
            .isLessThan(p.tolerance);
      }
      // Captured attention (sequence 2 only) matches too: (heads, new, length) per layer.
      assertThat(b.get(0).attention()).isNull();
      assertThat(b.get(2).attention()).hasNumberOfRows(config.numLayers());
      assertThat(maxAbsDiff(a.get(2).attention(), b.get(2).attention()))
          .isLessThan(kv == KvDtype.FLOAT16 ? 1e-4f : 1e-5f);
      twins.forEach(Twin::close);
      assertThat(p.vectorPool.freeBlocks()).isEqualTo(p.vectorPool.totalBlocks());
    }
  }

  @ParameterizedTest
  @EnumSource(KvDtype.class)
  void oneBackendContinuesWhatTheOtherWroteIntoTheSharedPool(KvDtype kv) throws Exception {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    try (Pair p = new Pair("gqa", config, DType.F32, kv);
        BlockTable table = new BlockTable(p.djlPool);
        Twin reference = new Twin(p)) {
      int[] tokens = randomTokens(40, p.vocab, 8);
      float[][][] expected = reference.feed(tokens);
      // DJL prefills into the pool; the vector backend decodes from the KV DJL wrote, and back.
      table.reserve(40);
      int[] rows = new int[30];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = i;
      }
      p.djl.forward(
          List.of(new SeqStep(Arrays.copyOf(tokens, 30), 0, table, rows, false)), p.djlPool);
      for (int i = 30; i < 40; i++) {
        DecoderModel m = i % 2 == 0 ? p.vector : p.djl;
        float[] got =
            m.forward(
                    List.of(new SeqStep(new int[] {tokens[i]}, i, table, new int[] {0}, false)),
                    p.djlPool)
                .get(0)
                .logits()[0];
        assertThat(maxAbsDiff(new float[][] {got}, new float[][] {expected[0][i]}))
            .as("position %d by %s", i, m.backend())
            .isLessThan(p.tolerance);
      }
    }
  }

  /**
   * A float16 pool holds twice the blocks of a float32 one in the same memory, and its logits stay
   * within 5e-3 of the float32 pool's (keys and values rounded to 11 significant bits: observed
   * differences 1e-4 to 6e-4 on these random models) while really differing from them: the halves
   * are what attention reads.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("float16KvCheckpoints")
  void aFloat16PoolHoldsTwiceTheBlocksAndStaysCloseToFloat32(String name, ModelConfig config)
      throws Exception {
    try (Pair p32 = new Pair(name, config, DType.F32, KvDtype.FLOAT32);
        Pair p16 = new Pair(name, config, DType.F32, KvDtype.FLOAT16);
        Twin a = new Twin(p32);
        Twin b = new Twin(p16)) {
      assertThat(p16.vectorPool.totalBlocks()).isEqualTo(2 * p32.vectorPool.totalBlocks());
      int[] tokens = randomTokens(60, p32.vocab, 9);
      float[][] full = a.feed(Arrays.copyOf(tokens, 50))[1];
      float[][] half = b.feed(Arrays.copyOf(tokens, 50))[1];
      float prefill = maxAbsDiff(full, half);
      float decode = 0;
      for (int i = 50; i < tokens.length; i++) {
        decode =
            Math.max(
                decode,
                maxAbsDiff(a.feed(new int[] {tokens[i]})[1], b.feed(new int[] {tokens[i]})[1]));
      }
      assertThat(prefill).as("prefill").isGreaterThan(0f).isLessThan(5e-3f);
      assertThat(decode).as("decode").isGreaterThan(0f).isLessThan(5e-3f);
    }
  }

  static Stream<Arguments> float16KvCheckpoints() {
    return checkpoints()
        .filter(a -> a.get()[2] == DType.F32 && a.get()[3] == KvDtype.FLOAT16)
        .map(a -> Arguments.of(a.get()[0], a.get()[1]));
  }

  @Test
  void djlViewsOfThePoolShareItsMemory() throws Exception {
    ModelConfig config = RandomCheckpoint.tinyLlama();
    try (Pair p = new Pair("llama", config, DType.F32)) {
      NDArray[][] views = p.djl.poolViews(p.djlPool);
      ByteBuffer keys = p.djlPool.keys(1);
      int headDim = config.headDim();
      int slots = p.djlPool.slots();
      // Written through the NDArray (head 2, slot 5, dim 3) → seen in the buffer.
      views[0][1].set(new NDIndex("2, 5, 3"), 42.5f);
      assertThat(keys.getFloat(((2 * slots + 5) * headDim + 3) * Float.BYTES)).isEqualTo(42.5f);
      // Written into the buffer → seen through the NDArray.
      ByteBuffer values = p.djlPool.values(0);
      values.putFloat(((3 * slots + 7) * headDim + 1) * Float.BYTES, -7.25f);
      assertThat(views[1][0].get(new NDIndex("3, 7, 1")).getFloat()).isEqualTo(-7.25f);
    }
  }
}
