package io.draftmesh.gateway;

import io.draftmesh.assembly.MeshFixture;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.router.RouterServer;
import io.grpc.InsecureServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The gateway tests' view of {@link MeshFixture#gatewaySuite()} (target and draft workers on the
 * long-context checkpoint and a router over both, real ports, started once per JVM): the API keys
 * the tests use, a gateway config for the mesh, and gateways started per test class with their own
 * limits.
 */
final class Mesh {
  static final String KEY = "test-key-0123456789";
  static final String OTHER_KEY = "other-key-9876543210";
  static final int MAX_CONTEXT = MeshFixture.LONG_CONTEXT;

  private static Mesh instance;

  final Path model;
  final RouterServer router;
  final io.draftmesh.worker.WorkerServer target;
  private final io.draftmesh.assembly.Mesh mesh;

  static synchronized Mesh get() {
    if (instance == null) {
      instance = new Mesh(MeshFixture.gatewaySuite());
    }
    return instance;
  }

  private Mesh(io.draftmesh.assembly.Mesh mesh) {
    this.mesh = mesh;
    this.model = MeshFixture.longContext();
    this.router = mesh.router();
    this.target = mesh.targetWorker();
  }

  /** A gateway config for this mesh: model {@code tiny}, both keys, loopback, free ports. */
  GatewayConfig config() {
    return GatewayConfig.of(mesh.routerAddress(), List.of(KEY, OTHER_KEY))
        .withModels(List.of(new GatewayConfig.ModelSpec("tiny", "target", "draft", model, null)));
  }

  /** Starts a gateway for {@code config} (gRPC and HTTP on free loopback ports). */
  static GatewayServer gateway(GatewayConfig config) {
    try {
      GatewayServer g =
          new GatewayServer(
              NettyServerBuilder.forAddress(
                  new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create()),
              new InetSocketAddress("127.0.0.1", 0),
              GatewayServer.routerChannel(config.router(), Keepalive.DEFAULT, OpenTelemetry.noop()),
              config,
              OpenTelemetry.noop());
      g.start();
      return g;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Sessions open on the target worker now. */
  int activeTargetSessions() {
    return MeshFixture.info(mesh.address(io.draftmesh.assembly.Mesh.TARGET)).getActiveSessions();
  }

  /**
   * Waits up to {@code within} until both workers have no session open and every KV block free,
   * then asserts it.
   */
  void assertFreed(Duration within) {
    MeshFixture.assertAllFreed(mesh, within);
  }
}
