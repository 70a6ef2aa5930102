package io.draftmesh.serving;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Health as a probe sees it, over a real (in-process) gRPC server. */
class ServiceHealthTest {
  private static final String NAME = "draftmesh.v1.Test";
  private final ServiceHealth health = new ServiceHealth(NAME);
  private Server server;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name).addServices(health.services()).build().start();
    channel = InProcessChannelBuilder.forName(name).build();
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  private ServingStatus probe(String service) {
    return HealthGrpc.newBlockingStub(channel)
        .check(HealthCheckRequest.newBuilder().setService(service).build())
        .getStatus();
  }

  @Test
  void overallAndNamedServiceMoveTogetherFromNotServing() {
    assertThat(probe("")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(probe(NAME)).isEqualTo(ServingStatus.NOT_SERVING);
    health.serving();
    assertThat(probe("")).isEqualTo(ServingStatus.SERVING);
    assertThat(probe(NAME)).isEqualTo(ServingStatus.SERVING);
    health.notServing();
    assertThat(probe("")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(probe(NAME)).isEqualTo(ServingStatus.NOT_SERVING);
  }

  @Test
  void terminalStaysNotServingWhateverIsSaidAfter() {
    health.serving();
    health.terminal();
    health.serving();
    assertThat(probe("")).isEqualTo(ServingStatus.NOT_SERVING);
    assertThat(probe(NAME)).isEqualTo(ServingStatus.NOT_SERVING);
  }

  @Test
  void servesReflectionBesideHealth() {
    assertThat(health.services())
        .extracting(d -> d.getServiceDescriptor().getName())
        .contains(
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection");
  }
}
