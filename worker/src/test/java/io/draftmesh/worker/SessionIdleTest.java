package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.grpc.Status;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A caller that opens a session and then neither sends nor closes (and set no deadline) must not
 * hold its KV forever: after the idle timeout the worker ends the session with DEADLINE_EXCEEDED
 * and frees it. An op that runs longer than the timeout is work, not idleness.
 */
class SessionIdleTest {
  static final Duration IDLE = Duration.ofMillis(300);
  static final int BIG_K = 900;

  @TempDir static Path dir;
  static InProcessWorker worker;
  static InferenceEngine engine;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    // The DJL backend: the long op must outlast IDLE, and the vector backend decodes this 0.2M
    // model in ~0.3 ms a step (900 steps in ~270 ms, under IDLE); DJL's ~1-2 ms per step leaves
    // a 3-7x margin, and the test asserts the op really took longer than IDLE.
    EngineConfig config =
        new EngineConfig(
            model,
            4L << 20,
            TinyModel.BLOCK_SIZE,
            4,
            BIG_K,
            BIG_K + 64,
            1024,
            io.draftmesh.engine.model.Backend.DJL,
            0,
            io.draftmesh.engine.kv.KvDtype.FLOAT32);
    worker = InProcessWorker.ready(WorkerConfig.Role.DRAFT, () -> TinyModel.load(config), IDLE);
    engine = worker.engine();
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  @Test
  void anIdleSessionIsEndedAndFreed() throws Exception {
    try (SessionStream s = worker.session()) {
      s.call(open(TinyModel.prompt(40, 1)));
      assertThat(engine.info().activeSessions()).isEqualTo(1);
      // Nothing more is sent: the worker's idle timer ends the call.
      Status end = s.awaitEnd();
      assertThat(end.getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
      assertThat(end.getDescription()).contains("idle").contains("--session-idle-seconds");
    }
    Leaks.awaitAllFree(engine);
  }

  @Test
  void anOpLongerThanTheTimeoutIsNotIdleness() throws Exception {
    try (SessionStream s = worker.session()) {
      s.call(open(TinyModel.prompt(40, 2)));
      long t0 = System.nanoTime();
      var r = s.call(propose(BIG_K));
      assertThat(r.getProposed().getTokenIdsCount()).isEqualTo(BIG_K);
      // Only meaningful when the op outlasted the timeout; 900 decode steps take well over 300 ms
      // on any machine this runs on, and the assertion says so if not.
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThan(IDLE);
      assertThat(s.ended()).isFalse();
    }
    Leaks.awaitAllFree(engine);
  }
}
