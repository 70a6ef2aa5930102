package io.draftmesh.gateway;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshFixture;
import io.draftmesh.router.RouterServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The gateway tests' view of {@link MeshFixture#gatewaySuite()} (target and draft workers on the
 * long-context checkpoint and a router over both, real ports, started once per JVM): the API keys
 * the tests use, and a gateway config for the mesh (tests start their gateways with {@link
 * LoopbackGateway}, each with its own limits).
 */
final class GatewayTestMesh {
  static final String KEY = "test-key-0123456789";
  static final String OTHER_KEY = "other-key-9876543210";
  static final int MAX_CONTEXT = MeshFixture.LONG_CONTEXT;

  private static GatewayTestMesh instance;

  final Path model;
  final RouterServer router;
  final io.draftmesh.worker.WorkerServer target;
  private final Mesh mesh;

  static synchronized GatewayTestMesh get() {
    if (instance == null) {
      instance = new GatewayTestMesh(MeshFixture.gatewaySuite());
    }
    return instance;
  }

  private GatewayTestMesh(Mesh mesh) {
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

  /** Sessions open on the target worker now. */
  int activeTargetSessions() {
    return MeshFixture.info(mesh.address(Mesh.TARGET)).getActiveSessions();
  }

  /**
   * Waits up to {@code within} until both workers have no session open and every KV block free,
   * then asserts it.
   */
  void assertFreed(Duration within) {
    MeshFixture.assertAllFreed(mesh, within);
  }
}
