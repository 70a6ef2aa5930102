package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.open;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.serving.BlackHoleProxy;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A caller whose machine vanishes (no FIN, no RST: power loss, a dropped route) while it holds a
 * session and set no deadline. The TCP connection looks open forever; only the server's keepalive
 * ping, unanswered, tells. The caller reaches the worker through a proxy that stops forwarding
 * bytes in both directions without closing anything: a {@link BlackHoleProxy}.
 */
class VanishedCallerIT {
  @TempDir Path dir;

  @Test
  void theWorkersKeepaliveFreesTheSessionOfAVanishedCaller() throws Exception {
    Path model = TinyModel.write(dir);
    WorkerConfig config =
        WorkerConfig.parse(
            new String[] {
              "--model", model.toString(),
              "--kv-budget-mb", "4",
              "--max-sessions", "4",
              "--max-tokens-per-op", "16",
              "--max-context", "128",
              "--keepalive-seconds", "10",
              "--keepalive-timeout-seconds", "1"
            },
            Map.of(),
            WorkerConfig.Role.DRAFT);
    try (WorkerServer worker = WorkerServer.onPort(config, OpenTelemetry.noop()).start()) {
      var engine = worker.awaitReady(Duration.ofMinutes(2));
      try (BlackHoleProxy proxy = new BlackHoleProxy(worker.port())) {
        ManagedChannel ch =
            Grpc.newChannelBuilder("127.0.0.1:" + proxy.port(), InsecureChannelCredentials.create())
                .build();
        try (SessionStream s = SessionStream.start(ModelWorkerGrpc.newStub(ch))) {
          s.call(open(TinyModel.prompt(40, 1)));
          assertThat(engine.info().activeSessions()).isEqualTo(1);
          proxy.blackHole();
          // No deadline, no cancel, no half-close: only the server's unanswered ping can end it.
          // The ping comes after 10 s without traffic (gRPC's floor for keepalive), the
          // connection closes 1 s after it goes unanswered; wait up to 30 s for the session.
          long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
          while (engine.info().activeSessions() != 0 && System.nanoTime() < deadline) {
            Thread.sleep(50);
          }
          Leaks.awaitAllFree(engine);
        } finally {
          ch.shutdownNow();
          ch.awaitTermination(5, TimeUnit.SECONDS);
        }
      }
    }
  }
}
