package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.flags.Keepalive;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.serving.BlackHoleProxy;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.opentelemetry.api.OpenTelemetry;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The router's lifecycle on a real port: health, and drain cancelling what outlives the grace. */
class RouterServerIT {
  @Test
  void healthIsServingAndDrainClosesTheSessionsOfRequestsThatOutliveTheGrace() throws Exception {
    TestMesh mesh = TestMesh.get();
    // The draft is reached through a proxy that the test freezes after the first chunk: the
    // request can then never finish (its draft answers stop; the draft timeout is 5 s), however
    // fast the engine is. A 1,000-token request alone finished inside the 200 ms grace on a fast
    // machine, and the drain had nothing to cut.
    try (BlackHoleProxy toDraft = new BlackHoleProxy(mesh.workers.get("same").port())) {
      RouterConfig c =
          mesh.config(
              Map.of(
                  "target", "localhost:" + mesh.workers.get("target").port(),
                  "same", "localhost:" + toDraft.port()),
              Duration.ofSeconds(5));
      RouterConfig shortDrain =
          new RouterConfig(
              0,
              c.pools(),
              c.defaultTarget(),
              c.defaultDraft(),
              c.tokenizers(),
              c.defaultMaxTokens(),
              c.maxTokensLimit(),
              c.maxConcurrent(),
              c.targetTimeout(),
              c.draftTimeout(),
              c.autoregressiveChunk(),
              Duration.ofMillis(200),
              Keepalive.DEFAULT);
      RouterServer router = RouterServer.onPort(shortDrain, OpenTelemetry.noop()).start();
      ManagedChannel ch =
          Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
              .build();
      try {
        for (String service : new String[] {"", RouterServer.SERVICE_NAME}) {
          assertThat(
                  HealthGrpc.newBlockingStub(ch)
                      .check(HealthCheckRequest.newBuilder().setService(service).build())
                      .getStatus())
              .isEqualTo(ServingStatus.SERVING);
        }
        Iterator<GenerateChunk> it =
            RouterGrpc.newBlockingStub(ch)
                .withDeadlineAfter(60, TimeUnit.SECONDS)
                .generate(
                    GenerateRequest.newBuilder()
                        .setTokenIds(TokenIds.newBuilder().addIds(9).addIds(99))
                        .setStrategy(Strategy.STRATEGY_SPECULATIVE)
                        .setDraft("same")
                        .setIgnoreEos(true)
                        .setSpeculative(SpeculativeOptions.newBuilder().setK(1))
                        .setSampling(Sampling.newBuilder().setMaxTokens(1000))
                        .build());
        assertThat(it.next().getTokenIdsCount()).isPositive();
        toDraft.blackHole();
        long t0 = System.nanoTime();
        router.close(); // 200 ms of grace, then running requests are cancelled
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(10));
        boolean failed = false;
        try {
          it.forEachRemaining(chunk -> {});
        } catch (StatusRuntimeException e) {
          failed = true;
        }
        assertThat(failed).as("the request was cut off by the drain").isTrue();
        toDraft.close(); // the frozen connection drops: the draft worker ends its session
        TestMesh.assertFreed("target", mesh.workers.get("target").port());
        TestMesh.assertFreed("same", mesh.workers.get("same").port());
      } finally {
        ch.shutdownNow();
        router.close();
      }
    }
  }
}
