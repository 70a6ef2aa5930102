package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.open;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * UNAVAILABLE and NOT_SERVING until the engine is warm; SERVING after; a failed load stays down.
 */
class WarmUpAndDrainTest {
  @TempDir Path dir;

  @Test
  void unavailableWhileWarmingUpThenServing() throws Exception {
    EngineConfig config = TinyModel.config(TinyModel.write(dir));
    CountDownLatch release = new CountDownLatch(1);
    try (InProcessWorker w =
        InProcessWorker.start(
            WorkerConfig.Role.DRAFT,
            () -> {
              awaitUninterruptibly(release);
              return TinyModel.load(config);
            })) {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(w.channel);
      assertThat(status(health, "")).isEqualTo(ServingStatus.NOT_SERVING);
      assertThat(status(health, WorkerServer.SERVICE_NAME)).isEqualTo(ServingStatus.NOT_SERVING);
      assertThatThrownBy(() -> w.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
                assertThat(e.getStatus().getDescription()).isEqualTo("model is warming up");
              });
      try (SessionStream s = w.session()) {
        Status st = s.fails(open(1, 2, 3));
        assertThat(st.getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(st.getDescription()).isEqualTo("model is warming up");
      }

      release.countDown();
      w.server.awaitReady(Duration.ofMinutes(1));
      assertThat(status(health, "")).isEqualTo(ServingStatus.SERVING);
      assertThat(status(health, WorkerServer.SERVICE_NAME)).isEqualTo(ServingStatus.SERVING);
      assertThat(w.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance()).getRole())
          .isEqualTo("draft");
      try (SessionStream s = w.session()) {
        assertThat(s.call(open(1, 2, 3)).getLength()).isEqualTo(3);
      }
      Leaks.awaitAllFree(w.engine());
    }
  }

  @Test
  void drainLetsOpenSessionsFinishWithinTheGraceThenCancelsThem() throws Exception {
    EngineConfig config = TinyModel.config(TinyModel.write(dir));
    InProcessWorker w =
        InProcessWorker.ready(WorkerConfig.Role.TARGET, () -> TinyModel.load(config));
    var engine = w.engine();
    SessionStream s = w.session();
    s.call(open(1, 2, 3));
    Thread closer = new Thread(w.server::close);
    closer.start();
    // Within the grace period the open session keeps working.
    Thread.sleep(100);
    assertThat(s.call(SessionStream.propose(2)).getLength()).isEqualTo(5);
    // New calls are refused while draining.
    assertThatThrownBy(() -> w.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance()))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
    // After the grace period (2 s in InProcessWorker) the session is cancelled.
    closer.join(TimeUnit.SECONDS.toMillis(20));
    assertThat(closer.isAlive()).isFalse();
    assertThat(s.awaitEnd().getCode()).isIn(Status.Code.CANCELLED, Status.Code.UNAVAILABLE);
    assertThat(engine.activeSessions()).isZero();
    w.close();
  }

  @Test
  void failedLoadStaysNotServing() throws Exception {
    try (InProcessWorker w =
        InProcessWorker.start(
            WorkerConfig.Role.TARGET,
            () -> {
              throw new IllegalStateException("no such checkpoint");
            })) {
      assertThatThrownBy(() -> w.server.awaitReady(Duration.ofSeconds(30)))
          .hasMessageContaining("model failed to load");
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(w.channel);
      assertThat(status(health, "")).isEqualTo(ServingStatus.NOT_SERVING);
      assertThatThrownBy(() -> w.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getDescription()).isEqualTo("model failed to load"));
    }
  }

  private static ServingStatus status(HealthGrpc.HealthBlockingStub health, String service) {
    return health.check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  private static void awaitUninterruptibly(CountDownLatch latch) {
    try {
      latch.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
