package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.closeOp;
import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static io.draftmesh.worker.SessionStream.verify;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.OpenTelemetry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Draft and target workers wired as their mains wire them (flags → config → Netty on port 0),
 * called over real TCP channels: model info, a speculative round between the two, health and
 * reflection.
 */
class WorkerServerIT {
  @TempDir static Path dir;
  static WorkerServer draft;
  static WorkerServer target;
  static ManagedChannel draftChannel;
  static ManagedChannel targetChannel;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    String[] flags = {
      "--model",
      model.toString(),
      "--port",
      "0",
      "--kv-budget-mb",
      "4",
      "--max-sessions",
      "4",
      "--max-tokens-per-op",
      "16",
      "--max-context",
      "256",
      "--drain-seconds",
      "1"
    };
    draft =
        WorkerServer.onPort(
                WorkerConfig.parse(flags, Map.of(), WorkerConfig.Role.DRAFT), OpenTelemetry.noop())
            .start();
    target =
        WorkerServer.onPort(
                WorkerConfig.parse(flags, Map.of(), WorkerConfig.Role.TARGET), OpenTelemetry.noop())
            .start();
    assertThat(draft.port()).isPositive();
    assertThat(target.port()).isPositive().isNotEqualTo(draft.port());
    draft.awaitReady(Duration.ofMinutes(2));
    target.awaitReady(Duration.ofMinutes(2));
    draftChannel = channel(draft.port());
    targetChannel = channel(target.port());
  }

  @AfterAll
  static void stop() throws Exception {
    for (ManagedChannel c : new ManagedChannel[] {draftChannel, targetChannel}) {
      if (c != null) {
        c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    if (draft != null) {
      draft.close();
    }
    if (target != null) {
      target.close();
    }
  }

  private static ManagedChannel channel(int port) {
    return Grpc.newChannelBuilderForAddress("localhost", port, InsecureChannelCredentials.create())
        .build();
  }

  @Test
  void modelInfoOverTcp() {
    ModelInfo d =
        ModelWorkerGrpc.newBlockingStub(draftChannel)
            .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    ModelInfo t =
        ModelWorkerGrpc.newBlockingStub(targetChannel)
            .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    assertThat(d.getRole()).isEqualTo("draft");
    assertThat(t.getRole()).isEqualTo("target");
    assertThat(d.getTokenizerHash()).isEqualTo(t.getTokenizerHash()).hasSize(64);
    assertThat(t.getMaxContext()).isEqualTo(256);
    assertThat(t.getKvBlocksTotal()).isEqualTo(t.getKvBlocksFree()).isPositive();
  }

  @Test
  void aSpeculativeRoundAcrossTwoWorkers() throws Exception {
    int[] prompt = TinyModel.prompt(24, 9);
    try (SessionStream d = SessionStream.start(ModelWorkerGrpc.newStub(draftChannel));
        SessionStream t = SessionStream.start(ModelWorkerGrpc.newStub(targetChannel))) {
      d.call(open(prompt));
      t.call(open(prompt));
      List<Integer> drafted = d.call(propose(4)).getProposed().getTokenIdsList();
      SessionResponse v = t.call(verify(drafted.stream().mapToInt(Integer::intValue).toArray()));
      // Same weights on both sides, greedy: the target accepts every draft token.
      assertThat(v.getVerified().getAccepted()).isEqualTo(4);
      assertThat(v.getVerified().getBonus()).isTrue();
      assertThat(v.getLength()).isEqualTo(24 + 4 + 1);
      assertThat(d.call(closeOp()).getClosed().getKvBlocksFreed()).isPositive();
      assertThat(t.call(closeOp()).getClosed().getKvBlocksFreed()).isPositive();
      assertThat(d.awaitEnd().isOk()).isTrue();
      assertThat(t.awaitEnd().isOk()).isTrue();
    }
    Leaks.awaitAllFree(draft.engine());
    Leaks.awaitAllFree(target.engine());
  }

  @Test
  void healthIsServingForTheWorkerAndOverall() {
    HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(targetChannel);
    for (String service : new String[] {"", WorkerServer.SERVICE_NAME}) {
      assertThat(
              health.check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus())
          .isEqualTo(ServingStatus.SERVING);
    }
  }

  @Test
  void reflectionListsTheModelWorkerService() throws Exception {
    CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests =
        ServerReflectionGrpc.newStub(draftChannel)
            .serverReflectionInfo(
                new StreamObserver<>() {
                  @Override
                  public void onNext(ServerReflectionResponse value) {
                    answer.complete(value);
                  }

                  @Override
                  public void onError(Throwable t) {
                    answer.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {}
                });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    List<String> services =
        answer.get(10, TimeUnit.SECONDS).getListServicesResponse().getServiceList().stream()
            .map(ServiceResponse::getName)
            .toList();
    requests.onCompleted();
    assertThat(services).contains("draftmesh.v1.ModelWorker", "grpc.health.v1.Health");
  }
}
