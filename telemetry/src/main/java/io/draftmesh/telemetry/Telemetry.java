package io.draftmesh.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import java.util.Map;

/**
 * The OpenTelemetry SDK of one process, built once in {@code main} from the standard {@code OTEL_*}
 * environment variables and {@code otel.*} system properties. Unlike the SDK's own defaults, the
 * traces, metrics and logs exporters default to {@code none}, so a service started without
 * telemetry settings never tries to reach a collector; {@code OTEL_SDK_DISABLED=true} gives the
 * no-op implementation. Libraries take the resulting {@link OpenTelemetry} and never build their
 * own.
 */
public final class Telemetry implements AutoCloseable {
  private final OpenTelemetry openTelemetry;
  private final OpenTelemetrySdk sdk; // null when disabled

  private Telemetry(OpenTelemetry openTelemetry, OpenTelemetrySdk sdk) {
    this.openTelemetry = openTelemetry;
    this.sdk = sdk;
  }

  /**
   * From the process environment and system properties; {@code serviceName} is the default name.
   */
  public static Telemetry fromEnvironment(String serviceName) {
    return create(System.getenv(), serviceName);
  }

  /** From {@code env} (instead of the process environment) and the system properties. */
  public static Telemetry create(Map<String, String> env, String serviceName) {
    if (disabled(env)) {
      return new Telemetry(OpenTelemetry.noop(), null);
    }
    OpenTelemetrySdk sdk =
        AutoConfiguredOpenTelemetrySdk.builder()
            .addPropertiesSupplier(() -> defaults(serviceName))
            // Whether it is disabled was decided above, from the map we were given.
            .addPropertiesCustomizer(config -> Map.of("otel.sdk.disabled", "false"))
            .disableShutdownHook()
            .build()
            .getOpenTelemetrySdk();
    return new Telemetry(sdk, sdk);
  }

  /**
   * Lowest-precedence settings: system properties and environment variables override each of them.
   */
  static Map<String, String> defaults(String serviceName) {
    return Map.of(
        "otel.traces.exporter", "none",
        "otel.metrics.exporter", "none",
        "otel.logs.exporter", "none",
        "otel.service.name", serviceName);
  }

  static boolean disabled(Map<String, String> env) {
    String property = System.getProperty("otel.sdk.disabled");
    String value = property != null ? property : env.get("OTEL_SDK_DISABLED");
    return value != null && Boolean.parseBoolean(value.trim());
  }

  public OpenTelemetry openTelemetry() {
    return openTelemetry;
  }

  /** Whether a real SDK (not the no-op) was built. */
  public boolean enabled() {
    return sdk != null;
  }

  /** Flushes and stops the exporters. */
  @Override
  public void close() {
    if (sdk != null) {
      sdk.close();
    }
  }
}
