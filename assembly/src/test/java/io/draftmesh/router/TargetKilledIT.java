package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import java.time.Duration;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The target worker is killed mid-stream (in-JVM workers on real ports; the kill cuts every open
 * session off at once): the client gets a clean UNAVAILABLE, the draft's session is closed and no
 * KV is held on the surviving draft worker.
 */
class TargetKilledIT {
  @Test
  void killingTheTargetMidStreamIsUnavailableAndClosesTheDraftSession() throws Exception {
    TestMesh mesh = TestMesh.get();
    WorkerServer target = TestMesh.newWorker(mesh.modelA, WorkerConfig.Role.TARGET);
    WorkerServer draft = TestMesh.newWorker(mesh.modelA, WorkerConfig.Role.DRAFT);
    target.awaitReady(Duration.ofMinutes(2));
    draft.awaitReady(Duration.ofMinutes(2));
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", "localhost:" + target.port());
    pools.put("draft", "localhost:" + draft.port());
    try (RouterServer router =
        RouterServer.onPort(mesh.config(pools, Duration.ofSeconds(5)), OpenTelemetry.noop())
            .start()) {
      ManagedChannel ch =
          Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
              .build();
      try {
        Iterator<GenerateChunk> it =
            RouterGrpc.newBlockingStub(ch)
                .withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(
                    GenerateRequest.newBuilder()
                        .setTokenIds(TokenIds.newBuilder().addIds(42).addIds(7).addIds(300))
                        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
                        .setIgnoreEos(true)
                        .setSampling(Sampling.newBuilder().setMaxTokens(900))
                        .setSpeculative(SpeculativeOptions.newBuilder().setK(4))
                        .build());
        for (int i = 0; i < 3; i++) {
          it.next();
        }
        assertThat(TestMesh.infoAt(draft.port()).getActiveSessions()).isEqualTo(1);
        target.close(); // no drain grace: open sessions are cut off at once
        StatusRuntimeException e =
            catchThrowableOfType(StatusRuntimeException.class, () -> it.forEachRemaining(c -> {}));
        assertThat(e).as("the stream must fail, not complete").isNotNull();
        assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
        assertThat(e.getStatus().getDescription()).contains("target");
        TestMesh.assertFreed("draft", draft.port());
      } finally {
        ch.shutdownNow();
        draft.close();
      }
    }
  }
}
