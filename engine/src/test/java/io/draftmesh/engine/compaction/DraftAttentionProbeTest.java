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
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The probe's chunked, window-only capture must equal the attention of one uncompressed forward
 * over prompt and lookahead tokens (fp32, different chunking: 1e-5 on probabilities), and its
 * lookahead tokens must be that forward's greedy continuation.
 */
class DraftAttentionProbeTest {
  private static final float TOLERANCE = 1e-5f;

  @TempDir static Path dir;
  static NDManager manager;
  static LlamaModel model;

  @BeforeAll
  static void load() throws Exception {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    RandomCheckpoint.write(dir, config, 3, DType.F32, 0);
    manager = NDManager.newBaseManager();
    try (Checkpoint ckpt = Checkpoint.load(dir)) {
      model = LlamaModel.load(ckpt, manager, 2048);
    }
  }

  @AfterAll
  static void close() {
    model.close();
    manager.close();
  }

  @Test
  void capturesTheLastWindowRowsAndEachLookaheadStepLikeOneFullForward() {
    int length = 600; // more than one prefill chunk before the window
    int[] prompt = new Random(9).ints(length, 2, 512).toArray();
    DraftAttentionProbe.Result r = DraftAttentionProbe.run(model, prompt, 64, 3);
    assertThat(r.lookaheadTokens()).hasSize(3);
    assertThat(r.steps()).hasSize(2);
    assertThat(r.prefill().queries()).isEqualTo(64);
    assertThat(r.prefill().keys()).isEqualTo(length);

    int[] all = new int[length + 2];
    System.arraycopy(prompt, 0, all, 0, length);
    all[length] = r.lookaheadTokens()[0];
    all[length + 1] = r.lookaheadTokens()[1];
    ModelConfig mc = model.config();
    try (KvBlockPool pool =
            KvBlockPool.withBudget(
                mc.numLayers(), mc.numKvHeads(), mc.headDim(), 16, 64L << 20, KvDtype.FLOAT32);
        BlockTable table = new BlockTable(pool)) {
      table.reserve(all.length);
      int[] rows = {length - 1, length, length + 1};
      StepResult full = model.forward(List.of(new SeqStep(all, 0, table, rows, true)), pool).get(0);
      int n = all.length;
      for (int l = 0; l < mc.numLayers(); l++) {
        for (int h = 0; h < mc.numHeads(); h++) {
          for (int q = 0; q < 64; q++) {
            int pos = length - 64 + q;
            for (int j = 0; j < length; j += 7) {
              assertThat(r.prefill().prob(l, h, q, j))
                  .isCloseTo(full.attention()[l][(h * n + pos) * n + j], within());
            }
          }
          for (int s = 0; s < 2; s++) {
            int pos = length + s;
            for (int j = 0; j <= pos; j += 5) {
              assertThat(r.steps().get(s).prob(l, h, 0, j))
                  .isCloseTo(full.attention()[l][(h * n + pos) * n + j], within());
            }
          }
        }
      }
      for (int s = 0; s < 3; s++) {
        assertThat(r.lookaheadTokens()[s]).isEqualTo(DraftAttentionProbe.argmax(full.logits()[s]));
      }
    }
  }

  @Test
  void aShortPromptObservesAllOfItAndItsOwnPoolIsFreed() {
    DraftAttentionProbe.Result r = DraftAttentionProbe.run(model, new int[] {5, 6, 7}, 64, 1);
    assertThat(r.prefill().queries()).isEqualTo(3);
    assertThat(r.steps()).isEmpty();
    assertThat(r.lookaheadTokens()).hasSize(1);
  }

  @Test
  void rejectsAPromptPastTheContextAndBadCounts() {
    assertThatThrownBy(() -> DraftAttentionProbe.run(model, new int[2048], 64, 2))
        .hasMessageContaining("prompt_ids: 2048 tokens + 1 lookahead steps");
    assertThatThrownBy(() -> DraftAttentionProbe.run(model, new int[4], 64, 0))
        .hasMessageContaining("lookahead_tokens: 0");
  }

  private static org.assertj.core.data.Offset<Float> within() {
    return org.assertj.core.data.Offset.offset(TOLERANCE);
  }
}
