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
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.stub.MetadataUtils;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * The whole mesh from the images {@code ./draftmesh images} builds, one container per service
 * (target worker, draft worker, router, gateway) as Kubernetes would run them: the images' own
 * launcher and subcommands, models from a read-only volume, every service on its own loopback port
 * over host networking (no container network: see machine notes in the README). Generates through
 * the gateway's OpenAI-compatible HTTP API and its public gRPC API.
 *
 * <p>Runs in the {@code containers} Maven profile only ({@code .ci/run-containers}): it needs a
 * Docker daemon and the images, which take minutes to build.
 */
class ContainerMeshIT {
  static final String VERSION = System.getProperty("draftmesh.version", "0.1.0-SNAPSHOT");
  static final String KEY = "container-key-0123456789";

  static final List<GenericContainer<?>> containers = new ArrayList<>();
  static int targetPort;
  static int draftPort;
  static int routerPort;
  static int grpcPort;
  static int httpPort;
  static GenericContainer<?> router;

  static GenericContainer<?> service(String image, Path models, String... args) {
    GenericContainer<?> c =
        new GenericContainer<>(DockerImageName.parse("draftmesh/" + image + ":" + VERSION))
            .withNetworkMode("host")
            .withFileSystemBind(models.toString(), "/models", BindMode.READ_ONLY)
            .withEnv("DRAFTMESH_API_KEYS", KEY)
            .withCommand(args)
            .withStartupTimeout(Duration.ofMinutes(2));
    containers.add(c);
    return c;
  }

  @BeforeAll
  static void start() throws Exception {
    Path models = readableModels();
    targetPort = freePort();
    draftPort = freePort();
    routerPort = freePort();
    grpcPort = freePort();
    httpPort = freePort();
    service(
            "target-service",
            models,
            "worker",
            "--role",
            "target",
            "--model",
            "/models/target",
            "--port",
            Integer.toString(targetPort),
            "--kv-budget-mb",
            "16",
            "--drain-seconds",
            "1")
        .start();
    service(
            "draft-service",
            models,
            "worker",
            "--role",
            "draft",
            "--model",
            "/models/draft",
            "--port",
            Integer.toString(draftPort),
            "--kv-budget-mb",
            "16",
            "--drain-seconds",
            "1")
        .start();
    awaitServing(targetPort, "draftmesh.v1.ModelWorker");
    awaitServing(draftPort, "draftmesh.v1.ModelWorker");
    router =
        service(
            "router-service",
            models,
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
    router.start();
    awaitServing(routerPort, "draftmesh.v1.Router");
    service(
            "gateway",
            models,
            "gateway",
            "--router",
            "localhost:" + routerPort,
            "--host",
            "127.0.0.1",
            "--grpc-port",
            Integer.toString(grpcPort),
            "--http-port",
            Integer.toString(httpPort),
            "--model",
            "id=tiny,target=target,draft=draft,dir=/models/target")
        .start();
    awaitServing(grpcPort, "draftmesh.v1.Generation");
  }

  /** The fixture's model as target and draft, readable by the images' unprivileged user. */
  static Path readableModels() throws Exception {
    Path dir = Files.createTempDirectory("container-models");
    for (String role : List.of("target", "draft")) {
      Path to = Files.createDirectories(dir.resolve(role));
      try (Stream<Path> files = Files.list(MeshFixture.modelA())) {
        for (Path f : files.toList()) {
          Files.copy(f, to.resolve(f.getFileName()));
          Files.setPosixFilePermissions(
              to.resolve(f.getFileName()), PosixFilePermissions.fromString("rw-r--r--"));
        }
      }
      Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    return dir;
  }

  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  static void awaitServing(int port, String service) throws Exception {
    ManagedChannel ch =
        Grpc.newChannelBuilder("localhost:" + port, InsecureChannelCredentials.create()).build();
    try {
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
      while (true) {
        try {
          HealthCheckResponse r =
              HealthGrpc.newBlockingStub(ch)
                  .withDeadlineAfter(2, TimeUnit.SECONDS)
                  .check(HealthCheckRequest.newBuilder().setService(service).build());
          if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
            return;
          }
        } catch (StatusRuntimeException notYet) {
          // binding or loading
        }
        for (GenericContainer<?> c : containers) {
          assertThat(c.isRunning()).as("%s: %s", c.getDockerImageName(), c.getLogs()).isTrue();
        }
        assertThat(System.nanoTime()).as("%s on %d serving", service, port).isLessThan(deadline);
        Thread.sleep(250);
      }
    } finally {
      ch.shutdownNow();
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
    for (int i = containers.size() - 1; i >= 0; i--) {
      containers.get(i).stop();
    }
  }
}
