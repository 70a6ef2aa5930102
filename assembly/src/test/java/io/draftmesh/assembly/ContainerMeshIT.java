package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.GenericContainer;

/**
 * The whole mesh from the images {@code ./draftmesh images} builds, one container per service
 * (target worker, draft worker, router, gateway; see {@link ContainerFixture}). Generates through
 * the gateway's OpenAI-compatible HTTP API and its public gRPC API.
 *
 * <p>Runs in the {@code containers} Maven profile only ({@code .ci/run-containers}): it needs a
 * Docker daemon and the images, which take minutes to build.
 */
class ContainerMeshIT {
  static final String VERSION = ContainerFixture.VERSION;
  static final String KEY = "container-key-0123456789";

  static ContainerFixture mesh;
  static int grpcPort;
  static int httpPort;
  static GenericContainer<?> router;
  static GenericContainer<?> target;
  static GenericContainer<?> draft;

  @BeforeAll
  static void start() throws Exception {
    mesh = new ContainerFixture(KEY);
    int targetPort = ContainerFixture.freePort();
    int draftPort = ContainerFixture.freePort();
    int routerPort = ContainerFixture.freePort();
    grpcPort = ContainerFixture.freePort();
    httpPort = ContainerFixture.freePort();
    target =
        mesh.start(
            "target-service", ContainerFixture.worker("target", targetPort).toArray(String[]::new));
    draft =
        mesh.start(
            "draft-service", ContainerFixture.worker("draft", draftPort).toArray(String[]::new));
    mesh.awaitServing(targetPort, "draftmesh.v1.ModelWorker");
    mesh.awaitServing(draftPort, "draftmesh.v1.ModelWorker");
    router =
        mesh.start(
            "router-service",
            "router",
            "--port",
            Integer.toString(routerPort),
            "--target",
            "localhost:" + targetPort,
            "--draft",
            "localhost:" + draftPort,
            "--tokenizers",
            "/models",
            "--drain-seconds",
            "1");
    mesh.awaitServing(routerPort, "draftmesh.v1.Router");
    mesh.startGateway(routerPort, grpcPort, httpPort);
  }

  /**
   * The images start java with the Vector API module, so each worker's engine takes the vector
   * backend (the CPU default) rather than falling back to DJL, as it did while the module was left
   * out: each logs its model's backend once loaded ({@code "<model>: vector: float16 weights
   * ..."}).
   */
  @Test
  void workersServeOnTheVectorBackend() {
    for (GenericContainer<?> worker : List.of(target, draft)) {
      assertThat(worker.getLogs()).contains(": vector: ").doesNotContain(": djl: ");
    }
  }

  @Test
  void generatesThroughTheOpenAiHttpApi() throws Exception {
    String body =
        """
        {"model": "tiny", "prompt": "In the beginning", "max_tokens": 12, "temperature": 0,
         "draftmesh": {"strategy": "speculative", "k": 4, "ignore_eos": true}}""";
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + httpPort + "/v1/completions"))
                    .header("Authorization", "Bearer " + KEY)
                    .header("Content-Type", "application/json")
                    .timeout(Duration.ofSeconds(60))
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    JsonObject json = JsonParser.parseString(r.body()).getAsJsonObject();
    assertThat(json.getAsJsonArray("choices").get(0).getAsJsonObject().get("text").getAsString())
        .isNotEmpty();
    assertThat(json.getAsJsonObject("usage").get("completion_tokens").getAsInt()).isEqualTo(12);
    assertThat(
            json.getAsJsonObject("draftmesh")
                .getAsJsonObject("stats")
                .get("strategy")
                .getAsString())
        .isEqualTo("speculative");
  }

  @Test
  void generatesThroughThePublicGrpcApiWithDraftsAcceptedAcrossContainers() {
    ManagedChannel ch =
        Grpc.newChannelBuilder("127.0.0.1:" + grpcPort, InsecureChannelCredentials.create())
            .build();
    try {
      Metadata auth = new Metadata();
      auth.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + KEY);
      List<GenerateChunk> chunks = new ArrayList<>();
      GenerationGrpc.newBlockingStub(ch)
          .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(auth))
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(
              GenerateRequest.newBuilder()
                  .setText("In the beginning")
                  .setTarget("tiny")
                  .setIgnoreEos(true)
                  .setStrategy(Strategy.STRATEGY_SPECULATIVE)
                  .setSpeculative(SpeculativeOptions.newBuilder().setK(4))
                  .setSampling(Sampling.newBuilder().setMaxTokens(16).setSeed(1))
                  .build())
          .forEachRemaining(chunks::add);
      List<Provenance> provenance = new ArrayList<>();
      chunks.forEach(c -> provenance.addAll(c.getProvenanceList()));
      assertThat(provenance).hasSize(16);
      // Draft and target serve the same weights: greedy drafts are accepted.
      assertThat(provenance).contains(Provenance.PROVENANCE_DRAFT_ACCEPTED);
      assertThat(chunks.get(chunks.size() - 1).getUsage().getCompletionTokens()).isEqualTo(16);
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void theRouterImageCarriesNoModelRuntime() throws Exception {
    String lib = router.execInContainer("ls", "/app/lib").getStdout();
    assertThat(lib).contains("router-service-" + VERSION + ".jar").contains("grpc-netty-shaded");
    assertThat(lib).doesNotContain("pytorch").doesNotContain("djl").doesNotContain("engine-");
  }

  @AfterAll
  static void stop() {
    if (mesh != null) {
      mesh.close();
    }
  }
}
