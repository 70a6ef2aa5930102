package io.draftmesh.engine.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An {@link Error} on the scheduler thread (out of memory in a forward pass, say) ends the thread
 * every session depends on. Nothing may hang on it: pending ops fail with UNAVAILABLE, every
 * session's KV is freed, later calls are refused at once, and the engine reports the failure so the
 * worker can turn NOT_SERVING.
 */
class SchedulerErrorTest {
  @TempDir Path dir;

  InferenceEngine tinyEngine() throws Exception {
    RandomCheckpoint.write(dir.resolve("tiny"), RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
    return InferenceEngine.load(
        new EngineConfig(dir.resolve("tiny"), 4L << 20, 16, 4, 512, 576, 1024));
  }

  /** Asserts {@code op} failed UNAVAILABLE within 30 s; its exception. */
  static EngineException failedUnavailable(CompletableFuture<?> op) {
    ExecutionException failed =
        catchThrowableOfType(() -> op.get(30, TimeUnit.SECONDS), ExecutionException.class);
    assertThat(failed).as("the op failed").isNotNull();
    assertThat(failed.getCause()).isInstanceOf(EngineException.class);
    EngineException e = (EngineException) failed.getCause();
    assertThat(e.kind()).isEqualTo(EngineException.Kind.UNAVAILABLE);
    return e;
  }

  static Sequence prefilled(InferenceEngine engine) throws Exception {
    Sequence s = engine.open(new int[] {1, 2, 3, 4, 5}, SamplingParams.GREEDY, "victim");
    s.prefill(ResultOptions.NONE).get(30, TimeUnit.SECONDS);
    return s;
  }

  @Test
  void anErrorFailsPendingOpsAndEveryLaterCall() throws Exception {
    try (InferenceEngine engine = tinyEngine()) {
      Sequence s = prefilled(engine);
      CompletableFuture<Proposal> pending = s.propose(500, 0f, ResultOptions.NONE);
      engine
          .scheduler()
          .submit(
              () -> {
                throw new OutOfMemoryError("injected by the test");
              });

      assertThat(engine.failure().get(30, TimeUnit.SECONDS)).isInstanceOf(OutOfMemoryError.class);
      assertThat(failedUnavailable(pending).getMessage()).contains("OutOfMemoryError");
      assertThat(engine.activeSessions()).isZero();
      assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
      assertThatThrownBy(() -> engine.open(new int[] {1, 2}, SamplingParams.GREEDY, "late"))
          .isInstanceOfSatisfying(
              EngineException.class,
              e -> assertThat(e.kind()).isEqualTo(EngineException.Kind.UNAVAILABLE));
      assertThat(engine.activeSessions()).as("a refused open holds no session").isZero();
    }
  }

  /**
   * The same Error while a step is being formed: an Append finishing in planning queues the failing
   * command, which the scheduler runs while it waits for lockstep clients before the forward. The
   * sequence planned into that step must not wait for a delivery that will never come (it hung, its
   * KV never freed; the worker's EngineFailureTest caught it now and then).
   */
  @Test
  void anErrorWhileAStepIsFormedFailsTheSequencePlannedIntoIt() throws Exception {
    try (InferenceEngine engine = tinyEngine()) {
      Sequence s = prefilled(engine);
      // Submitted together from the scheduler thread (one command), so they are planned in one
      // step: the Append completes during planning, then the Propose joins the batch.
      CompletableFuture<CompletableFuture<Proposal>> queued = new CompletableFuture<>();
      engine
          .scheduler()
          .submit(
              () -> {
                s.append(new int[] {7})
                    .thenRun(
                        () ->
                            engine
                                .scheduler()
                                .submit(
                                    () -> {
                                      throw new OutOfMemoryError("injected mid-step");
                                    }));
                queued.complete(s.propose(4, 0f, ResultOptions.NONE));
              });
      CompletableFuture<Proposal> pending = queued.get(30, TimeUnit.SECONDS);

      assertThat(engine.failure().get(30, TimeUnit.SECONDS)).isInstanceOf(OutOfMemoryError.class);
      failedUnavailable(pending);
      assertThat(s.closeAsync().get(30, TimeUnit.SECONDS)).isPositive();
      assertThat(engine.activeSessions()).isZero();
      assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
    }
  }
}
