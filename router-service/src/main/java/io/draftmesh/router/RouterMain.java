package io.draftmesh.router;

import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.telemetry.TelemetryConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code router-service}: parse the config, serve until told to stop, then drain. */
public final class RouterMain {
  private static final Logger log = LoggerFactory.getLogger(RouterMain.class);

  private RouterMain() {}

  public static void main(String[] args) throws InterruptedException {
    int code = run(args, System.getenv(), System.err);
    if (code != 0) {
      System.exit(code);
    }
  }

  /** Runs the router until shutdown; returns the exit code (2 for bad flags, 1 for no port). */
  public static int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      err.println("usage: router-service --target host:port [--draft host:port] [flags]");
      err.print(RouterConfig.usage());
      err.print(TelemetryConfig.usage(30, 34));
      return 0;
    }
    RouterConfig config;
    TelemetryConfig.Parsed tel;
    try {
      tel = TelemetryConfig.parse(args, env);
      config = RouterConfig.parse(tel.rest(), env);
    } catch (IllegalArgumentException e) {
      err.println("router-service: " + e.getMessage());
      err.println("run with --help for the flags");
      return 2;
    }
    Telemetry telemetry;
    try {
      telemetry = Telemetry.create(env, "draftmesh-router", tel.config());
    } catch (java.io.UncheckedIOException e) {
      err.println("router-service: " + e.getMessage());
      return 1;
    }
    RouterServer server;
    try {
      server = RouterServer.onPort(config, telemetry.openTelemetry());
    } catch (RuntimeException e) {
      err.println("router-service: " + e.getMessage());
      telemetry.close();
      return 2;
    }
    try {
      server.start();
    } catch (IOException e) {
      err.println("router-service: cannot listen on port " + config.port() + ": " + e.getMessage());
      server.close();
      telemetry.close();
      return 1;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("router draining");
                  server.close();
                  telemetry.close();
                },
                "router-shutdown"));
    server.awaitTermination();
    return 0;
  }
}
