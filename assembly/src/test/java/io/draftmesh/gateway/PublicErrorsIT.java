package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.gson.JsonObject;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Public errors never reveal internal addresses, pool names or tokenizer hashes (design invariant
 * 6): the router behind this gateway has a dead target pool and a dead draft pool, whose failures
 * name {@code host:port} internally. The client sees a generic message with the request id; the
 * details go to the gateway's log.
 */
class PublicErrorsIT {
  private static GatewayTestMesh mesh;
  private static RouterServer router;
  private static GatewayServer gateway;
  private static ManagedChannel channel;
  private static Http http;
  private static int deadPort;

  @BeforeAll
  static void start() throws IOException {
    mesh = GatewayTestMesh.get();
    try (ServerSocket s = new ServerSocket(0)) {
      deadPort = s.getLocalPort();
    }
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", "localhost:" + mesh.target.port());
    pools.put("internal-dead-target", "localhost:" + deadPort);
    pools.put("internal-dead-draft", "localhost:" + deadPort);
    router =
        RouterServer.onPort(
                new RouterConfig(
                    0,
                    pools,
                    "target",
                    null,
                    List.of(mesh.model.resolve(Checkpoint.TOKENIZER_JSON)),
                    8,
                    8192,
                    32,
                    Duration.ofSeconds(30),
                    Duration.ofSeconds(5),
                    8,
                    Duration.ofSeconds(1),
                    Keepalive.DEFAULT),
                OpenTelemetry.noop())
            .start();
    gateway =
        LoopbackGateway.start(
            GatewayConfig.of("localhost:" + router.port(), List.of(GatewayTestMesh.KEY))
                .withModels(
                    List.of(
                        new GatewayConfig.ModelSpec(
                            "tiny", "target", "internal-dead-draft", mesh.model, null),
                        new GatewayConfig.ModelSpec(
                            "broken", "internal-dead-target", "", mesh.model, null))));
    channel =
        Grpc.newChannelBuilder(
                "localhost:" + gateway.ports().grpc(), InsecureChannelCredentials.create())
            .build();
    http = new Http(gateway);
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    gateway.close();
    router.close();
  }

  static GenerationGrpc.GenerationBlockingStub stub() {
    return GenerationGrpc.newBlockingStub(channel)
        .withCallCredentials(GenerationGrpcIT.bearer(GatewayTestMesh.KEY))
        .withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  /** Nothing internal: no port, no host, no pool name. */
  static void assertNothingInternal(String publicText) {
    assertThat(publicText)
        .doesNotContain(Integer.toString(deadPort))
        .doesNotContain(Integer.toString(mesh.target.port()))
        .doesNotContain("localhost")
        .doesNotContain("internal-dead")
        .doesNotContain("pools");
  }

  @Test
  void aDeadTargetIsAGenericUnavailableWithTheRequestIdOverGrpc() {
    GenerateRequest req =
        GenerateRequest.newBuilder()
            .setText("In the beginning")
            .setTarget("broken")
            .setRequestId("req-dead-target")
            .setSampling(Sampling.newBuilder().setMaxTokens(4))
            .build();
    StatusRuntimeException e =
        catchThrowableOfType(
            StatusRuntimeException.class, () -> stub().generate(req).forEachRemaining(c -> {}));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(e.getStatus().getDescription()).contains("req-dead-target");
    assertNothingInternal(e.getStatus().getDescription());
  }

  @Test
  void anUnknownPoolIsAGenericNotFoundOverGrpc() {
    GenerateRequest req =
        GenerateRequest.newBuilder()
            .setText("In the beginning")
            .setTarget("no-such-model")
            .setSampling(Sampling.newBuilder().setMaxTokens(4))
            .build();
    StatusRuntimeException e =
        catchThrowableOfType(
            StatusRuntimeException.class, () -> stub().generate(req).forEachRemaining(c -> {}));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
    assertThat(e.getStatus().getDescription())
        .startsWith("target: no-such-model not found")
        .contains("request id");
    assertNothingInternal(e.getStatus().getDescription());
  }

  @Test
  void aDeadTargetIsAGeneric503WithTheRequestIdOverHttp() {
    JsonObject body = new JsonObject();
    body.addProperty("model", "broken");
    body.addProperty("prompt", "In the beginning");
    body.addProperty("max_tokens", 4);
    Http.Json r = http.post("/v1/completions", GatewayTestMesh.KEY, body);
    assertThat(r.status()).isEqualTo(503);
    JsonObject error = r.body().getAsJsonObject("error");
    assertThat(error.get("type").getAsString()).isEqualTo("server_error");
    assertThat(error.get("message").getAsString()).contains("request id");
    assertNothingInternal(r.raw().body());
  }

  @Test
  void theFallbackReasonStaysInsideOverGrpcAndHttp() throws IOException {
    GenerateRequest req =
        GenerateRequest.newBuilder()
            .setText("In the beginning")
            .setTarget("tiny")
            .setStrategy(Strategy.STRATEGY_SPECULATIVE)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(6))
            .build();
    List<GenerateChunk> chunks = new ArrayList<>();
    stub().generate(req).forEachRemaining(chunks::add);
    GenerateChunk last = chunks.get(chunks.size() - 1);
    assertThat(last.getStats().getFallback()).as("the dead draft was dropped").isTrue();
    for (GenerateChunk c : chunks) {
      assertThat(c.getStats().getFallbackReason()).isEmpty();
    }

    JsonObject body = OpenAiHttpIT.completion(6, false);
    Http.Json r = http.post("/v1/completions", GatewayTestMesh.KEY, body);
    assertThat(r.status()).isEqualTo(200);
    JsonObject stats = r.body().getAsJsonObject("draftmesh").getAsJsonObject("stats");
    assertThat(stats.get("fallback").getAsBoolean()).isTrue();
    assertThat(stats.has("fallback_reason") ? stats.get("fallback_reason").getAsString() : "")
        .isEmpty();
    assertNothingInternal(r.raw().body());

    try (Http.Stream s =
        http.stream("/v1/completions", GatewayTestMesh.KEY, OpenAiHttpIT.completion(6, true))) {
      for (String event : s.rest()) {
        assertNothingInternal(event);
      }
    }
    mesh.assertFreed(Duration.ofSeconds(5));
  }
}
