package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The generate client against an in-process worker: streamed text equals the decoded tokens. */
class GenerateCommandTest {
  @TempDir Path dir;

  @Test
  void streamsTheSameTextTheTokenizerDecodes() throws Exception {
    Path model = dir.resolve("tiny");
    GenCheckpointCommand.ensure(model, RandomCheckpoint.tinyLlama(), 3L);
    EngineConfig config = new EngineConfig(model, 2L << 20, 16, 2, 8, 64, 256);
    String name = InProcessServerBuilder.generateName();
    try (WorkerServer server =
            new WorkerServer(
                    InProcessServerBuilder.forName(name),
                    WorkerConfig.Role.TARGET,
                    () -> InferenceEngine.load(config),
                    Duration.ofSeconds(1),
                    OpenTelemetry.noop())
                .start();
        TextTokenizer tokenizer = TextTokenizer.load(model.resolve("tokenizer.json"))) {
      server.awaitReady(Duration.ofMinutes(1));
      ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
      GenerateCommand.Request request =
          new GenerateCommand.Request(
              "Once upon a time",
              20,
              SamplingParams.newBuilder().setTemperature(0.9f).setSeed(11).build(),
              60);
      GenerateCommand.Result r = GenerateCommand.generate(channel, tokenizer, request, out);
      channel.shutdownNow();

      assertThat(r.generated() + (r.eos() ? 1 : 0)).isBetween(1, 20);
      assertThat(r.promptTokens()).isEqualTo(tokenizer.encode("Once upon a time", true).length);
      String printed = bytes.toString(StandardCharsets.UTF_8);
      int[] shown =
          java.util.Arrays.stream(r.tokens()).filter(t -> !tokenizer.isSpecial(t)).toArray();
      String expected = new String(tokenizer.bytes(shown), StandardCharsets.UTF_8);
      assertThat(printed).isEqualTo("Once upon a time" + expected + System.lineSeparator());
      assertThat(GenerateCommand.summary(r)).contains("tokens/s");
      assertThat(server.engine().activeSessions()).isZero();
    }
  }
}
