package io.draftmesh.cli;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh demo}: the whole path on a bundled tiny model. Makes the model if it is not
 * cached, starts a target worker on a free port (real Netty, in this process), streams a generation
 * from it through the same client as {@code generate}, and shuts the worker down.
 */
final class DemoCommand {
  static final String USAGE =
      """
      usage: draftmesh demo [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
                            [--min-p M] [--seed S]
        Generates from tiny-llama in ${XDG_CACHE_HOME:-~/.cache}/draftmesh/models (made on first use).""";

  static final String DEFAULT_PROMPT = "Once upon a time";

  private DemoCommand() {}

  static Path modelsDir(Map<String, String> env) {
    String xdg = env.get("XDG_CACHE_HOME");
    Path cache =
        xdg != null && !xdg.isBlank()
            ? Path.of(xdg)
            : Path.of(System.getProperty("user.home"), ".cache");
    return cache.resolve("draftmesh").resolve("models");
  }

  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err)
      throws Exception {
    Args a = Args.parse(args, GenerateCommand.SAMPLING_FLAGS, Set.of());
    GenerateCommand.Request request = GenerateCommand.Request.from(a, DEFAULT_PROMPT);
    Path model = modelsDir(env).resolve("tiny-llama");
    if (GenCheckpointCommand.ensure(model, RandomCheckpoint.tinyLlama(), 1L)) {
      err.println("made a random tiny-llama checkpoint in " + model);
    }
    WorkerConfig config =
        WorkerConfig.parse(
            new String[] {
              "--model",
              model.toString(),
              "--port",
              "0",
              "--kv-budget-mb",
              "16",
              "--max-sessions",
              "4",
              "--max-context",
              "1024",
              "--drain-seconds",
              "1"
            },
            Map.of(),
            WorkerConfig.Role.TARGET);
    try (Telemetry telemetry = Telemetry.fromEnvironment("draftmesh-demo");
        WorkerServer server = WorkerServer.onPort(config, telemetry.openTelemetry()).start()) {
      server.awaitReady(Duration.ofMinutes(5));
      String target = "localhost:" + server.port();
      err.println("target worker serving " + model.getFileName() + " on " + target);
      err.println("(random weights: the text is noise until the model zoo ships trained models)");
      var channel = GenerateCommand.channel(target, telemetry.openTelemetry());
      try (TextTokenizer tokenizer = TextTokenizer.load(model.resolve("tokenizer.json"))) {
        GenerateCommand.Result r = GenerateCommand.generate(channel, tokenizer, request, out);
        err.println(GenerateCommand.summary(r));
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    return 0;
  }
}
