package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * The containers of one test class's mesh, from the images {@code ./draftmesh images} builds, as
 * Kubernetes would run them: the images' own launcher and subcommands, the fixture's model (as
 * {@code /models/target} and {@code /models/draft}) from a read-only volume, every service on its
 * own loopback port over host networking (no container network: see machine notes in the README).
 * Closing stops them, the last started first.
 */
final class ContainerFixture implements AutoCloseable {
  static final String VERSION = System.getProperty("draftmesh.version", "0.1.0-SNAPSHOT");

  private final Path models;
  private final String apiKey;
  private final List<GenericContainer<?>> containers = new ArrayList<>();

  /**
   * @param apiKey the {@code DRAFTMESH_API_KEYS} every container gets (the gateway checks it)
   */
  ContainerFixture(String apiKey) throws Exception {
    this.models = readableModels();
    this.apiKey = apiKey;
  }

  /** Starts {@code draftmesh/IMAGE:VERSION} with {@code args} (the launcher's role and flags). */
  GenericContainer<?> start(String image, String... args) {
    GenericContainer<?> c =
        new GenericContainer<>(DockerImageName.parse("draftmesh/" + image + ":" + VERSION))
            .withNetworkMode("host")
            .withFileSystemBind(models.toString(), "/models", BindMode.READ_ONLY)
            .withEnv("DRAFTMESH_API_KEYS", apiKey)
            .withCommand(args)
            .withStartupTimeout(Duration.ofMinutes(2));
    containers.add(c);
    c.start();
    return c;
  }

  /** A worker of {@code role} serving {@code /models/ROLE} on {@code port}, 16 MiB of KV. */
  static List<String> worker(String role, int port) {
    return new ArrayList<>(
        List.of(
            "worker",
            "--role",
            role,
            "--model",
            "/models/" + role,
            "--port",
            Integer.toString(port),
            "--kv-budget-mb",
            "16",
            "--drain-seconds",
            "1"));
  }

  /**
   * Starts the gateway in front of the router on {@code routerPort}, serving model {@code tiny}
   * (pools target + draft), and waits until its gRPC API serves.
   */
  void startGateway(int routerPort, int grpcPort, int httpPort) throws Exception {
    start(
        "gateway",
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
        "id=tiny,target=target,draft=draft,dir=/models/target");
    awaitServing(grpcPort, "draftmesh.v1.Generation");
  }

  /**
   * Waits until {@code service} on {@code port} reports SERVING; fails at once, with its logs, if
   * one of this fixture's containers has stopped meanwhile.
   */
  void awaitServing(int port, String service) throws Exception {
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

  /** {@code docker kill} (SIGKILL: no drain, no goodbye to any peer). */
  static void kill(GenericContainer<?> c) {
    c.getDockerClient().killContainerCmd(c.getContainerId()).exec();
  }

  static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** The fixture's model as target and draft, readable by the images' unprivileged user. */
  private static Path readableModels() throws Exception {
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

  @Override
  public void close() {
    for (int i = containers.size() - 1; i >= 0; i--) {
      containers.get(i).stop();
    }
  }
}
