package io.draftmesh.engine.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InferenceEngineTest {
  @TempDir static Path dir;
  static InferenceEngine engine;
  static final ResultOptions FULL = new ResultOptions(0, true);

  @BeforeAll
  static void load() throws Exception {
    RandomCheckpoint.write(dir.resolve("tiny"), RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
    engine =
        InferenceEngine.load(
            EngineConfig.defaults(dir.resolve("tiny"))
                .withKvBudgetBytes(4L << 20)
                .withMaxSessions(8));
    engine.warmUp();
  }

  @AfterAll
  static void close() {
    engine.close();
  }

  static int[] prompt(int n, int seed) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = (i * 37 + seed * 101) % engine.vocabSize();
    }
    return p;
  }

  static float maxDiff(Position a, Position b) {
    float[] x = a.full().toDense();
    float[] y = b.full().toDense();
    float max = 0;
    for (int i = 0; i < x.length; i++) {
      max = Math.max(max, Math.abs(x[i] - y[i]));
    }
    return max;
  }

  @Test
  void truncateThenAppendEqualsAFreshSession() {
    int[] p = prompt(20, 1);
    Sequence s = engine.open(p, SamplingParams.GREEDY, "rollback");
    s.prefill(FULL).join();
    s.score(new int[] {5, 6, 7, 8, 9, 10}, FULL).join();
    s.truncate(23).join(); // keep 5, 6, 7
    List<Position> afterRollback = s.score(new int[] {40, 41}, FULL).join();
    assertThat(s.length()).isEqualTo(25);

    int[] whole = Arrays.copyOf(p, 23);
    whole[20] = 5;
    whole[21] = 6;
    whole[22] = 7;
    Sequence fresh = engine.open(whole, SamplingParams.GREEDY, "fresh");
    fresh.prefill(FULL).join();
    List<Position> expected = fresh.score(new int[] {40, 41}, FULL).join();
    for (int i = 0; i < 3; i++) {
      assertThat(maxDiff(afterRollback.get(i), expected.get(i))).isLessThan(1e-5f);
    }
    s.closeAsync().join();
    fresh.closeAsync().join();
  }

  @Test
  void greedySelfSpeculationAcceptsEveryProposedTokenAndAddsABonus() {
    Sequence draft = engine.open(prompt(10, 2), SamplingParams.GREEDY, "draft");
    Sequence target = engine.open(prompt(10, 2), SamplingParams.GREEDY, "target");
    draft.prefill(ResultOptions.NONE).join();
    target.prefill(ResultOptions.NONE).join();
    Proposal proposal = draft.propose(6, 0f, ResultOptions.NONE).join();
    assertThat(proposal.tokens()).hasSize(6);
    Verification v = target.verify(proposal.tokens(), null, ResultOptions.NONE).join();
    assertThat(v.accepted()).isEqualTo(6);
    assertThat(v.bonus()).isTrue();
    assertThat(target.length()).isEqualTo(10 + 6 + 1);
    // The bonus token is what the draft would have generated next.
    Proposal next = draft.propose(1, 0f, ResultOptions.NONE).join();
    assertThat(next.tokens()[0]).isEqualTo(v.nextToken());
    // A wrong draft token is rejected at its position and replaced by the target's choice.
    int[] wrong = draft.propose(3, 0f, ResultOptions.NONE).join().tokens();
    int expectedCorrection = wrong[1];
    wrong[1] = (wrong[1] + 1) % engine.vocabSize();
    assertThat(draft.length()).isEqualTo(target.length() + 3);
    Verification r =
        target.verify(new int[] {wrong[0], wrong[1], wrong[2]}, null, ResultOptions.NONE).join();
    assertThat(r.accepted()).isEqualTo(1);
    assertThat(r.nextToken()).isEqualTo(expectedCorrection);
    draft.closeAsync().join();
    target.closeAsync().join();
  }

  @Test
  void concurrentSequencesShareForwardStepsAndMatchSoloRuns() {
    int n = 4;
    int k = 12;
    List<int[]> solo = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Sequence s = engine.open(prompt(8 + i, 10 + i), SamplingParams.GREEDY, "solo" + i);
      s.prefill(ResultOptions.NONE).join();
      solo.add(s.propose(k, 0f, ResultOptions.NONE).join().tokens());
      s.closeAsync().join();
    }
    long before = engine.steps();
    List<CompletableFuture<Proposal>> futures = new ArrayList<>();
    List<Sequence> seqs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Sequence s = engine.open(prompt(8 + i, 10 + i), SamplingParams.GREEDY, "batched" + i);
      seqs.add(s);
      s.prefill(ResultOptions.NONE);
      futures.add(s.propose(k, 0f, ResultOptions.NONE));
    }
    for (int i = 0; i < n; i++) {
      assertThat(futures.get(i).join().tokens()).isEqualTo(solo.get(i));
    }
    long steps = engine.steps() - before;
    // Alone each needs 1 prefill + (k - 1) decode steps; batched, the decode steps are shared.
    assertThat(steps).isLessThan((long) n * k / 2);
    seqs.forEach(s -> s.closeAsync().join());
  }

  @Test
  void theSessionLimitIsResourceExhaustedAndLosesNothing() {
    List<Sequence> held = new ArrayList<>();
    while (engine.activeSessions() < engine.config().maxSessions()) {
      held.add(engine.open(prompt(4, 3), SamplingParams.GREEDY, ""));
    }
    assertThatThrownBy(() -> engine.open(prompt(4, 3), SamplingParams.GREEDY, ""))
        .isInstanceOfSatisfying(
            EngineException.class,
            e -> assertThat(e.kind()).isEqualTo(EngineException.Kind.RESOURCE_EXHAUSTED));
    held.forEach(s -> s.closeAsync().join());
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
    assertThat(engine.activeSessions()).isZero();
  }

  @Test
  void aPromptBiggerThanTheKvPoolIsResourceExhaustedAndOthersStillRun() {
    // 16 KiB per block of 16 tokens for tinyLlama: 16 blocks = 256 tokens of KV.
    EngineConfig small =
        EngineConfig.defaults(dir.resolve("tiny"))
            .withKvBudgetBytes(16 * 16384L)
            .withMaxSessions(4);
    try (InferenceEngine e = InferenceEngine.load(small)) {
      assertThat(e.info().kvBlocksTotal()).isEqualTo(16);
      Sequence big = e.open(prompt(300, 1), SamplingParams.GREEDY, "big");
      assertThatThrownBy(() -> big.prefill(ResultOptions.NONE).join())
          .isInstanceOf(CompletionException.class)
          .cause()
          .isInstanceOfSatisfying(
              EngineException.class,
              x -> assertThat(x.kind()).isEqualTo(EngineException.Kind.RESOURCE_EXHAUSTED))
          .hasMessageContaining("kv cache full");
      Sequence ok = e.open(prompt(100, 2), SamplingParams.GREEDY, "ok");
      assertThat(ok.prefill(ResultOptions.NONE).join().tokenId()).isBetween(0, e.vocabSize() - 1);
      ok.closeAsync().join();
      big.closeAsync().join();
      assertThat(e.freeBlocks()).isEqualTo(16);
    }
  }

  @Test
  void invalidInputNamesTheField() {
    assertThatThrownBy(
            () -> engine.open(new int[] {1, engine.vocabSize()}, SamplingParams.GREEDY, ""))
        .hasMessageContaining("open.prompt_ids[1]");
    assertThatThrownBy(() -> engine.open(new int[0], SamplingParams.GREEDY, ""))
        .hasMessageContaining("open.prompt_ids");
    assertThatThrownBy(() -> engine.open(new int[] {1}, new SamplingParams(-1f, 0, 0, 0, 0), ""))
        .hasMessageContaining("temperature");
    Sequence s = engine.open(prompt(5, 5), SamplingParams.GREEDY, "");
    assertThatThrownBy(() -> s.propose(0, 0f, ResultOptions.NONE))
        .hasMessageContaining("propose.k");
    assertThatThrownBy(() -> s.score(new int[] {-1}, ResultOptions.NONE))
        .hasMessageContaining("score.token_ids[0]");
    assertThatThrownBy(() -> s.truncate(99).join()).hasMessageContaining("truncate.length");
    s.closeAsync().join();
    assertThat(engine.activeSessions()).isZero();
  }

  @Test
  void closingMidProposeCancelsAndFreesEveryBlock() {
    int total = engine.info().kvBlocksTotal();
    Sequence s = engine.open(prompt(30, 6), SamplingParams.GREEDY, "cancel");
    s.prefill(ResultOptions.NONE);
    CompletableFuture<Proposal> f = s.propose(60, 0f, ResultOptions.NONE);
    int freed = s.closeAsync().join();
    assertThat(f).isCompletedExceptionally();
    assertThat(freed).isGreaterThanOrEqualTo(0);
    assertThat(engine.freeBlocks()).isEqualTo(total);
    assertThatThrownBy(() -> s.propose(1, 0f, ResultOptions.NONE).join())
        .hasMessageContaining("closed");
  }

  @Test
  void closingWhileAStepIsInFlightWaitsForItAndKeepsTheEngineRunning() throws Exception {
    // The scheduler drains its inbox while it holds a planned batch open for a lockstep client (one
    // whose op just completed), so a close can land after a sequence's step was planned and before
    // the forward runs. The close must wait for that step: freeing the blocks first would let the
    // forward write KV into blocks another session may own, and leave its result without an op.
    int total = engine.info().kvBlocksTotal();
    for (int i = 0; i < 200; i++) {
      Sequence lockstep = engine.open(prompt(8, i), SamplingParams.GREEDY, "lockstep-" + i);
      Sequence closing = engine.open(prompt(20, i + 1), SamplingParams.GREEDY, "closing-" + i);
      CompletableFuture<Proposal> proposing = closing.propose(60, 0f, ResultOptions.NONE);
      CompletableFuture<Position> settled = lockstep.prefill(ResultOptions.NONE);
      while (!settled.isDone()) {
        Thread.onSpinWait(); // react at once: the close should meet the batch being coalesced
      }
      closing.closeAsync().get(10, TimeUnit.SECONDS);
      assertThat(proposing).isCompletedExceptionally();
      Proposal next = lockstep.propose(2, 0f, ResultOptions.NONE).get(10, TimeUnit.SECONDS);
      assertThat(next.tokens()).hasSize(2);
      lockstep.closeAsync().get(10, TimeUnit.SECONDS);
    }
    assertThat(engine.freeBlocks()).isEqualTo(total);
    assertThat(engine.activeSessions()).isZero();
  }

  @Test
  void noNdArrayLeaksAcrossAThousandSteps() {
    Sequence warm = engine.open(prompt(6, 7), SamplingParams.GREEDY, "leak-warm");
    warm.prefill(ResultOptions.NONE).join();
    warm.closeAsync().join();
    int before = engine.liveArrays();
    assertThat(before).as("the counter sees the model's weights").isGreaterThan(10);
    long steps = engine.steps();
    Sequence a = engine.open(prompt(6, 8), new SamplingParams(0.8f, 40, 0.9f, 0.01f, 3), "leak-a");
    Sequence b = engine.open(prompt(9, 9), SamplingParams.GREEDY, "leak-b");
    a.prefill(ResultOptions.NONE).join();
    b.prefill(ResultOptions.NONE).join();
    for (int round = 0; round < 100; round++) {
      CompletableFuture<Proposal> pa = a.propose(5, 0f, FULL);
      CompletableFuture<Proposal> pb = b.propose(5, 0f, ResultOptions.NONE);
      pa.join();
      int[] draft = pb.join().tokens();
      b.truncate(b.length() - 5).join();
      b.verify(draft, null, ResultOptions.NONE).join();
      a.truncate(a.length() - 5).join();
      if (a.length() > 400) {
        a.truncate(10).join();
        b.truncate(10).join();
      }
    }
    a.closeAsync().join();
    b.closeAsync().join();
    assertThat(engine.steps() - steps).isGreaterThanOrEqualTo(500);
    assertThat(engine.liveArrays()).isEqualTo(before);
  }
}
