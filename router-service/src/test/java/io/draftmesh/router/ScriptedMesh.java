package io.draftmesh.router;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.RouterGrpc;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * An in-process router over {@link ScriptedWorker}s ("target" and "draft" pools), knowing two
 * different tokenizers: the zoo's (models/target/tokenizer.json, 4,096 tokens) and a 512-token BPE
 * trained by {@link RandomCheckpoint#writeTokenizer} on other text.
 */
final class ScriptedMesh implements AutoCloseable {
  static final Path ZOO_TOKENIZER = zooTokenizer();
  private static Path other;

  final RouterServer router;
  final ManagedChannel channel;

  ScriptedMesh(ScriptedWorker target, ScriptedWorker draft, Duration draftTimeout)
      throws IOException {
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", target.address());
    if (draft != null) {
      pools.put("draft", draft.address());
    }
    RouterConfig config =
        new RouterConfig(
            0,
            pools,
            "target",
            draft != null ? "draft" : null,
            List.of(ZOO_TOKENIZER, otherTokenizer()),
            64,
            4096,
            8,
            Duration.ofSeconds(20),
            draftTimeout,
            8,
            Duration.ofSeconds(1),
            Keepalive.DEFAULT);
    String name = InProcessServerBuilder.generateName();
    router =
        new RouterServer(InProcessServerBuilder.forName(name), config, OpenTelemetry.noop())
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
  }

  /** A second tokenizer, unlike the zoo's: 512 tokens trained on other text. */
  static synchronized Path otherTokenizer() throws IOException {
    if (other == null) {
      Path dir = Files.createTempDirectory("other-tokenizer");
      other = dir.resolve("tokenizer.json");
      RandomCheckpoint.writeTokenizer(other, 512);
    }
    return other;
  }

  private static Path zooTokenizer() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      Path t = p.resolve("models").resolve("target").resolve("tokenizer.json");
      if (Files.isRegularFile(t)) {
        return t;
      }
    }
    throw new IllegalStateException("no models/target/tokenizer.json above the working directory");
  }

  List<GenerateChunk> chunks(GenerateRequest request) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .generate(request)
        .forEachRemaining(out::add);
    return out;
  }

  /** The whole text of a generation. */
  static String text(List<GenerateChunk> chunks) {
    StringBuilder s = new StringBuilder();
    chunks.forEach(c -> s.append(c.getText()));
    return s.toString();
  }

  static GenerateChunk last(List<GenerateChunk> chunks) {
    return chunks.get(chunks.size() - 1);
  }

  @Override
  public void close() {
    channel.shutdownNow();
    router.close();
  }
}
