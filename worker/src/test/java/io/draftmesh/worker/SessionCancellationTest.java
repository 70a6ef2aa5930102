package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static io.draftmesh.worker.SessionStream.truncate;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Status;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Cancel and deadline mid-Propose: the work stops and every KV block returns to the pool. */
class SessionCancellationTest {
  static final int BIG_K = 900;

  @TempDir static Path dir;
  static InProcessWorker worker;
  static InferenceEngine engine;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    EngineConfig config =
        new EngineConfig(model, 4L << 20, TinyModel.BLOCK_SIZE, 4, BIG_K, BIG_K + 64, 1024);
    worker = InProcessWorker.ready(WorkerConfig.Role.DRAFT, () -> TinyModel.load(config));
    engine = worker.engine();
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  @Test
  void cancelMidProposeFreesTheSession() throws Exception {
    try (SessionStream s = worker.session()) {
      s.call(open(TinyModel.prompt(50, 1)));
      long before = engine.steps();
      s.send(propose(BIG_K));
      awaitSteps(before + 5); // the propose is running
      assertThat(engine.info().kvBlocksFree()).isLessThan(engine.info().kvBlocksTotal());
      s.cancel();
      assertThat(s.awaitEnd().getCode()).isEqualTo(Status.Code.CANCELLED);
      assertThat(s.next()).as("the propose was cut short, never answered").isNull();
    }
    Leaks.awaitAllFree(engine);
    long stepsAfterCancel = engine.steps();
    Thread.sleep(50);
    assertThat(engine.steps()).as("no work continues after cancel").isEqualTo(stepsAfterCancel);
  }

  @Test
  void deadlineMidStreamFreesTheSession() throws Exception {
    // Keep the stream busy until the deadline strikes, however fast or loaded this machine is.
    try (SessionStream s =
        SessionStream.start(worker.stub().withDeadlineAfter(1500, TimeUnit.MILLISECONDS))) {
      s.send(open(TinyModel.prompt(50, 2)));
      SessionResponse r = s.next();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (r != null && System.nanoTime() < deadline) {
        s.send(r.getLength() > 800 ? truncate(50) : propose(64));
        r = s.next();
      }
      assertThat(r).as("the deadline ended the stream").isNull();
      assertThat(s.awaitEnd().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    }
    Leaks.awaitAllFree(engine);
  }

  private static void awaitSteps(long steps) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (engine.steps() < steps && System.nanoTime() < deadline) {
      Thread.sleep(2);
    }
    assertThat(engine.steps()).isGreaterThanOrEqualTo(steps);
  }
}
