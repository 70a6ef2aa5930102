package io.draftmesh.engine.compaction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.ndarray.NDManager;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.cpu.VectorModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Positions survive compaction: after {@link KvCompactor} gathers each KV head's kept slots, the
 * next decode steps' logits equal {@link MaskedReference}'s, a plain-Java forward over the full
 * cache whose attention is masked to the kept keys, on both backends (GQA with llama3 RoPE scaling;
 * Qwen2 with biases and tied embeddings).
 *
 * <p>Tolerance 1e-4 absolute on logits: float32 backends against a double-precision reference
 * (observed ~1e-6). The negative controls show that a wrong position, or a head reading another
 * head's kept set, moves logits well beyond it.
 */
class KvCompactorTest {
  private static final float TOLERANCE = 1e-4f;
  private static final int BLOCK = 16;

  @TempDir static Path dir;

  static Stream<Arguments> cases() {
    return Stream.of(
        Arguments.of("gqa", RandomCheckpoint.tinyGqa(), "djl"),
        Arguments.of("gqa", RandomCheckpoint.tinyGqa(), "vector"),
        Arguments.of("qwen2", RandomCheckpoint.tinyQwen2(), "djl"),
        Arguments.of("qwen2", RandomCheckpoint.tinyQwen2(), "vector"));
  }

  private static Path checkpoint(String name, ModelConfig config) throws Exception {
    Path d = dir.resolve(name);
    if (!Files.exists(d.resolve("config.json"))) {
      RandomCheckpoint.write(d, config, 21, DType.F32, 0);
    }
    return d;
  }

  private static KvBlockPool pool(ModelConfig c) {
    return pool(c, KvDtype.FLOAT32);
  }

  /** Eight blocks of {@code dtype}. */
  private static KvBlockPool pool(ModelConfig c, KvDtype dtype) {
    return KvBlockPool.withBudget(
        c.numLayers(),
        c.numKvHeads(),
        c.headDim(),
        BLOCK,
        KvBlockPool.bytesPerBlock(c.numLayers(), c.numKvHeads(), c.headDim(), BLOCK, dtype) * 8,
        dtype);
  }

  /** Random kept positions per layer and KV head: {@code count} of [0, length), ascending. */
  static int[][][] randomSelection(ModelConfig c, int length, int count, long seed) {
    Random rnd = new Random(seed);
    int[][][] kept = new int[c.numLayers()][c.numKvHeads()][];
    for (int[][] layer : kept) {
      for (int h = 0; h < layer.length; h++) {
        int[] all = new int[length];
        Arrays.setAll(all, i -> i);
        for (int i = length - 1; i > 0; i--) {
          int j = rnd.nextInt(i + 1);
          int t = all[i];
          all[i] = all[j];
          all[j] = t;
        }
        layer[h] = Arrays.copyOf(all, count);
        Arrays.sort(layer[h]);
      }
    }
    return kept;
  }

  static void prefill(DecoderModel m, KvBlockPool pool, BlockTable table, int[] prompt) {
    table.reserve(prompt.length);
    m.forward(List.of(new SeqStep(prompt, 0, table, new int[] {prompt.length - 1}, false)), pool);
  }

  static float maxDiff(float[] a, float[] b) {
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  @ParameterizedTest(name = "{0} on {2}")
  @MethodSource("cases")
  void decodingOnTheCompactedCacheEqualsAFullCacheForwardMaskedToTheKeptKeys(
      String name, ModelConfig config, String backend) throws Exception {
    int length = 45; // three blocks of 16
    int count = 13; // one block
    int[] prompt = new Random(3).ints(length, 2, config.vocabSize()).toArray();
    int[] next = {17, 301, 99};
    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(checkpoint(name, config));
        DecoderModel model =
            backend.equals("djl")
                ? LlamaModel.load(ckpt, manager, 256)
                : VectorModel.load(ckpt, 256, 1, false);
        KvBlockPool compactPool = pool(config);
        KvBlockPool fullPool = pool(config);
        BlockTable compact = new BlockTable(compactPool);
        BlockTable full = new BlockTable(fullPool)) {
      prefill(model, compactPool, compact, prompt);
      prefill(model, fullPool, full, prompt);
      int[][][] kept = randomSelection(config, length, count, 5);
      assertThat(kept[0][0]).isNotEqualTo(kept[0][1]); // heads really keep different positions

      int freeBefore = compactPool.freeBlocks();
      KvCompactor.Outcome outcome =
          KvCompactor.apply(compactPool, compact, new KvSelection(kept, length, 0), length);
      assertThat(outcome.keptSlots()).isEqualTo(count);
      assertThat(outcome.droppedSlots()).isEqualTo(length - count);
      assertThat(outcome.freedBlocks()).isEqualTo(2);
      assertThat(compact.blockCount()).isEqualTo(1);
      assertThat(compactPool.freeBlocks()).isEqualTo(freeBefore + 2);

      MaskedReference reference = new MaskedReference(ckpt, fullPool, full, kept);
      MaskedReference wrongPosition = new MaskedReference(ckpt, fullPool, full, kept);
      int shift = length - count;
      for (int i = 0; i < next.length; i++) {
        compact.reserve(count + i + 1);
        float[] logits =
            model
                .forward(
                    List.of(
                        new SeqStep(
                            new int[] {next[i]},
                            count + i,
                            compact,
                            new int[] {0},
                            false,
                            shift,
                            null)),
                    compactPool)
                .get(0)
                .logits()[0];
        float[] expected = reference.step(next[i], length + i);
        assertThat(maxDiff(logits, expected)).as("step %d", i).isLessThan(TOLERANCE);
        // Negative control: rotated at the cache length instead of the original position. Qwen2's
        // theta of 1e6 turns slowly, so 32 positions move its tiny logits by only ~1.5e-3.
        float[] atCacheLength = wrongPosition.step(next[i], count + i);
        assertThat(maxDiff(logits, atCacheLength)).as("step %d", i).isGreaterThan(10 * TOLERANCE);
      }

      // Negative control: every head reading head 0's kept set.
      int[][][] sameForAll = new int[kept.length][kept[0].length][];
      for (int l = 0; l < kept.length; l++) {
        Arrays.fill(sameForAll[l], kept[l][0]);
      }
      float[] shared = new MaskedReference(ckpt, fullPool, full, sameForAll).step(next[0], length);
      float[] right = new MaskedReference(ckpt, fullPool, full, kept).step(next[0], length);
      assertThat(maxDiff(shared, right)).isGreaterThan(100 * TOLERANCE);
    }
  }

  @ParameterizedTest(name = "{0} on {2}")
  @MethodSource("cases")
  void theReferenceWithEveryKeyVisibleIsTheModelsOwnFullCacheStep(
      String name, ModelConfig config, String backend) throws Exception {
    int length = 30;
    int[] prompt = new Random(4).ints(length, 2, config.vocabSize()).toArray();
    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(checkpoint(name, config));
        DecoderModel model =
            backend.equals("djl")
                ? LlamaModel.load(ckpt, manager, 256)
                : VectorModel.load(ckpt, 256, 1, false);
        KvBlockPool pool = pool(config);
        BlockTable table = new BlockTable(pool)) {
      prefill(model, pool, table, prompt);
      MaskedReference reference =
          new MaskedReference(
              ckpt,
              pool,
              table,
              KvSelection.all(config.numLayers(), config.numKvHeads(), length).kept());
      float[] expected =
          reference.step(7, length); // reads the pool before the model writes slot 30
      table.reserve(length + 1);
      float[] logits =
          model
              .forward(
                  List.of(new SeqStep(new int[] {7}, length, table, new int[] {0}, false)), pool)
              .get(0)
              .logits()[0];
      assertThat(maxDiff(logits, expected)).isLessThan(TOLERANCE);
    }
  }

  /**
   * On a float16 pool, compaction moves and exports 2-byte elements: the exported cache is half a
   * float32 one, and restored into another float16 pool it decodes the very logits the compacted
   * sequence does (the same halves, bit for bit).
   */
  @Test
  void aFloat16PoolCompactsExportsAndRestoresItsOwnHalves() throws Exception {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    int length = 45;
    int count = 13;
    int[] prompt = new Random(4).ints(length, 2, config.vocabSize()).toArray();
    try (Checkpoint ckpt = Checkpoint.load(checkpoint("gqa", config));
        DecoderModel model = VectorModel.load(ckpt, 256, 1, false);
        KvBlockPool pool = pool(config, KvDtype.FLOAT16);
        KvBlockPool other = pool(config, KvDtype.FLOAT16);
        BlockTable compact = new BlockTable(pool);
        BlockTable restored = new BlockTable(other)) {
      prefill(model, pool, compact, prompt);
      KvCompactor.apply(
          pool,
          compact,
          new KvSelection(randomSelection(config, length, count, 6), length, 0),
          length);
      byte[] kv = KvCompactor.export(pool, compact, count);
      assertThat((long) kv.length)
          .isEqualTo(2L * config.numLayers() * config.numKvHeads() * count * config.headDim() * 2);
      restored.reserve(count);
      KvCompactor.restore(other, restored, count, kv);
      assertThat(KvCompactor.export(other, restored, count)).isEqualTo(kv);
      compact.reserve(count + 1);
      restored.reserve(count + 1);
      int shift = length - count;
      float[] a =
          model
              .forward(
                  List.of(
                      new SeqStep(
                          new int[] {17}, count, compact, new int[] {0}, false, shift, null)),
                  pool)
              .get(0)
              .logits()[0];
      float[] b =
          model
              .forward(
                  List.of(
                      new SeqStep(
                          new int[] {17}, count, restored, new int[] {0}, false, shift, null)),
                  other)
              .get(0)
              .logits()[0];
      assertThat(b).isEqualTo(a);
    }
  }

  @Test
  void keepingEverySlotChangesNothingAndFreesNothing() {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    try (KvBlockPool pool = pool(config);
        BlockTable table = new BlockTable(pool)) {
      table.reserve(40);
      pool.keys(1).putFloat(100 * 4, 3.5f);
      KvCompactor.Outcome o =
          KvCompactor.apply(
              pool, table, KvSelection.all(config.numLayers(), config.numKvHeads(), 40), 40);
      assertThat(o.freedBlocks()).isZero();
      assertThat(o.droppedSlots()).isZero();
      assertThat(table.blockCount()).isEqualTo(3);
      assertThat(pool.keys(1).getFloat(100 * 4)).isEqualTo(3.5f);
    }
  }

  @Test
  void rejectsSelectionsThatAreNotAscendingOrDifferInCount() {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    try (KvBlockPool pool = pool(config);
        BlockTable table = new BlockTable(pool)) {
      table.reserve(20);
      int[][][] kept = randomSelection(config, 20, 5, 1);
      kept[1][1] = new int[] {4, 3, 8, 9, 10};
      assertThatThrownBy(() -> KvCompactor.apply(pool, table, new KvSelection(kept, 20, 0), 20))
          .hasMessageContaining("layer 1 head 1")
          .hasMessageContaining("ascending");
      kept[1][1] = new int[] {1, 2, 3};
      assertThatThrownBy(() -> KvCompactor.apply(pool, table, new KvSelection(kept, 20, 0), 20))
          .hasMessageContaining("the same for every head");
      kept[1][1] = new int[] {1, 2, 3, 4, 20};
      assertThatThrownBy(() -> KvCompactor.apply(pool, table, new KvSelection(kept, 20, 0), 20))
          .hasMessageContaining("in 0..19");
      assertThat(table.blockCount()).isEqualTo(2); // nothing freed by a rejected selection
    }
  }
}
