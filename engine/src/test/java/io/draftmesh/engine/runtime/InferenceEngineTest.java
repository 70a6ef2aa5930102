package io.draftmesh.engine.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.sampling.SamplingParams;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the engine guarantees, whatever decodes: run once per backend by {@link
 * DjlInferenceEngineTest} and {@link VectorInferenceEngineTest}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class InferenceEngineTest {
  @TempDir static Path dir;
  InferenceEngine engine;
  static final ResultOptions FULL = new ResultOptions(0, true);

  /** The backend under test. */
  abstract Backend backend();

  /** The KV pool's element type; float32 unless a subclass runs the suite on float16. */
  KvDtype kvDtype() {
    return KvDtype.FLOAT32;
  }

  EngineConfig config(Path model) {
    return EngineConfig.defaults(model).withBackend(backend()).withKvDtype(kvDtype());
  }

  @BeforeAll
  void load() throws Exception {
    RandomCheckpoint.write(dir.resolve("tiny"), RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
    engine =
        InferenceEngine.load(
            config(dir.resolve("tiny")).withKvBudgetBytes(4L << 20).withMaxSessions(8));
    engine.warmUp();
    assertThat(engine.model().backend()).isEqualTo(backend());
  }

  @AfterAll
  void close() {
    engine.close();
  }

  int[] prompt(int n, int seed) {
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

  /**
   * A score of no tokens reads the prediction after the last token and keeps it: the next verify,
   * propose or score starts from it (it used to be dropped, and a verify after it failed INTERNAL
   * on the missing row).
   */
  @Test
  void anEmptyScoreKeepsThePredictionForTheNextOp() {
    int[] p = prompt(20, 4);
    Sequence s = engine.open(p, SamplingParams.GREEDY, "empty-score");
    Sequence plain = engine.open(p, SamplingParams.GREEDY, "no-empty-score");
    try {
      s.prefill(FULL).join();
      plain.prefill(FULL).join();
      Position peek = s.score(new int[0], FULL).join().get(0);
      assertThat(s.score(new int[0], FULL).join().get(0).tokenId()).isEqualTo(peek.tokenId());
      int[] draft = {peek.tokenId(), 7, 8};
      Verification v = s.verify(draft, null, FULL).join();
      Verification expected = plain.verify(draft, null, FULL).join();
      assertThat(v.accepted()).isEqualTo(expected.accepted()).isPositive();
      assertThat(v.nextToken()).isEqualTo(expected.nextToken());
      assertThat(maxDiff(v.positions().get(0), expected.positions().get(0))).isLessThan(1e-5f);
      assertThat(s.score(new int[0], FULL).join().get(0).tokenId())
          .isEqualTo(plain.score(new int[0], FULL).join().get(0).tokenId());
      assertThat(s.propose(2, 0f, FULL).join().tokens())
          .containsExactly(plain.propose(2, 0f, FULL).join().tokens());
    } finally {
      s.closeAsync().join();
      plain.closeAsync().join();
    }
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
  void concurrentSequencesShareForwardStepsAndMatchSoloRuns() throws Exception {
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
    try {
      try (Hold hold = Hold.scheduler(engine)) {
        for (int i = 0; i < n; i++) {
          Sequence s = engine.open(prompt(8 + i, 10 + i), SamplingParams.GREEDY, "batched" + i);
          seqs.add(s);
          s.prefill(ResultOptions.NONE);
          futures.add(s.propose(k, 0f, ResultOptions.NONE));
        }
      }
      for (int i = 0; i < n; i++) {
        assertThat(futures.get(i).join().tokens()).isEqualTo(solo.get(i));
      }
      // Alone each needs 1 prefill + (k - 1) decode steps; all queued at once, every step is
      // shared by all of them.
      assertThat(engine.steps() - before).isEqualTo(k);
    } finally {
      seqs.forEach(s -> s.closeAsync().join());
    }
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
    // 16 KiB per block of 16 tokens for tinyLlama in float32 (8 in float16): 16 blocks = 256
    // tokens of KV.
    long block = 16384L / Float.BYTES * kvDtype().bytes();
    EngineConfig small =
        config(dir.resolve("tiny")).withKvBudgetBytes(16 * block).withMaxSessions(4);
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
  void closingMidProposeCancelsAndFreesEveryBlock() throws Exception {
    int total = engine.info().kvBlocksTotal();
    Sequence s = engine.open(prompt(30, 6), SamplingParams.GREEDY, "cancel");
    List<CompletableFuture<Proposal>> queued;
    CountDownLatch firstDone = new CountDownLatch(1);
    CountDownLatch closeQueued = new CountDownLatch(1);
    try (Hold hold = Hold.scheduler(engine)) {
      s.prefill(ResultOptions.NONE);
      queued = proposeMany(s, 15);
      // Registered while the scheduler is held, so it runs on the scheduler thread as the first
      // propose completes, and holds it there until the close is queued: the close lands with 14
      // proposes still queued, however the threads are scheduled.
      queued.get(0).whenComplete((p, e) -> hold(firstDone, closeQueued));
    }
    assertThat(firstDone.await(30, TimeUnit.SECONDS)).isTrue();
    CompletableFuture<Integer> closing = s.closeAsync();
    closeQueued.countDown();
    int freed = closing.get(30, TimeUnit.SECONDS);
    assertThat(queued.get(0)).isCompleted().isNotCompletedExceptionally();
    assertThat(queued.subList(1, queued.size()))
        .allMatch(CompletableFuture::isCompletedExceptionally);
    assertThat(freed).isPositive();
    assertThat(engine.freeBlocks()).isEqualTo(total);
    assertThatThrownBy(() -> s.propose(1, 0f, ResultOptions.NONE).join())
        .hasMessageContaining("closed");
  }

  /** Counts {@code reached} down, then waits for {@code release}. */
  static void hold(CountDownLatch reached, CountDownLatch release) {
    reached.countDown();
    try {
      release.await(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Parks the scheduler thread between steps until closed, so that everything submitted meanwhile
   * is in its inbox when it next plans: a test of batching or cancellation then does not depend on
   * how the OS schedules the test's thread against the scheduler's.
   */
  record Hold(CountDownLatch release) implements AutoCloseable {
    static Hold scheduler(InferenceEngine engine) throws InterruptedException {
      CountDownLatch held = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      engine.scheduler().submit(() -> hold(held, release));
      assertThat(held.await(30, TimeUnit.SECONDS)).isTrue();
      return new Hold(release);
    }

    @Override
    public void close() {
      release.countDown();
    }
  }

  /** Queues {@code count} proposes of 60 tokens each. */
  static List<CompletableFuture<Proposal>> proposeMany(Sequence s, int count) {
    List<CompletableFuture<Proposal>> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      out.add(s.propose(60, 0f, ResultOptions.NONE));
    }
    return out;
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
      List<CompletableFuture<Proposal>> proposing = proposeMany(closing, 15);
      CompletableFuture<Position> settled = lockstep.prefill(ResultOptions.NONE);
      while (!settled.isDone()) {
        Thread.onSpinWait(); // react at once: the close should meet the batch being coalesced
      }
      closing.closeAsync().get(10, TimeUnit.SECONDS);
      assertThat(proposing.get(proposing.size() - 1)).isCompletedExceptionally();
      Proposal next = lockstep.propose(2, 0f, ResultOptions.NONE).get(10, TimeUnit.SECONDS);
      assertThat(next.tokens()).hasSize(2);
      lockstep.closeAsync().get(10, TimeUnit.SECONDS);
    }
    assertThat(engine.freeBlocks()).isEqualTo(total);
    assertThat(engine.activeSessions()).isZero();
  }

  @Test
  void noNativeOrOffHeapGrowthOverTenThousandSteps() throws Exception {
    Sequence warm = engine.open(prompt(6, 7), SamplingParams.GREEDY, "leak-warm");
    warm.prefill(ResultOptions.NONE).join();
    warm.closeAsync().join();
    int arraysBefore = engine.liveArrays();
    if (backend() == Backend.DJL) {
      assertThat(arraysBefore).as("the counter sees the model's weights").isGreaterThan(10);
    }
    long directBefore = settledDirectBytes(Long.MAX_VALUE);
    long steps = engine.steps();
    Sequence a = engine.open(prompt(6, 8), new SamplingParams(0.8f, 40, 0.9f, 0.01f, 3), "leak-a");
    Sequence b = engine.open(prompt(9, 9), SamplingParams.GREEDY, "leak-b");
    a.prefill(ResultOptions.NONE).join();
    b.prefill(ResultOptions.NONE).join();
    while (engine.steps() - steps < 10_000) {
      CompletableFuture<Proposal> pa = a.propose(5, 0f, FULL);
      CompletableFuture<Proposal> pb = b.propose(5, 0f, ResultOptions.NONE);
      pa.join();
      int[] draft = pb.join().tokens();
      b.truncate(b.length() - 5).join();
      b.verify(draft, null, ResultOptions.NONE).join();
      a.truncate(a.length() - 5).join();
      if (b.length() > 400) { // b grows by the verified tokens; a is back at 6 each round
        b.truncate(10).join();
      }
    }
    a.closeAsync().join();
    b.closeAsync().join();
    assertThat(engine.liveArrays()).isEqualTo(arraysBefore);
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
    // Direct buffers a step allocates are freed by the GC; none may survive it. 64 KiB of slack is
    // well under what 10,000 steps would leave behind if each kept even 8 bytes.
    long slack = 64 << 10;
    assertThat(settledDirectBytes(directBefore + slack)).isLessThanOrEqualTo(directBefore + slack);
  }

  /** Direct-buffer bytes in use after GC has had the chance to free unreachable ones. */
  private static long settledDirectBytes(long target) throws InterruptedException {
    BufferPoolMXBean direct =
        ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
            .filter(p -> p.getName().equals("direct"))
            .findFirst()
            .orElseThrow();
    long used = direct.getMemoryUsed();
    for (int i = 0; i < 20 && used > target; i++) {
      System.gc();
      Thread.sleep(50);
      used = direct.getMemoryUsed();
    }
    if (target == Long.MAX_VALUE) {
      for (int i = 0; i < 3; i++) {
        System.gc();
        Thread.sleep(50);
      }
      used = direct.getMemoryUsed();
    }
    return used;
  }
}
