package io.draftmesh.engine.compaction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.runtime.Compaction;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A compacted prefix copied out of one engine ({@link Sequence#compact} with export) and restored
 * into a sequence of another ({@link InferenceEngine#openCompacted}) predicts what the compacting
 * sequence predicts after the same suffix, on both backends, and holds only its kept slots' blocks.
 *
 * <p>Probabilities within {@link #RUN_TO_RUN}: the restored KV is the same bytes and the suffix the
 * same steps, but the thread split of a step is not fixed (SequenceCompactionTest: ~5e-10), while a
 * wrongly placed slot moves them by ~1e-3 (the negative control below).
 */
class CompactedCacheRestoreTest {
  private static final float RUN_TO_RUN = 1e-6f;
  private static final ResultOptions FULL = new ResultOptions(0, true);
  private static final int PREFIX = 80;
  private static final int BUDGET = 24;

  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void write() throws Exception {
    model = dir.resolve("gqa");
    RandomCheckpoint.write(model, RandomCheckpoint.tinyGqa(), 41, DType.F32, 0);
  }

  static InferenceEngine engine(Backend backend) {
    return InferenceEngine.load(
        EngineConfig.defaults(model)
            .withBackend(backend)
            .withKvBudgetBytes(2L << 20)
            .withMaxContext(512)
            .withMaxBatchTokens(128));
  }

  static int[] ids(int n, int seed) {
    return new java.util.Random(seed).ints(n, 2, 200).toArray();
  }

  static float maxDiff(float[] a, float[] b) {
    float max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  /** The compacted prefix of {@code prefix}, the prediction after {@code suffix}, 3 more steps. */
  record Path3(CompactedCache cache, Position next, List<Position> steps) {}

  static Path3 compactThenFeed(InferenceEngine e, KvPolicy policy, int[] prefix, int[] suffix) {
    Sequence s = e.open(prefix, SamplingParams.GREEDY, "compacting");
    try {
      Compaction c = s.compact(policy, BUDGET, prefix.length, ResultOptions.NONE, true).join();
      assertThat(c.cache()).isNotNull();
      assertThat(c.cache().kept()).isEqualTo(BUDGET);
      s.appendPrompt(suffix).join();
      Position next = s.prefill(FULL).join();
      List<Position> steps = s.score(new int[] {5, 6, 7}, FULL).join();
      return new Path3(c.cache(), next, steps);
    } finally {
      s.closeAsync().join();
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void aRestoredPrefixPredictsAsTheCompactingSequenceDid(Backend backend) {
    int[] prefix = ids(PREFIX, 1);
    int[] suffix = ids(11, 2);
    int[] prompt = concat(prefix, suffix);
    for (KvPolicy policy :
        List.of(
            new SnapKvPolicy(8, 7, SnapKvPolicy.Reduction.MAX, SnapKvPolicy.Pool.MAX),
            new StreamingLlmPolicy(4),
            new H2oPolicy(8))) {
      Path3 fresh;
      try (InferenceEngine a = engine(backend)) {
        fresh = compactThenFeed(a, policy, prefix, suffix);
      }
      try (InferenceEngine b = engine(backend)) {
        int free = b.freeBlocks();
        Sequence s = b.openCompacted(prompt, fresh.cache(), SamplingParams.GREEDY, "restored");
        try {
          int bs = b.pool().blockSize();
          assertThat(s.kvBlocks()).isEqualTo((BUDGET + bs - 1) / bs);
          Position next = s.prefill(FULL).join();
          assertThat(next.tokenId()).isEqualTo(fresh.next().tokenId());
          assertThat(maxDiff(next.full().toDense(), fresh.next().full().toDense()))
              .isLessThan(RUN_TO_RUN);
          List<Position> steps = s.score(new int[] {5, 6, 7}, FULL).join();
          for (int i = 0; i < steps.size(); i++) {
            assertThat(
                    maxDiff(steps.get(i).full().toDense(), fresh.steps().get(i).full().toDense()))
                .as("%s step %d", policy.name(), i)
                .isLessThan(RUN_TO_RUN);
          }
          assertThat(s.kvBlocks()).isEqualTo((BUDGET + suffix.length + 3 + bs - 1) / bs);
          // The compacted prefix cannot be rolled back into.
          assertThatThrownBy(() -> s.truncate(PREFIX - 1).join())
              .hasCauseInstanceOf(EngineException.class);
          // Its blocks were never keyed: nothing of it entered the prefix cache.
          assertThat(b.prefixCache().stats().cachedBlocks()).isZero();
        } finally {
          s.closeAsync().join();
        }
        assertThat(b.freeBlocks()).isEqualTo(free);
        assertThat(b.promptTokensComputed()).as("only the suffix counts").isEqualTo(suffix.length);
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR"})
  void slotsRestoredToTheWrongHeadsChangeThePrediction(Backend backend) {
    // Negative control: the comparison above sees a misplaced slot.
    int[] prefix = ids(PREFIX, 3);
    int[] suffix = ids(9, 4);
    Path3 fresh;
    try (InferenceEngine a = engine(backend)) {
      fresh = compactThenFeed(a, new StreamingLlmPolicy(4), prefix, suffix);
    }
    byte[] kv = fresh.cache().kv().clone();
    // Every layer's keys and values with heads 0 and 1 swapped.
    int[][][] pos = fresh.cache().positions();
    int parts = 2 * pos.length;
    int heads = pos[0].length;
    int headBytes = kv.length / parts / heads;
    for (int part = 0; part < parts; part++) {
      int base = part * heads * headBytes;
      for (int i = 0; i < headBytes; i++) {
        byte t = kv[base + i];
        kv[base + i] = kv[base + headBytes + i];
        kv[base + headBytes + i] = t;
      }
    }
    CompactedCache wrong =
        new CompactedCache(fresh.cache().promptTokens(), fresh.cache().positions(), kv);
    try (InferenceEngine b = engine(backend)) {
      Sequence s = b.openCompacted(concat(prefix, suffix), wrong, SamplingParams.GREEDY, "wrong");
      try {
        Position next = s.prefill(FULL).join();
        assertThat(maxDiff(next.full().toDense(), fresh.next().full().toDense()))
            .isGreaterThan(100 * RUN_TO_RUN);
      } finally {
        s.closeAsync().join();
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR"})
  void aCacheThatDoesNotFitIsRefusedAndTakesNoSession(Backend backend) {
    int[] prefix = ids(PREFIX, 5);
    int[] suffix = ids(5, 6);
    try (InferenceEngine e = engine(backend)) {
      CompactedCache c = compactThenFeed(e, new StreamingLlmPolicy(4), prefix, suffix).cache();
      int free = e.freeBlocks();
      assertThatThrownBy(() -> e.openCompacted(prefix, c, SamplingParams.GREEDY, "same"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("shorter than the prompt");
      CompactedCache oneLayer = new CompactedCache(PREFIX, Arrays.copyOf(c.positions(), 1), c.kv());
      assertThatThrownBy(
              () -> e.openCompacted(concat(prefix, suffix), oneLayer, SamplingParams.GREEDY, "x"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("1 layers");
      CompactedCache shortKv =
          new CompactedCache(PREFIX, c.positions(), Arrays.copyOf(c.kv(), c.kv().length - 4));
      assertThatThrownBy(
              () -> e.openCompacted(concat(prefix, suffix), shortKv, SamplingParams.GREEDY, "x"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("compacted kv:");
      assertThat(e.activeSessions()).isZero();
      assertThat(e.freeBlocks()).isEqualTo(free);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR"})
  void nothingIsExportedWhenNothingWasDroppedOrAskedFor(Backend backend) {
    int[] prefix = ids(20, 7);
    try (InferenceEngine e = engine(backend)) {
      Sequence s = e.open(prefix, SamplingParams.GREEDY, "all");
      try {
        assertThat(
                s.compact(new StreamingLlmPolicy(4), 64, 20, ResultOptions.NONE, true)
                    .join()
                    .cache())
            .as("a budget covering the prefix keeps the plain cache")
            .isNull();
      } finally {
        s.closeAsync().join();
      }
      Sequence t = e.open(ids(PREFIX, 8), SamplingParams.GREEDY, "not asked");
      try {
        assertThat(
                t.compact(new StreamingLlmPolicy(4), BUDGET, PREFIX, ResultOptions.NONE)
                    .join()
                    .cache())
            .isNull();
      } finally {
        t.closeAsync().join();
      }
    }
  }

  static int[] concat(int[] x, int[] y) {
    int[] out = Arrays.copyOf(x, x.length + y.length);
    System.arraycopy(y, 0, out, x.length, y.length);
    return out;
  }
}
