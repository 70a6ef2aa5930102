package io.draftmesh.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The paged, batched serving forward must compute exactly what the cache-free reference computes.
 * fp32 with different reduction orders (gathered vs contiguous keys, padded batches): 1e-4 on
 * logits of magnitude ~1 is a few ulps of accumulated error and far below any difference a bug
 * makes (a wrong position, mask or block shifts logits by O(0.1)).
 */
class LlamaModelTest {
  private static final float TOLERANCE = 1e-4f;

  @TempDir static Path dir;

  static Stream<Arguments> shapes() {
    return Stream.of(
        Arguments.of("llama", RandomCheckpoint.tinyLlama()),
        Arguments.of("qwen2", RandomCheckpoint.tinyQwen2()),
        Arguments.of("gqa", RandomCheckpoint.tinyGqa()));
  }

  private static final class Fixture implements AutoCloseable {
    final NDManager manager = NDManager.newBaseManager();
    final LlamaModel model;
    final KvBlockPool pool;

    Fixture(String name, ModelConfig config) throws java.io.IOException {
      Path modelDir = dir.resolve(name);
      if (!modelDir.resolve("config.json").toFile().exists()) {
        RandomCheckpoint.write(modelDir, config, 7, DType.F32, 0);
      }
      try (Checkpoint ckpt = Checkpoint.load(modelDir)) {
        model = LlamaModel.load(ckpt, manager, 512);
      }
      pool =
          KvBlockPool.withBudget(
              config.numLayers(),
              config.numKvHeads(),
              config.headDim(),
              16,
              8L << 20,
              KvDtype.FLOAT32);
    }

    /** Cache-free logits for every position of {@code tokens}: (T, vocab). */
    float[][] reference(int[] tokens) {
      try (NDScope scope = new NDScope()) {
        scope.suppressNotUsedWarning();
        long[] ids = new long[tokens.length];
        for (int i = 0; i < ids.length; i++) {
          ids[i] = tokens[i];
        }
        NDArray logits = model.forwardFull(manager.create(ids).reshape(1, tokens.length));
        return rows(logits.toFloatArray(), tokens.length);
      }
    }

    float[][] rows(float[] flat, int n) {
      int vocab = model.config().vocabSize();
      float[][] out = new float[n][vocab];
      for (int i = 0; i < n; i++) {
        System.arraycopy(flat, i * vocab, out[i], 0, vocab);
      }
      return out;
    }

    /** Feeds tokens[from, to) to the table's sequence, returning logits for every fed row. */
    float[][] step(BlockTable table, int[] tokens, int from, int to) {
      table.reserve(to);
      int[] rows = new int[to - from];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = i;
      }
      SeqStep s =
          new SeqStep(java.util.Arrays.copyOfRange(tokens, from, to), from, table, rows, false);
      return model.forward(List.of(s), pool).get(0).logits();
    }

    @Override
    public void close() {
      pool.close();
      model.close();
      manager.close();
    }
  }

  private static int[] randomTokens(int n, int vocab, long seed) {
    Random r = new Random(seed);
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = r.nextInt(vocab);
    }
    return t;
  }

  private static float maxAbsDiff(float[][] a, float[][] b) {
    assertThat(a.length).isEqualTo(b.length);
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      for (int j = 0; j < a[i].length; j++) {
        max = Math.max(max, Math.abs(a[i][j] - b[i][j]));
      }
    }
    return max;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void incrementalDecodeThroughPagedCacheEqualsFullForward(String name, ModelConfig config)
      throws Exception {
    try (Fixture f = new Fixture(name, config);
        BlockTable table = new BlockTable(f.pool)) {
      int[] tokens = randomTokens(45, config.vocabSize(), 1);
      float[][] expected = f.reference(tokens);
      List<float[]> got = new ArrayList<>(List.of(f.step(table, tokens, 0, 20)));
      for (int i = 20; i < tokens.length; i++) {
        got.add(f.step(table, tokens, i, i + 1)[0]);
      }
      assertThat(maxAbsDiff(got.toArray(new float[0][]), expected)).isLessThan(TOLERANCE);
      // The logits are not degenerate: positions differ from each other.
      assertThat(maxAbsDiff(new float[][] {expected[3]}, new float[][] {expected[4]}))
          .isGreaterThan(0.01f);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void chunkedPrefillEqualsOneShotAndScoringKEqualsKSingleSteps(String name, ModelConfig config)
      throws Exception {
    try (Fixture f = new Fixture(name, config);
        BlockTable oneShot = new BlockTable(f.pool);
        BlockTable chunked = new BlockTable(f.pool);
        BlockTable single = new BlockTable(f.pool)) {
      int[] tokens = randomTokens(70, config.vocabSize(), 2);
      float[][] a = f.step(oneShot, tokens, 0, 70);
      List<float[]> b = new ArrayList<>();
      for (int from = 0; from < 70; from += 17) {
        b.addAll(List.of(f.step(chunked, tokens, from, Math.min(70, from + 17))));
      }
      assertThat(maxAbsDiff(b.toArray(new float[0][]), a)).isLessThan(TOLERANCE);

      // A 5-token score after a 30-token prefix equals 5 single decode steps.
      f.step(single, tokens, 0, 30);
      List<float[]> singles = new ArrayList<>();
      for (int i = 30; i < 35; i++) {
        singles.add(f.step(single, tokens, i, i + 1)[0]);
      }
      float[][] k = java.util.Arrays.copyOfRange(a, 30, 35);
      assertThat(maxAbsDiff(singles.toArray(new float[0][]), k)).isLessThan(TOLERANCE);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void batchedForwardEqualsPerSequenceForwards(String name, ModelConfig config) throws Exception {
    try (Fixture f = new Fixture(name, config)) {
      int vocab = config.vocabSize();
      int[][] seqs = {
        randomTokens(33, vocab, 3), randomTokens(9, vocab, 4), randomTokens(50, vocab, 5)
      };
      int[] prefix = {30, 4, 47}; // then each feeds a different number of new tokens in one batch
      List<BlockTable> tables = new ArrayList<>();
      List<SeqStep> batch = new ArrayList<>();
      for (int i = 0; i < seqs.length; i++) {
        BlockTable t = new BlockTable(f.pool);
        tables.add(t);
        f.step(t, seqs[i], 0, prefix[i]);
        t.reserve(seqs[i].length);
        int n = seqs[i].length - prefix[i];
        int[] rows = new int[n];
        for (int r = 0; r < n; r++) {
          rows[r] = r;
        }
        batch.add(
            new SeqStep(
                java.util.Arrays.copyOfRange(seqs[i], prefix[i], seqs[i].length),
                prefix[i],
                t,
                rows,
                false));
      }
      List<StepResult> results = f.model.forward(batch, f.pool);
      for (int i = 0; i < seqs.length; i++) {
        float[][] expected =
            java.util.Arrays.copyOfRange(f.reference(seqs[i]), prefix[i], seqs[i].length);
        assertThat(maxAbsDiff(results.get(i).logits(), expected))
            .as("sequence %d", i)
            .isLessThan(TOLERANCE);
      }
      tables.forEach(BlockTable::close);
      assertThat(f.pool.freeBlocks()).isEqualTo(f.pool.totalBlocks());
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void capturedAttentionIsACausalDistributionPerHead(String name, ModelConfig config)
      throws Exception {
    try (Fixture f = new Fixture(name, config);
        BlockTable table = new BlockTable(f.pool)) {
      int[] tokens = randomTokens(12, config.vocabSize(), 6);
      table.reserve(12);
      SeqStep s = new SeqStep(tokens, 0, table, new int[] {11}, true);
      float[][] attention = f.model.forward(List.of(s), f.pool).get(0).attention();
      assertThat(attention.length).isEqualTo(config.numLayers());
      int heads = config.numHeads();
      for (float[] layer : attention) {
        assertThat(layer).hasSize(heads * 12 * 12);
        for (int h = 0; h < heads; h++) {
          for (int q = 0; q < 12; q++) {
            double sum = 0;
            for (int k = 0; k < 12; k++) {
              float p = layer[(h * 12 + q) * 12 + k];
              if (k > q) {
                assertThat(p).as("future key %d of query %d", k, q).isEqualTo(0f);
              }
              sum += p;
            }
            assertThat(sum).isCloseTo(1.0, org.assertj.core.data.Offset.offset(1e-5));
          }
        }
      }
    }
  }
}
