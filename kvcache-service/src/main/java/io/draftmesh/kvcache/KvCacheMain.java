package io.draftmesh.kvcache;

import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.telemetry.TelemetryConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code kvcache-service}: parse the config, serve until told to stop, then drain. */
public final class KvCacheMain {
  private static final Logger log = LoggerFactory.getLogger(KvCacheMain.class);

  public static final String USAGE = "usage: draftmesh kvcache [--data-dir DIR] [flags]";

  private KvCacheMain() {}

  public static void main(String[] args) throws InterruptedException {
    int code = run(args, System.getenv(), System.err);
    if (code != 0) {
      System.exit(code);
    }
  }

  /** Runs the service until shutdown; returns the exit code (2 for bad flags, 1 for no port). */
  public static int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      err.println(USAGE);
      err.print(KvCacheConfig.usage());
      err.print(TelemetryConfig.usage(30, 34));
      return 0;
    }
    KvCacheConfig config;
    TelemetryConfig.Parsed tel;
    try {
      tel = TelemetryConfig.parse(args, env);
      config = KvCacheConfig.parse(tel.rest(), env);
    } catch (IllegalArgumentException e) {
      err.println("kvcache-service: " + e.getMessage());
      err.println("run with --help for the flags");
      return 2;
    }
    Telemetry telemetry;
    try {
      telemetry = Telemetry.create(env, "draftmesh-kvcache", tel.config());
    } catch (UncheckedIOException e) {
      err.println("kvcache-service: " + e.getMessage());
      return 1;
    }
    KvCacheServer server;
    try {
      server = KvCacheServer.onPort(config, telemetry.openTelemetry());
    } catch (RuntimeException e) {
      err.println("kvcache-service: " + e.getMessage());
      telemetry.close();
      return 1;
    }
    try {
      server.start();
    } catch (IOException e) {
      err.println(
          "kvcache-service: cannot listen on port " + config.port() + ": " + e.getMessage());
      server.close();
      telemetry.close();
      return 1;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("kvcache draining");
                  server.close();
                  telemetry.close();
                },
                "kvcache-shutdown"));
    server.awaitTermination();
    return 0;
  }
}
