package io.draftmesh.engine.kv;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.compaction.StreamingLlmPolicy;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Prefix caching on both backends (they read the same pool): a second sequence with a cached prefix
 * prefills only the rest and predicts what a cold sequence predicts; a write into a shared block
 * copies it; idle cached blocks give way to new sequences; nothing leaks.
 *
 * <p>Tolerance: 1e-5 absolute on every probability, the same as for a rollback against a fresh
 * session. Reused KV was computed in a different chunk of the prompt, so its float sums may run in
 * a different order (the DJL backend's matmuls pick kernels by row count); the values are the same
 * function of the same tokens.
 */
class PrefixCachingTest {
  @TempDir static Path dir;
  static final ResultOptions FULL = new ResultOptions(0, true);
  static final float TOLERANCE = 1e-5f;

  @BeforeAll
  static void checkpoint() throws Exception {
    RandomCheckpoint.write(dir.resolve("tiny"), RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
  }

  static InferenceEngine engine(Backend backend, int blocks) {
    EngineConfig c =
        EngineConfig.defaults(dir.resolve("tiny"))
            .withBackend(backend)
            .withKvBudgetBytes(blocks * 16384L)
            .withMaxSessions(8);
    InferenceEngine e = InferenceEngine.load(c);
    assertThat(e.info().kvBlocksTotal()).isEqualTo(blocks);
    return e;
  }

  static int[] prompt(int n, int seed) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = (i * 37 + seed * 101 + i * i * seed) % 512;
    }
    return p;
  }

  static int[] concat(int[] a, int aLen, int[] b) {
    int[] out = Arrays.copyOf(a, aLen + b.length);
    System.arraycopy(b, 0, out, aLen, b.length);
    return out;
  }

  /** The prefill's prediction, then the predictions after each of {@code more}. */
  static List<Position> run(Sequence s, int[] more) {
    List<Position> out = new ArrayList<>();
    out.add(s.prefill(FULL).join());
    out.addAll(s.score(more, FULL).join().subList(1, more.length + 1));
    return out;
  }

  static void assertClose(List<Position> actual, List<Position> expected) {
    assertThat(actual).hasSameSizeAs(expected);
    for (int i = 0; i < actual.size(); i++) {
      float[] x = actual.get(i).full().toDense();
      float[] y = expected.get(i).full().toDense();
      float max = 0;
      for (int j = 0; j < x.length; j++) {
        max = Math.max(max, Math.abs(x[j] - y[j]));
      }
      assertThat(max).as("position %d", i).isLessThan(TOLERANCE);
      assertThat(actual.get(i).tokenId()).isEqualTo(expected.get(i).tokenId());
    }
  }

  static void assertNothingHeld(InferenceEngine e) {
    assertThat(e.activeSessions()).isZero();
    assertThat(e.freeBlocks()).isEqualTo(e.info().kvBlocksTotal());
    PrefixCache.Stats s = e.prefixCache().stats();
    assertThat(s.idleBlocks()).isEqualTo(s.cachedBlocks());
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void aSharedPrefixIsPrefilledOnceAndPredictsLikeACold(Backend backend) {
    try (InferenceEngine e = engine(backend, 32)) {
      int[] system = prompt(40, 1); // two full blocks of 16 and 8 tokens more
      int[] more = {7, 8, 9};
      Sequence first = e.open(system, SamplingParams.GREEDY, "first");
      first.prefill(ResultOptions.NONE).join();
      assertThat(first.cachedPromptTokens()).isZero();
      assertThat(e.prefixCache().stats().cachedBlocks()).isEqualTo(2);

      int[] user = concat(system, 32, prompt(11, 2)); // shares both full blocks
      long computedBefore = e.promptTokensComputed();
      long stepsBefore = e.steps();
      Sequence second = e.open(user, SamplingParams.GREEDY, "second");
      List<Position> warm = run(second, more);
      assertThat(second.cachedPromptTokens()).isEqualTo(32);
      assertThat(e.promptTokensComputed() - computedBefore).isEqualTo(11);
      assertThat(e.promptTokensCached()).isEqualTo(32);
      assertThat(e.steps() - stepsBefore).isEqualTo(2); // the 11-token prefill, then the score
      first.closeAsync().join();
      second.closeAsync().join();

      e.prefixCache().clear();
      Sequence cold = e.open(user, SamplingParams.GREEDY, "cold");
      List<Position> expected = run(cold, more);
      assertThat(cold.cachedPromptTokens()).isZero();
      cold.closeAsync().join();
      assertClose(warm, expected);
      assertNothingHeld(e);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void aFullyCachedPromptStillFeedsItsLastToken(Backend backend) {
    try (InferenceEngine e = engine(backend, 32)) {
      int[] p = prompt(32, 3); // exactly two blocks
      Sequence a = e.open(p, SamplingParams.GREEDY, "a");
      Position first = a.prefill(FULL).join();
      a.closeAsync().join();
      Sequence b = e.open(p, SamplingParams.GREEDY, "b");
      Position again = b.prefill(FULL).join();
      assertThat(b.cachedPromptTokens()).isEqualTo(16); // the block holding token 31 is fed
      b.closeAsync().join();
      assertClose(List.of(again), List.of(first));
      assertNothingHeld(e);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void writingIntoASharedBlockCopiesItFirst(Backend backend) {
    try (InferenceEngine e = engine(backend, 32)) {
      int[] p = prompt(40, 4);
      int[] more = {3, 1, 4, 1, 5};
      Sequence owner = e.open(p, SamplingParams.GREEDY, "owner");
      owner.prefill(ResultOptions.NONE).join();
      Sequence sharer = e.open(p, SamplingParams.GREEDY, "sharer");
      sharer.prefill(ResultOptions.NONE).join();
      assertThat(sharer.cachedPromptTokens()).isEqualTo(32);
      // The sharer rolls back into its second (shared) block and writes other tokens there.
      sharer.truncate(21).join();
      List<Position> rolled = sharer.score(more, FULL).join();
      // The owner still reads its own tokens' KV, and a newcomer still finds them.
      List<Position> ownerAfter = owner.score(more, FULL).join();
      Sequence newcomer = e.open(p, SamplingParams.GREEDY, "newcomer");
      List<Position> newcomerRun = run(newcomer, more);
      assertThat(newcomer.cachedPromptTokens()).isEqualTo(32);
      owner.closeAsync().join();
      sharer.closeAsync().join();
      newcomer.closeAsync().join();

      e.prefixCache().clear();
      Sequence coldOwner = e.open(p, SamplingParams.GREEDY, "cold-owner");
      coldOwner.prefill(ResultOptions.NONE).join();
      List<Position> expectedOwner = coldOwner.score(more, FULL).join();
      coldOwner.closeAsync().join();
      e.prefixCache().clear();
      Sequence coldRolled = e.open(Arrays.copyOf(p, 21), SamplingParams.GREEDY, "cold-rolled");
      coldRolled.prefill(ResultOptions.NONE).join();
      List<Position> expectedRolled = coldRolled.score(more, FULL).join();
      coldRolled.closeAsync().join();

      assertClose(ownerAfter, expectedOwner);
      assertClose(newcomerRun.subList(1, more.length + 1), expectedOwner.subList(1, 6));
      assertClose(rolled, expectedRolled);
      assertNothingHeld(e);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR"})
  void idleCachedBlocksGiveWayLeastRecentlyUsedFirst(Backend backend) {
    try (InferenceEngine e = engine(backend, 8)) {
      int[] old = prompt(33, 5); // 3 blocks, 2 full
      int[] recent = prompt(33, 6);
      for (int[] p : List.of(old, recent)) {
        Sequence s = e.open(p, SamplingParams.GREEDY, "fill");
        s.prefill(ResultOptions.NONE).join();
        s.closeAsync().join();
      }
      assertThat(e.prefixCache().stats().idleBlocks()).isEqualTo(4);
      assertThat(e.freeBlocks()).isEqualTo(8);
      // 5 blocks: the 4 unused ones and one idle block, the least recently used (old's tail).
      Sequence big = e.open(prompt(70, 7), SamplingParams.GREEDY, "big");
      big.prefill(ResultOptions.NONE).join();
      assertThat(e.prefixCache().stats().reclaimedBlocks()).isEqualTo(1);
      big.closeAsync().join();
      Sequence r = e.open(recent, SamplingParams.GREEDY, "recent");
      r.prefill(ResultOptions.NONE).join();
      assertThat(r.cachedPromptTokens()).isEqualTo(32);
      Sequence o = e.open(old, SamplingParams.GREEDY, "old");
      o.prefill(ResultOptions.NONE).join();
      assertThat(o.cachedPromptTokens()).isEqualTo(16); // its head survived, its tail did not
      r.closeAsync().join();
      o.closeAsync().join();
      // A session that needs the whole pool takes every idle block.
      Sequence all = e.open(prompt(128, 8), SamplingParams.GREEDY, "all");
      all.prefill(ResultOptions.NONE).join();
      assertThat(e.freeBlocks()).isZero();
      all.closeAsync().join();
      assertNothingHeld(e);
    }
  }

  @org.junit.jupiter.api.Test
  void turnedOffEveryPromptIsPrefilledWhole() {
    try (InferenceEngine e = engine(Backend.VECTOR, 32)) {
      int[] p = prompt(40, 12);
      Sequence a = e.open(p, SamplingParams.GREEDY, "a");
      a.prefill(ResultOptions.NONE).join();
      a.closeAsync().join();
      assertThat(e.prefixCache().stats().idleBlocks()).isEqualTo(2);
      e.prefixCache().enabled(false);
      assertThat(e.prefixCache().stats().cachedBlocks()).isZero();
      Sequence b = e.open(p, SamplingParams.GREEDY, "b");
      b.prefill(ResultOptions.NONE).join();
      assertThat(b.cachedPromptTokens()).isZero();
      b.closeAsync().join();
      assertThat(e.prefixCache().stats().cachedBlocks()).isZero();
      e.prefixCache().enabled(true);
      Sequence c = e.open(p, SamplingParams.GREEDY, "c");
      c.prefill(ResultOptions.NONE).join();
      c.closeAsync().join();
      Sequence d = e.open(p, SamplingParams.GREEDY, "d");
      d.prefill(ResultOptions.NONE).join();
      assertThat(d.cachedPromptTokens()).isEqualTo(32);
      d.closeAsync().join();
      assertNothingHeld(e);
    }
  }

  @org.junit.jupiter.api.Test
  void ownForRewriteGivesATablePrivateCopiesAndLeavesTheSharedBlocksAsTheyWere() {
    try (KvBlockPool pool =
        KvBlockPool.withBudget(1, 1, 4, 4, 8 * 2 * 4 * 4 * 4, KvDtype.FLOAT32)) {
      int[] tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9};
      BlockTable owner = new BlockTable(pool);
      owner.reserve(9);
      for (int pos = 0; pos < 9; pos++) {
        pool.keys(0).putFloat((int) owner.slot(pos) * 4 * Float.BYTES, pos + 1);
      }
      owner.publish(tokens, 9);
      BlockTable sharer = new BlockTable(pool);
      assertThat(sharer.adopt(pool.prefixCache().keys(tokens, 2))).isEqualTo(8);
      assertThat(sharer.slot(5)).isEqualTo(owner.slot(5));
      sharer.ownForRewrite(8);
      assertThat(sharer.slot(5)).isNotEqualTo(owner.slot(5));
      for (int pos = 0; pos < 8; pos++) {
        float copied = pool.keys(0).getFloat((int) sharer.slot(pos) * 4 * Float.BYTES);
        assertThat(copied).isEqualTo(pos + 1f);
        pool.keys(0).putFloat((int) sharer.slot(pos) * 4 * Float.BYTES, -1f);
      }
      for (int pos = 0; pos < 8; pos++) {
        assertThat(pool.keys(0).getFloat((int) owner.slot(pos) * 4 * Float.BYTES))
            .isEqualTo(pos + 1f);
      }
      assertThat(pool.prefixCache().cachedPrefix(pool.prefixCache().keys(tokens, 2))).isEqualTo(2);
      sharer.close();
      owner.close();
      assertThat(pool.freeBlocks()).isEqualTo(pool.totalBlocks());
      assertThat(pool.prefixCache().stats().idleBlocks()).isEqualTo(2);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void exportedBlocksImportedIntoAnotherPoolPredictLikeCold(Backend backend) {
    try (InferenceEngine a = engine(backend, 16);
        InferenceEngine b = engine(backend, 16)) {
      int[] p = prompt(45, 9);
      int[] more = {11, 12};
      Sequence s = a.open(p, SamplingParams.GREEDY, "source");
      List<Position> cold = run(s, more);
      s.closeAsync().join();

      List<byte[]> keys = a.prefixCache().keys(p, 2);
      assertThat(a.prefixCache().cachedPrefix(keys)).isEqualTo(2);
      ByteBuffer block = ByteBuffer.allocate((int) a.pool().blockBytes());
      for (byte[] key : keys) {
        block.clear();
        assertThat(a.prefixCache().exportBlock(key, block)).isTrue();
        block.flip();
        assertThat(b.prefixCache().importBlock(key, block)).isTrue();
      }
      assertThat(b.prefixCache().cachedPrefix(keys)).isEqualTo(2);
      Sequence t = b.open(p, SamplingParams.GREEDY, "imported");
      List<Position> warm = run(t, more);
      assertThat(t.cachedPromptTokens()).isEqualTo(32);
      t.closeAsync().join();
      assertClose(warm, cold);
      assertNothingHeld(a);
      assertNothingHeld(b);
    }
  }

  /** The predictions of {@code prompt} then {@code more} on a fresh engine: the cold reference. */
  static List<Position> cold(Backend backend, int[] prompt, int[] more) {
    try (InferenceEngine e = engine(backend, 32)) {
      Sequence s = e.open(prompt, SamplingParams.GREEDY, "cold");
      List<Position> out = run(s, more);
      s.closeAsync().join();
      return out;
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void compactingASequenceLeavesTheBlocksItSharesUntouched(Backend backend) {
    int[] system = prompt(40, 3);
    int[] more = {5, 6, 7};
    int[] longer = concat(system, 40, prompt(24, 4));
    try (InferenceEngine e = engine(backend, 32)) {
      Sequence first = e.open(system, SamplingParams.GREEDY, "first");
      first.prefill(ResultOptions.NONE).join();
      Sequence compacted = e.open(longer, SamplingParams.GREEDY, "compacted");
      compacted.compact(new StreamingLlmPolicy(), 20, longer.length, ResultOptions.NONE).join();
      assertThat(compacted.cachedPromptTokens()).isEqualTo(32);
      // The shared blocks still hold the prompt's KV: the live sequence and a new one agree with
      // a cold run, and the compacted cache was not published under the prompt's keys.
      assertClose(first.score(more, FULL).join(), cold(backend, system, more).subList(0, 4));
      Sequence third = e.open(longer, SamplingParams.GREEDY, "third");
      assertClose(run(third, more), cold(backend, longer, more));
      assertThat(third.cachedPromptTokens()).isEqualTo(32);
      for (Sequence s : List.of(first, compacted, third)) {
        s.closeAsync().join();
      }
      assertNothingHeld(e);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = Backend.class,
      names = {"VECTOR", "DJL"})
  void aVerifiedTreeIsNotCachedAsTheChainOfItsNodes(Backend backend) {
    int[] system = prompt(16, 5);
    int[] siblings = prompt(16, 6); // sixteen children of the last token: one full block of slots
    try (InferenceEngine e = engine(backend, 32)) {
      Sequence tree = e.open(system, SamplingParams.GREEDY, "tree");
      tree.prefill(ResultOptions.NONE).join();
      int[] parents = new int[siblings.length];
      Arrays.fill(parents, -1);
      tree.verifyTree(siblings, parents, null, ResultOptions.NONE).join();
      // Their slots held siblings, not a chain: a sequence whose prompt is that chain computes it.
      int[] chain = concat(concat(system, 16, siblings), 32, prompt(5, 7)); // 2 full blocks + 5
      Sequence reader = e.open(chain, SamplingParams.GREEDY, "reader");
      int[] more = {1, 2};
      assertClose(run(reader, more), cold(backend, chain, more));
      assertThat(reader.cachedPromptTokens()).isEqualTo(16);
      tree.closeAsync().join();
      reader.closeAsync().join();
      assertNothingHeld(e);
    }
  }
}
