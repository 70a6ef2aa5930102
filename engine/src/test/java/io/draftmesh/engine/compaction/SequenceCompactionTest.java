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
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.Proposal;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.Distributions;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletionException;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link Sequence#compact} end to end in an engine, on both backends: a budget covering the prompt
 * changes nothing; SpecKV (prompt ⊕ draft answer, window scored by the target's own queries, answer
 * dropped, last prompt token re-fed) gives the predictions of {@link MaskedReference} over the kept
 * keys, frees its blocks to the pool, and keeps decoding at the original positions.
 *
 * <p>Probabilities within 1e-5 (float32 engine against a double reference: observed ~1e-7). With
 * nothing dropped the compact op runs exactly the plain prefill's steps (same chunks, same blocks),
 * yet two plain sessions of one prompt already differ by up to ~5e-10 in a probability (seen on
 * both backends: the thread split of a step is not fixed), so "identical" is checked at {@link
 * #RUN_TO_RUN} = 1e-8, far below any dropped key's effect (~1e-3 here).
 */
class SequenceCompactionTest {
  private static final float TOLERANCE = 1e-5f;
  private static final float RUN_TO_RUN = 1e-8f;
  private static final ResultOptions FULL = new ResultOptions(0, true);

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void write() throws Exception {
    model = dir.resolve("gqa");
    RandomCheckpoint.write(model, RandomCheckpoint.tinyGqa(), 31, DType.F32, 0);
  }

  static InferenceEngine engine(Backend backend) {
    return InferenceEngine.load(
        EngineConfig.defaults(model)
            .withBackend(backend)
            .withKvBudgetBytes(2L << 20)
            .withMaxContext(512)
            .withMaxBatchTokens(128)); // a 60-token prompt prefills in one step, 200 in two
  }

  static float maxDiff(float[] a, float[] b) {
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"DJL", "VECTOR"})
  void aBudgetCoveringThePromptDropsNothingAndChangesNoLogit(Backend backend) {
    int[] prompt = new Random(1).ints(200, 2, 512).toArray();
    int[] withAnswer = Arrays.copyOf(prompt, 204);
    try (InferenceEngine engine = engine(backend)) {
      Sequence plain = engine.open(prompt, SamplingParams.GREEDY, "plain");
      Position p = plain.prefill(FULL).join();
      List<Position> pScored = plain.score(new int[] {5, 6, 7}, FULL).join();
      for (String method : List.of("snapkv", "speckv", "streaming_llm")) {
        KvPolicy policy =
            switch (method) {
              case "snapkv" -> new SnapKvPolicy();
              case "speckv" -> new SpecKvPolicy();
              default -> new StreamingLlmPolicy();
            };
        // SpecKV is given a draft answer; with nothing to drop it is never read.
        int[] tokens = method.equals("speckv") ? withAnswer : prompt;
        Sequence s = engine.open(tokens, SamplingParams.GREEDY, method);
        Compaction c = s.compact(policy, 200, 200, FULL).join();
        assertThat(c.keptAll()).isTrue();
        assertThat(c.keptSlots()).isEqualTo(200);
        assertThat(c.freedBlocks()).isZero();
        assertThat(s.length()).isEqualTo(200);
        assertThat(maxDiff(c.next().full().toDense(), p.full().toDense()))
            .as(method)
            .isLessThanOrEqualTo(RUN_TO_RUN);
        List<Position> scored = s.score(new int[] {5, 6, 7}, FULL).join();
        for (int i = 0; i < scored.size(); i++) {
          assertThat(maxDiff(scored.get(i).full().toDense(), pScored.get(i).full().toDense()))
              .as(method)
              .isLessThanOrEqualTo(RUN_TO_RUN);
        }
        s.closeAsync().join();
      }
      plain.closeAsync().join();
    }
  }

  static Stream<Arguments> backendsAndCaching() {
    return Stream.of(
        Arguments.of(Backend.DJL, false),
        Arguments.of(Backend.VECTOR, false),
        Arguments.of(Backend.DJL, true),
        Arguments.of(Backend.VECTOR, true));
  }

  /**
   * With {@code cachedPrefix}, another session holds the same prompt ⊕ answer first, so the prefix
   * cache hands the compacting session blocks past the rows SpecKV observes: those rows must be
   * re-fed (to be captured), and the shared blocks must not change under the other session.
   */
  @ParameterizedTest(name = "{0}, cached prefix {1}")
  @MethodSource("backendsAndCaching")
  void specKvDecodesOnTheCompactedCacheAsTheMaskedFullCacheForward(
      Backend backend, boolean cachedPrefix) throws Exception {
    int length = 60;
    int answerTokens = 5;
    int budget = 20;
    SpecKvPolicy policy = new SpecKvPolicy(8, 3);
    int[] prompt = new Random(2).ints(length, 2, 512).toArray();
    int[] answer = {40, 41, 42, 43, 44};
    int[] fed = Arrays.copyOf(prompt, length + answerTokens);
    System.arraycopy(answer, 0, fed, length, answerTokens);
    ModelConfig mc = RandomCheckpoint.tinyGqa();

    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(model);
        LlamaModel ref = LlamaModel.load(ckpt, manager, 512);
        KvBlockPool pool =
            KvBlockPool.withBudget(
                mc.numLayers(), mc.numKvHeads(), mc.headDim(), 16, 1L << 20, KvDtype.FLOAT32);
        BlockTable table = new BlockTable(pool);
        InferenceEngine engine = engine(backend)) {
      // The reference: one uncompressed forward over prompt ⊕ answer, its window's attention, the
      // policy's selection from it, and the masked forward over that full cache.
      table.reserve(fed.length);
      int[] rows = {fed.length - 1};
      StepResult full = ref.forward(List.of(new SeqStep(fed, 0, table, rows, true)), pool).get(0);
      int observed = policy.observedQueries(answerTokens);
      AttentionRows window =
          new AttentionRows(mc.numLayers(), mc.numHeads(), mc.numKvHeads(), observed, fed.length);
      float[][] last = new float[mc.numLayers()][];
      int n = fed.length;
      for (int l = 0; l < last.length; l++) {
        last[l] = new float[mc.numHeads() * observed * n];
        for (int h = 0; h < mc.numHeads(); h++) {
          System.arraycopy(
              full.attention()[l],
              (h * n + n - observed) * n,
              last[l],
              h * observed * n,
              observed * n);
        }
      }
      window.add(last, observed, n);
      KvSelection selection =
          policy.select(mc.numLayers(), mc.numKvHeads(), window.build(), length, budget);
      assertThat(selection.refeed()).isEqualTo(1);
      MaskedReference masked = new MaskedReference(ckpt, pool, table, selection.kept());
      float[] expected = Distributions.softmax(masked.step(prompt[length - 1], length - 1));

      int total = engine.pool().totalBlocks();
      Sequence other = null;
      List<Position> otherBefore = null;
      if (cachedPrefix) {
        other = engine.open(fed, SamplingParams.GREEDY, "other");
        other.prefill(FULL).join();
        otherBefore = other.score(new int[] {9}, FULL).join();
        other.truncate(fed.length).join();
        total -= other.kvBlocks(); // held by the other session throughout
      }
      Sequence s = engine.open(fed, SamplingParams.GREEDY, "speckv");
      Compaction c = s.compact(policy, budget, length, FULL).join();
      assertThat(c.method()).isEqualTo("speckv");
      assertThat(c.keptSlots()).isEqualTo(budget + 1); // the budget, then the re-fed token
      assertThat(c.droppedSlots()).isEqualTo(length - budget - 1);
      assertThat(c.answerTokens()).isEqualTo(answerTokens);
      assertThat(c.freedBlocks()).isEqualTo(3); // 65 slots in 5 blocks, 20 in 2
      assertThat(c.keptBytes())
          .isEqualTo(
              (budget + 1L)
                  * KvBlockPool.bytesPerBlock(
                      mc.numLayers(), mc.numKvHeads(), 16, 1, KvDtype.FLOAT32));
      assertThat(engine.freeBlocks()).isEqualTo(total - 2);
      assertThat(s.length()).isEqualTo(length);
      assertThat(maxDiff(c.next().full().toDense(), expected)).isLessThan(TOLERANCE);

      // Decoding continues on the compacted cache at positions 60, 61, ...: positions[i] is the
      // prediction that produced tokens[i], so positions[0] is the compaction's own.
      Proposal proposal = s.propose(4, 0f, FULL).join();
      assertThat(proposal.tokens()[0]).isEqualTo(c.next().tokenId());
      for (int i = 1; i < 4; i++) {
        float[] want = Distributions.softmax(masked.step(proposal.tokens()[i - 1], length + i - 1));
        assertThat(maxDiff(proposal.positions().get(i).full().toDense(), want))
            .as("decode step %d", i)
            .isLessThan(TOLERANCE);
      }
      assertThat(s.length()).isEqualTo(length + 4);

      // The compacted prompt cannot be rolled back into; above it, rollback works as ever.
      assertThatThrownBy(() -> s.truncate(40).join())
          .isInstanceOf(CompletionException.class)
          .cause()
          .isInstanceOf(EngineException.class)
          .hasMessageContaining("truncate.length: 40")
          .hasMessageContaining("KV-compacted");
      s.truncate(length + 1).join();
      assertThat(s.score(new int[0], FULL).join()).hasSize(1);
      assertThat(s.closeAsync().join()).isEqualTo(2);
      if (cachedPrefix) {
        assertThat(s.cachedPromptTokens()).isPositive().isLessThanOrEqualTo(fed.length - observed);
        List<Position> otherAfter = other.score(new int[] {9}, FULL).join();
        for (int i = 0; i < otherAfter.size(); i++) {
          assertThat(
                  maxDiff(otherAfter.get(i).full().toDense(), otherBefore.get(i).full().toDense()))
              .as("the other session's KV is untouched (a rewritten block moves it ~1e-3)")
              .isLessThanOrEqualTo(RUN_TO_RUN);
        }
        other.closeAsync().join();
      }
      assertThat(engine.freeBlocks()).isEqualTo(engine.pool().totalBlocks());
    }
  }
}
