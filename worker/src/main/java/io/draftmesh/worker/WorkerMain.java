package io.draftmesh.worker;

import io.draftmesh.engine.runtime.EngineInfo;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.telemetry.TelemetryConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@code draft-service} and {@code target-service} run: parse the config, build telemetry,
 * serve on the port until the process is told to stop, then drain.
 */
public final class WorkerMain {
  private static final Logger log = LoggerFactory.getLogger(WorkerMain.class);

  /** Longest a model may take to load and warm up before the worker gives up. */
  static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);

  private WorkerMain() {}

  /**
   * Runs a worker of {@code role} until shutdown; returns the process exit code (2 for bad flags, 1
   * when the model fails to load).
   */
  public static int run(String[] args, Map<String, String> env, WorkerConfig.Role role) {
    return run(args, env, role, System.err);
  }

  static int run(String[] args, Map<String, String> env, WorkerConfig.Role role, PrintStream err) {
    String command = role.id() + "-service";
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      err.println("usage: " + command + " --model DIR [flags]");
      err.print(WorkerConfig.usage());
      err.print(TelemetryConfig.usage(32, 32));
      return 0;
    }
    WorkerConfig config;
    TelemetryConfig.Parsed tel;
    try {
      tel = TelemetryConfig.parse(args, env);
      config = WorkerConfig.parse(tel.rest(), env, role);
    } catch (WorkerConfig.ConfigException | TelemetryConfig.ConfigException e) {
      err.println(command + ": " + e.getMessage());
      err.println("run with --help for the flags");
      return 2;
    }
    Telemetry telemetry;
    try {
      telemetry = Telemetry.create(env, "draftmesh-" + command, tel.config());
    } catch (java.io.UncheckedIOException e) {
      err.println(command + ": " + e.getMessage());
      return 1;
    }
    WorkerServer server = WorkerServer.onPort(config, telemetry.openTelemetry());
    try {
      server.start();
    } catch (IOException e) {
      err.println(command + ": cannot listen on port " + config.port() + ": " + e.getMessage());
      telemetry.close();
      return 1;
    }
    Thread hook =
        new Thread(
            () -> {
              log.info("{} draining", command);
              server.close();
              telemetry.close();
            },
            "worker-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    log.info("{} listening on port {}, loading {}", command, server.port(), config.model());
    try {
      InferenceEngine engine = server.awaitReady(LOAD_TIMEOUT);
      EngineInfo i = engine.info();
      log.info(
          "{} serving {} ({}, {} parameters, {} layers, vocab {}, context {}) on port {}: "
              + "{} KV blocks of {} tokens, {} sessions, k <= {}",
          command,
          i.modelId(),
          i.architecture(),
          i.numParameters(),
          i.numLayers(),
          i.vocabSize(),
          i.maxContext(),
          server.port(),
          i.kvBlocksTotal(),
          i.kvBlockSize(),
          i.maxSessions(),
          i.maxTokensPerOp());
      server.awaitTermination();
      return 0;
    } catch (IllegalStateException e) {
      err.println(command + ": " + e.getMessage());
      removeHook(hook);
      server.close();
      telemetry.close();
      return 1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 1;
    }
  }

  private static void removeHook(Thread hook) {
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // The hook is already running and will close the server itself.
    }
  }
}
