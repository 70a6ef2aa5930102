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
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import io.draftmesh.engine.runtime.Compaction;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * H2O in an engine, on both backends: the kept set of every layer and KV head equals a reference
 * computed here from one uncompressed forward's attention over the whole prompt (every query row,
 * summed over the rows and the GQA group, top {@code budget - window} before the window, plus the
 * window). The prompt prefills in two chunks, so the engine's sum spans chunks.
 */
class H2oPolicyTest {
  private static final ResultOptions FULL = new ResultOptions(0, true);
  private static final int LENGTH = 200;
  private static final int BUDGET = 48;
  private static final int WINDOW = 16;

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void write() throws Exception {
    model = dir.resolve("gqa");
    RandomCheckpoint.write(model, RandomCheckpoint.tinyGqa(), 41, DType.F32, 0);
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"DJL", "VECTOR"})
  void keepsTheWindowAndThePositionsWithTheMostAttentionFromEveryPromptQuery(Backend backend)
      throws Exception {
    int[] prompt = new Random(3).ints(LENGTH, 2, 512).toArray();
    ModelConfig mc = RandomCheckpoint.tinyGqa();
    float[][] attention; // per layer (heads, LENGTH, LENGTH): every row of the prompt
    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(model);
        LlamaModel ref = LlamaModel.load(ckpt, manager, 512);
        KvBlockPool pool =
            KvBlockPool.withBudget(
                mc.numLayers(), mc.numKvHeads(), mc.headDim(), 16, 1L << 20, KvDtype.FLOAT32);
        BlockTable table = new BlockTable(pool)) {
      table.reserve(LENGTH);
      int[] rows = {LENGTH - 1};
      StepResult full =
          ref.forward(List.of(new SeqStep(prompt, 0, table, rows, true)), pool).get(0);
      attention = full.attention();
    }
    int group = mc.numHeads() / mc.numKvHeads();
    try (InferenceEngine engine =
        InferenceEngine.load(
            EngineConfig.defaults(model)
                .withBackend(backend)
                .withKvBudgetBytes(2L << 20)
                .withMaxContext(512)
                .withMaxBatchTokens(128))) {
      int free = engine.freeBlocks();
      Sequence s = engine.open(prompt, SamplingParams.GREEDY, "h2o");
      Compaction c = s.compact(new H2oPolicy(WINDOW), BUDGET, LENGTH, FULL, true).join();
      assertThat(c.method()).isEqualTo("h2o");
      assertThat(c.keptSlots()).isEqualTo(BUDGET);
      assertThat(c.droppedSlots()).isEqualTo(LENGTH - BUDGET);
      assertThat(c.freedBlocks()).isPositive();
      int[][][] kept = c.cache().positions();
      boolean windowOnlyDiffers = false;
      for (int l = 0; l < mc.numLayers(); l++) {
        for (int kv = 0; kv < mc.numKvHeads(); kv++) {
          int[] expected = reference(attention[l], mc.numHeads(), group, kv, 0);
          assertThat(kept[l][kv]).as("layer %d kv head %d", l, kv).containsExactly(expected);
          // Negative control: SnapKV's observation (the last rows only) keeps other positions.
          int[] lastRows = reference(attention[l], mc.numHeads(), group, kv, LENGTH - WINDOW);
          windowOnlyDiffers |= !Arrays.equals(lastRows, kept[l][kv]);
        }
      }
      assertThat(windowOnlyDiffers).as("the window-only reference differs somewhere").isTrue();
      s.closeAsync().join();
      assertThat(engine.freeBlocks()).isEqualTo(free);
    }
  }

  /**
   * Independent reference over rows {@code [fromRow, LENGTH)}: score(j) = Σ over group heads and
   * rows of p[h][r][j] (double), candidates j < LENGTH - WINDOW, the best BUDGET - WINDOW (by
   * score, then lower j), ascending, then the window.
   */
  private static int[] reference(float[] layer, int heads, int group, int kv, int fromRow) {
    int candidates = LENGTH - WINDOW;
    double[] score = new double[candidates];
    for (int g = 0; g < group; g++) {
      int h = kv * group + g;
      for (int r = fromRow; r < LENGTH; r++) {
        for (int j = 0; j < candidates; j++) {
          score[j] += layer[(h * LENGTH + r) * LENGTH + j];
        }
      }
    }
    int k = BUDGET - WINDOW;
    int[] top =
        IntStream.range(0, candidates)
            .boxed()
            .sorted((a, b) -> score[a] != score[b] ? Double.compare(score[b], score[a]) : a - b)
            .limit(k)
            .mapToInt(Integer::intValue)
            .sorted()
            .toArray();
    return IntStream.concat(Arrays.stream(top), IntStream.range(candidates, LENGTH)).toArray();
  }

  @Test
  void summedRowsAddEveryChunksRowsPerHead() {
    // 2 heads, rows over 3 keys arriving in chunks of 1 then 2 rows, the first over 1 key.
    AttentionRows rows = AttentionRows.summed(1, 2, 1, 3, 3);
    rows.add(new float[][] {{1f, 2f}}, 1, 1);
    rows.add(
        new float[][] {{0.5f, 0.5f, 0f, 0.2f, 0.3f, 0.5f, 0.25f, 0.25f, 0.5f, 0.1f, 0.1f, 0.8f}},
        2,
        3);
    CapturedAttention a = rows.build();
    assertThat(a.queries()).isEqualTo(1);
    assertThat(new float[] {a.prob(0, 0, 0, 0), a.prob(0, 0, 0, 1), a.prob(0, 0, 0, 2)})
        .containsExactly(1.7f, 0.8f, 0.5f);
    assertThat(new float[] {a.prob(0, 1, 0, 0), a.prob(0, 1, 0, 1), a.prob(0, 1, 0, 2)})
        .containsExactly(2.35f, 0.35f, 1.3f);
  }

  @Test
  void defaultsAndBadParametersNameTheField() {
    KvPolicy p = KvPolicies.of("c.", "h2o", 64, 0, 0, -1);
    assertThat(p).isInstanceOf(H2oPolicy.class);
    assertThat(p.parameters()).containsEntry("window", 32L).hasSize(1);
    assertThat(KvPolicies.of("c.", "h2o", 64, 8, 0, -1).parameters()).containsEntry("window", 8L);
    assertThatThrownBy(() -> KvPolicies.of("c.", "h2o", 64, 65, 0, -1))
        .isInstanceOf(EngineException.class)
        .hasMessageContaining("c.window: 65");
    assertThatThrownBy(() -> KvPolicies.of("c.", "h2o", 64, 0, 7, -1))
        .isInstanceOf(EngineException.class)
        .hasMessageContaining("c.kernel: 7");
    assertThatThrownBy(() -> KvPolicies.of("c.", "pyramidkv", 64, 0, 0, -1))
        .hasMessageContaining("c.method: \"pyramidkv\"");
  }

  @Test
  void aBudgetOfAtLeastThePromptKeepsEverythingAndTheSumRowIsRequired() {
    H2oPolicy p = new H2oPolicy(4);
    assertThat(p.select(1, 1, null, 10, 10).keepsAll()).isTrue();
    CapturedAttention rowsNotSummed = Attention.random(1, 1, 2, 1, 3, 20);
    assertThatThrownBy(() -> p.select(1, 1, rowsNotSummed, 20, 8))
        .hasMessageContaining("expected: 1, the sum");
  }
}
