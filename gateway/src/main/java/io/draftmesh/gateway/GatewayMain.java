package io.draftmesh.gateway;

import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.telemetry.TelemetryConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code gateway}: parse the config, serve until told to stop, then drain.
 *
 * <p>For launchers: {@link #run(String[], Map)} blocks like {@code main} (and returns the exit
 * code); {@link #start(String[], Map)} returns a started {@link GatewayServer} whose {@link
 * GatewayServer#ports()} are the bound ports, for the caller to {@link GatewayServer#close()}.
 */
public final class GatewayMain {
  private static final Logger log = LoggerFactory.getLogger(GatewayMain.class);

  private GatewayMain() {}

  public static void main(String[] args) throws InterruptedException {
    int code = run(args, System.getenv());
    if (code != 0) {
      System.exit(code);
    }
  }

  /**
   * Runs the gateway until the JVM shuts down (SIGTERM: drain, then exit); returns the exit code:
   * 0, 2 for bad flags, 1 for a port that cannot be bound.
   */
  public static int run(String[] args, Map<String, String> env) throws InterruptedException {
    return run(args, env, System.err);
  }

  static int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      err.println("usage: gateway --router host:port [--model SPEC]... [flags]");
      err.println("API keys: DRAFTMESH_API_KEYS=key1,key2 or --api-keys-file PATH");
      err.print(GatewayConfig.usage());
      err.print(TelemetryConfig.usage(32, 42));
      return 0;
    }
    Started s;
    try {
      s = startWithTelemetry(args, env);
    } catch (GatewayConfig.ConfigException | TelemetryConfig.ConfigException e) {
      err.println("gateway: " + e.getMessage());
      err.println("run with --help for the flags");
      return 2;
    } catch (IOException | java.io.UncheckedIOException e) {
      err.println("gateway: cannot listen: " + e.getMessage());
      return 1;
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("gateway draining");
                  s.server.close();
                  s.telemetry.close();
                },
                "gateway-shutdown"));
    s.server.awaitTermination();
    return 0;
  }

  /**
   * Parses the config and starts a gateway (telemetry off unless {@code OTEL_*} configures it).
   *
   * @throws GatewayConfig.ConfigException for a bad flag or variable
   * @throws IOException when a port cannot be bound
   */
  public static GatewayServer start(String[] args, Map<String, String> env) throws IOException {
    return startWithTelemetry(args, env).server;
  }

  private record Started(GatewayServer server, Telemetry telemetry) {}

  private static Started startWithTelemetry(String[] args, Map<String, String> env)
      throws IOException {
    TelemetryConfig.Parsed tel = TelemetryConfig.parse(args, env);
    GatewayConfig config = GatewayConfig.parse(tel.rest(), env);
    Telemetry telemetry = Telemetry.create(env, "draftmesh-gateway", tel.config());
    GatewayServer server = null;
    try {
      server = GatewayServer.create(config, telemetry.openTelemetry());
      server.start();
      return new Started(server, telemetry);
    } catch (IOException | RuntimeException e) {
      if (server != null) {
        server.close();
      }
      telemetry.close();
      throw e;
    }
  }
}
