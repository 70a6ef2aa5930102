package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.ListModelsRequest;
import io.draftmesh.proto.v1.ListModelsResponse;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.grpc.CallCredentials;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The public gRPC API over a real port, in front of the real mesh. */
class GenerationGrpcIT {
  private static GatewayTestMesh mesh;
  private static GatewayServer gateway;
  private static ManagedChannel channel;

  @BeforeAll
  static void start() {
    mesh = GatewayTestMesh.get();
    gateway = LoopbackGateway.start(mesh.config().withLimits(2, 0, 0));
    channel =
        Grpc.newChannelBuilder(
                "localhost:" + gateway.ports().grpc(), InsecureChannelCredentials.create())
            .build();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    gateway.close();
  }

  @AfterEach
  void everySessionClosed() {
    mesh.assertFreed(Duration.ofSeconds(5));
  }

  static CallCredentials bearer(String key) {
    return new CallCredentials() {
      @Override
      public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier apply) {
        Metadata m = new Metadata();
        m.put(AuthInterceptor.AUTHORIZATION, "Bearer " + key);
        apply.apply(m);
      }
    };
  }

  static GenerationGrpc.GenerationBlockingStub stub() {
    return GenerationGrpc.newBlockingStub(channel)
        .withCallCredentials(bearer(GatewayTestMesh.KEY))
        .withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  static GenerateRequest.Builder request(int maxTokens) {
    return GenerateRequest.newBuilder()
        .setText("In the beginning")
        .setTarget("tiny")
        .setIgnoreEos(true)
        .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens).setSeed(1));
  }

  @Test
  void streamsAWholeSpeculativeGenerationOverARealPort() {
    GenerateRequest req =
        request(24)
            .setStrategy(Strategy.STRATEGY_SPECULATIVE)
            .setSpeculative(SpeculativeOptions.newBuilder().setK(4))
            .build();
    List<GenerateChunk> chunks = new ArrayList<>();
    stub().generate(req).forEachRemaining(chunks::add);

    assertThat(chunks).hasSizeGreaterThan(1);
    GenerateChunk last = chunks.get(chunks.size() - 1);
    assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    assertThat(last.getUsage().getCompletionTokens()).isEqualTo(24);
    assertThat(last.getUsage().getPromptTokens()).isPositive();
    List<Integer> ids = new ArrayList<>();
    List<Provenance> provenance = new ArrayList<>();
    for (GenerateChunk c : chunks.subList(0, chunks.size() - 1)) {
      assertThat(c.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_UNSPECIFIED);
    }
    for (GenerateChunk c : chunks) {
      assertThat(c.getProvenanceCount()).isEqualTo(c.getTokenIdsCount());
      ids.addAll(c.getTokenIdsList());
      provenance.addAll(c.getProvenanceList());
    }
    assertThat(ids).hasSize(24);
    assertThat(last.getStats().getStrategy()).isEqualTo(Strategy.STRATEGY_SPECULATIVE);
    assertThat(last.getStats().getTargetModel()).isEqualTo("tiny-llama");
    assertThat(last.getStats().getDraftModel()).isEqualTo("tiny-llama");
    // Draft and target are the same model, so (greedy) nearly every draft token is accepted.
    assertThat(provenance).contains(Provenance.PROVENANCE_DRAFT_ACCEPTED);
    assertThat(last.getStats().getDrafted()).isPositive();

    // A faithful relay: the same request straight to the router gives the same tokens.
    ManagedChannel direct =
        Grpc.newChannelBuilder(
                "localhost:" + mesh.router.port(), InsecureChannelCredentials.create())
            .build();
    try {
      List<Integer> directIds = new ArrayList<>();
      RouterGrpc.newBlockingStub(direct)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(req.toBuilder().setTarget("target").setDraft("draft").build())
          .forEachRemaining(c -> directIds.addAll(c.getTokenIdsList()));
      assertThat(ids).isEqualTo(directIds);
    } finally {
      direct.shutdownNow();
    }
  }

  @Test
  void listsModels() {
    ListModelsResponse models = stub().listModels(ListModelsRequest.getDefaultInstance());
    assertThat(models.getModelsList()).hasSize(1);
    ListModelsResponse.Model m = models.getModels(0);
    assertThat(m.getId()).isEqualTo("tiny");
    assertThat(m.getTarget()).isEqualTo("target");
    assertThat(m.getDraft()).isEqualTo("draft");
    assertThat(m.getChatFormat()).isEqualTo("default");
    assertThat(m.getCreated()).isPositive();
  }

  @Test
  void healthAndReflectionNeedNoKey() throws InterruptedException {
    HealthCheckResponse health =
        HealthGrpc.newBlockingStub(channel)
            .withDeadlineAfter(5, TimeUnit.SECONDS)
            .check(HealthCheckRequest.newBuilder().setService(GatewayServer.SERVICE_NAME).build());
    assertThat(health.getStatus()).isEqualTo(HealthCheckResponse.ServingStatus.SERVING);

    List<String> services = new ArrayList<>();
    CountDownLatch done = new CountDownLatch(1);
    StreamObserver<ServerReflectionRequest> req =
        ServerReflectionGrpc.newStub(channel)
            .serverReflectionInfo(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ServerReflectionResponse r) {
                    for (ServiceResponse s : r.getListServicesResponse().getServiceList()) {
                      services.add(s.getName());
                    }
                  }

                  @Override
                  public void onError(Throwable t) {
                    done.countDown();
                  }

                  @Override
                  public void onCompleted() {
                    done.countDown();
                  }
                });
    req.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    req.onCompleted();
    assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
    assertThat(services).contains("draftmesh.v1.Generation", "grpc.health.v1.Health");
  }

  @Test
  void missingOrWrongKeyIsUnauthenticated() {
    GenerationGrpc.GenerationBlockingStub none =
        GenerationGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    StatusRuntimeException missing =
        catchThrowableOfType(
            StatusRuntimeException.class,
            () -> none.generate(request(4).build()).forEachRemaining(c -> {}));
    assertThat(missing.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(missing.getStatus().getDescription()).contains("authorization: missing");

    StatusRuntimeException wrong =
        catchThrowableOfType(
            StatusRuntimeException.class,
            () ->
                none.withCallCredentials(bearer("not-a-key-at-all"))
                    .listModels(ListModelsRequest.getDefaultInstance()));
    assertThat(wrong.getStatus().getCode()).isEqualTo(Status.Code.UNAUTHENTICATED);
    assertThat(wrong.getStatus().getDescription()).contains("Incorrect API key");
  }

  private static Status statusOf(GenerateRequest r) {
    StatusRuntimeException e =
        catchThrowableOfType(
            StatusRuntimeException.class, () -> stub().generate(r).forEachRemaining(c -> {}));
    assertThat(e).as("expected a failure for %s", r).isNotNull();
    return e.getStatus();
  }

  @Test
  void badInputsGetStatusesNamingTheField() {
    Status tooMany = statusOf(request(9000).build());
    assertThat(tooMany.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(tooMany.getDescription())
        .isEqualTo("sampling.max_tokens: 9000 (expected: 0 for the default, or 1..8192)");

    Status empty = statusOf(request(4).setText("").build());
    assertThat(empty.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(empty.getDescription()).startsWith("text: empty");

    Status temperature =
        statusOf(
            request(4)
                .setSampling(Sampling.newBuilder().setTemperature(-1f).setMaxTokens(4))
                .build());
    assertThat(temperature.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(temperature.getDescription()).startsWith("sampling.temperature: -1.0");

    Status unknown = statusOf(request(4).setTarget("no-such-model").build());
    assertThat(unknown.getCode()).isEqualTo(Status.Code.NOT_FOUND);
    assertThat(unknown.getDescription()).startsWith("target: no-such-model");

    Status strategy = statusOf(request(4).setStrategyValue(99).build());
    assertThat(strategy.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(strategy.getDescription()).startsWith("strategy: 99");
  }

  @Test
  void clientCancelMidStreamCancelsTheRouterStream() throws Exception {
    Context.CancellableContext ctx = Context.current().withCancellation();
    Iterator<GenerateChunk> it =
        ctx.call(
            () ->
                stub()
                    .generate(request(6000).setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE).build()));
    for (int i = 0; i < 3; i++) {
      assertThat(it.hasNext()).isTrue();
      it.next();
    }
    assertThat(mesh.activeTargetSessions()).as("a session is open while streaming").isEqualTo(1);
    ctx.cancel(null);
    // 6000 tokens take far longer than this: only the cancellation can free the session this fast.
    mesh.assertFreed(Duration.ofSeconds(3));
  }

  @Test
  void deadlineReachesTheRouter() {
    Iterator<GenerateChunk> it =
        GenerationGrpc.newBlockingStub(channel)
            .withCallCredentials(bearer(GatewayTestMesh.KEY))
            .withDeadlineAfter(700, TimeUnit.MILLISECONDS)
            .generate(request(6000).setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE).build());
    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> it.forEachRemaining(c -> {}));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    mesh.assertFreed(Duration.ofSeconds(3));
  }

  @Test
  void concurrencyOverTheKeyLimitIsResourceExhausted() throws Exception {
    List<Context.CancellableContext> open = new ArrayList<>();
    try {
      for (int i = 0; i < 2; i++) { // the limit is 2 per key
        Context.CancellableContext ctx = Context.current().withCancellation();
        open.add(ctx);
        Iterator<GenerateChunk> it = ctx.call(() -> stub().generate(request(6000).build()));
        assertThat(it.hasNext()).isTrue();
      }
      Status third = statusOf(request(4).build());
      assertThat(third.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(third.getDescription())
          .startsWith("concurrent requests: key-1 has 2 in flight, running or waiting");

      // Limits are per key: the other key still gets through.
      List<GenerateChunk> other = new ArrayList<>();
      GenerationGrpc.newBlockingStub(channel)
          .withCallCredentials(bearer(GatewayTestMesh.OTHER_KEY))
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(request(4).build())
          .forEachRemaining(other::add);
      assertThat(other.get(other.size() - 1).getUsage().getCompletionTokens()).isEqualTo(4);
    } finally {
      open.forEach(c -> c.cancel(null));
    }
  }
}
