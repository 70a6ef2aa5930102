package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code draftmesh up}: serves a mesh, says where it is and how to use it, stops when told. */
class UpCommandIT {
  @TempDir Path dir;

  @Test
  void servesPrintsTheAddressesAndAGenerateCommandThenStops() throws Exception {
    Path target = dir.resolve("target");
    Path draft = dir.resolve("draft");
    GenCheckpointCommand.ensure(target, RandomCheckpoint.tinyLlama(), 1L);
    GenCheckpointCommand.ensure(draft, RandomCheckpoint.tinyLlama(), 2L);
    UpCommand.Options o =
        UpCommand.Options.parse(
            new String[] {
              "--target-model",
              target.toString(),
              "--draft-model",
              draft.toString(),
              "--drain-seconds",
              "1",
              "--kv-dtype",
              "float16"
            });
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    CompletableFuture<Void> stop = new CompletableFuture<>();
    CompletableFuture<Mesh> started = new CompletableFuture<>();
    CompletableFuture<Integer> rc =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return UpCommand.serve(
                    o,
                    new PrintStream(out, true, StandardCharsets.UTF_8),
                    new PrintStream(err, true, StandardCharsets.UTF_8),
                    stop,
                    started::complete);
              } catch (Exception e) {
                started.completeExceptionally(e);
                throw new IllegalStateException(e);
              }
            });
    Mesh mesh = started.get(2, TimeUnit.MINUTES);
    assertThat(mesh.targetWorker().engine().pool().dtype())
        .isEqualTo(io.draftmesh.engine.kv.KvDtype.FLOAT16);
    assertThat(mesh.draftWorker().engine().pool().dtype())
        .isEqualTo(io.draftmesh.engine.kv.KvDtype.FLOAT16);
    String banner = out.toString(StandardCharsets.UTF_8);
    assertThat(banner)
        .contains(
            mesh.address(Mesh.TARGET),
            mesh.address(Mesh.DRAFT),
            "./draftmesh generate --router " + mesh.routerAddress(),
            "--model " + target,
            "Ctrl-C");
    assertThat(rc).isNotDone();
    stop.complete(null);
    assertThat(rc.get(1, TimeUnit.MINUTES)).isZero();
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("draftmesh up: stopped");
    for (String address : mesh.addresses().values()) {
      int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
      org.assertj.core.api.Assertions.assertThatThrownBy(
              () -> new java.net.Socket("localhost", port).close())
          .as("nothing listens on " + address + " any more")
          .isInstanceOf(java.net.ConnectException.class);
    }
  }

  @Test
  void rejectsBadFlags() {
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> UpCommand.Options.parse(new String[] {"--port-base", "70000"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--port-base: 70000");
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> UpCommand.Options.parse(new String[] {"--gateway"}))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("--gateway: unknown flag");
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () -> UpCommand.Options.parse(new String[] {"--kv-dtype", "int4"}))
        .isInstanceOf(UsageException.class)
        .hasMessage("--kv-dtype: int4 (expected: float32 or float16)");
  }
}
