package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.gateway.GatewayConfig;
import io.draftmesh.gateway.GatewayServer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.serving.BlackHoleProxy;
import io.grpc.CallCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.OpenTelemetry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Callers that vanish (no FIN, no RST, no deadline, no cancel) in the middle of a generation: one
 * calling the router directly, one calling the gateway's public gRPC API. Each reaches its server
 * through a {@link BlackHoleProxy}, and the target is a worker that answers Open and then stalls
 * (so the generation can neither finish nor fail on its own: the target op deadline is 2 minutes).
 * Only the servers' keepalive (--keepalive-seconds 10, gRPC's floor, --keepalive-timeout-seconds 1)
 * can end the streams; when it does, the router cancels the target session, which the stalled
 * worker sees. Both are black-holed at once, so the test waits for one keepalive period.
 */
class VanishedCallerIT {
  static final String KEY = "vanished-key-0123456789";
  static final List<String> KEEPALIVE =
      List.of("--keepalive-seconds", "10", "--keepalive-timeout-seconds", "1");

  @Test
  void theRoutersAndTheGatewaysKeepaliveCancelTheStreamsOfVanishedCallers() throws Exception {
    TestMesh mesh = TestMesh.get();
    try (FakeWorker stalled = new FakeWorker(mesh.targetInfo);
        RouterServer router = router(mesh, stalled)) {
      GatewayConfig gc =
          GatewayConfig.of("localhost:" + router.port(), List.of(KEY))
              .withModels(
                  List.of(new GatewayConfig.ModelSpec("tiny", "target", null, mesh.modelA, null)))
              .withKeepalive(
                  new Keepalive(Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ZERO));
      GatewayServer gateway = GatewayServer.create(gc, OpenTelemetry.noop());
      gateway.start();
      try (BlackHoleProxy toRouter = new BlackHoleProxy(router.port());
          BlackHoleProxy toGateway = new BlackHoleProxy(gateway.ports().grpc())) {
        ManagedChannel a = channel(toRouter.port());
        ManagedChannel b = channel(toGateway.port());
        try {
          CountDownLatch firstChunks = new CountDownLatch(2);
          List<Throwable> ended = new ArrayList<>();
          RouterGrpc.newStub(a).generate(request(""), observer(firstChunks, ended));
          GenerationGrpc.newStub(b)
              .withCallCredentials(bearer())
              .generate(request("tiny"), observer(firstChunks, ended));
          // The token from Open reached both callers: both streams are open and stalled.
          assertThat(firstChunks.await(30, TimeUnit.SECONDS)).isTrue();
          assertThat(stalled.opened.get()).isEqualTo(2);
          toRouter.blackHole();
          toGateway.blackHole();
          // A ping after 10 s without traffic, unanswered for 1 s: the connections close, the
          // calls are cancelled, the router cancels both target sessions. Far inside the target
          // op deadline (2 min), so nothing else can have ended them.
          assertThat(stalled.awaitTornDown(2, 30))
              .as("both target sessions torn down by keepalive")
              .isTrue();
          synchronized (ended) {
            assertThat(ended).as("what the callers saw (nothing: they are gone)").isEmpty();
          }
        } finally {
          a.shutdownNow();
          b.shutdownNow();
          gateway.close();
        }
      }
    }
  }

  static RouterServer router(TestMesh mesh, FakeWorker target) throws java.io.IOException {
    List<String> flags = new ArrayList<>();
    flags.addAll(
        List.of(
            "--port", "0",
            "--drain-seconds", "1",
            "--target-timeout-ms", "120000",
            "--target", "localhost:" + target.port(),
            "--tokenizers", mesh.modelA.resolve(Checkpoint.TOKENIZER_JSON).toString()));
    flags.addAll(KEEPALIVE);
    RouterConfig config = RouterConfig.parse(flags.toArray(String[]::new), Map.of());
    assertThat(config.keepalive().time()).isEqualTo(Duration.ofSeconds(10));
    return RouterServer.onPort(config, OpenTelemetry.noop()).start();
  }

  static ManagedChannel channel(int port) {
    return Grpc.newChannelBuilder("127.0.0.1:" + port, InsecureChannelCredentials.create()).build();
  }

  static GenerateRequest request(String target) {
    return GenerateRequest.newBuilder()
        .setTokenIds(TokenIds.newBuilder().addIds(42).addIds(7).addIds(300))
        .setTarget(target)
        .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(50))
        .build();
  }

  static StreamObserver<GenerateChunk> observer(CountDownLatch first, List<Throwable> ended) {
    return new StreamObserver<>() {
      @Override
      public void onNext(GenerateChunk c) {
        first.countDown();
      }

      @Override
      public void onError(Throwable t) {
        synchronized (ended) {
          ended.add(t);
        }
      }

      @Override
      public void onCompleted() {
        synchronized (ended) {
          ended.add(new IllegalStateException("completed"));
        }
      }
    };
  }

  static CallCredentials bearer() {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier apply) {
        Metadata m = new Metadata();
        m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + KEY);
        apply.apply(m);
      }
    };
  }
}
