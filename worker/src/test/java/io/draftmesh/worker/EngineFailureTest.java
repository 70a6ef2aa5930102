package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.grpc.Status;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.lang.reflect.Method;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine's scheduler thread dies of an Error mid-Propose: the open session ends UNAVAILABLE
 * (never hangs), its KV is freed, health turns NOT_SERVING and new sessions are refused with
 * UNAVAILABLE.
 */
class EngineFailureTest {
  static final int BIG_K = 900;

  @TempDir Path dir;

  /** Runs {@code command} on the engine's scheduler thread (package-private there: reflection). */
  static void onSchedulerThread(InferenceEngine engine, Runnable command) throws Exception {
    Method scheduler = InferenceEngine.class.getDeclaredMethod("scheduler");
    scheduler.setAccessible(true);
    Object s = scheduler.invoke(engine);
    Method submit = s.getClass().getDeclaredMethod("submit", Runnable.class);
    submit.setAccessible(true);
    submit.invoke(s, command);
  }

  static ServingStatus health(InProcessWorker w, String service) {
    return HealthGrpc.newBlockingStub(w.channel())
        .withDeadlineAfter(5, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build())
        .getStatus();
  }

  @Test
  void anErrorOnTheSchedulerThreadTurnsTheWorkerNotServing() throws Exception {
    Path model = TinyModel.write(dir);
    EngineConfig config =
        new EngineConfig(model, 4L << 20, TinyModel.BLOCK_SIZE, 4, BIG_K, BIG_K + 64, 1024);
    try (InProcessWorker worker =
        InProcessWorker.ready(WorkerConfig.Role.TARGET, () -> TinyModel.load(config))) {
      InferenceEngine engine = worker.engine();
      assertThat(health(worker, WorkerServer.SERVICE_NAME)).isEqualTo(ServingStatus.SERVING);
      try (SessionStream s = worker.session()) {
        s.call(open(TinyModel.prompt(40, 1)));
        s.send(propose(BIG_K));
        onSchedulerThread(
            engine,
            () -> {
              throw new OutOfMemoryError("injected by the test");
            });
        Status end = s.awaitEnd();
        assertThat(end.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
      }
      engine.failure().get(30, TimeUnit.SECONDS);
      Leaks.awaitAllFree(engine);
      // Health changes are pushed to watchers: wait for NOT_SERVING on the stream, no polling.
      var watch =
          HealthGrpc.newBlockingStub(worker.channel())
              .withDeadlineAfter(30, TimeUnit.SECONDS)
              .watch(HealthCheckRequest.newBuilder().setService("").build());
      ServingStatus seen = watch.next().getStatus();
      while (seen != ServingStatus.NOT_SERVING) {
        seen = watch.next().getStatus();
      }
      assertThat(health(worker, "")).isEqualTo(ServingStatus.NOT_SERVING);
      assertThat(health(worker, WorkerServer.SERVICE_NAME)).isEqualTo(ServingStatus.NOT_SERVING);
      try (SessionStream late = worker.session()) {
        Status refused = late.fails(open(TinyModel.prompt(8, 2)));
        assertThat(refused.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(refused.getDescription()).contains("engine failed");
      }
    }
  }
}
