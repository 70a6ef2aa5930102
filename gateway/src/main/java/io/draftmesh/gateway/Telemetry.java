package io.draftmesh.gateway;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import java.util.Map;

/**
 * The gateway process's OpenTelemetry SDK, built once in {@code main} from the standard {@code
 * OTEL_*} variables (as the router and workers do): exporters default to {@code none}; {@code
 * OTEL_SDK_DISABLED=true} gives the no-op implementation.
 */
final class Telemetry implements AutoCloseable {
  private final OpenTelemetry openTelemetry;
  private final OpenTelemetrySdk sdk; // null when disabled

  private Telemetry(OpenTelemetry openTelemetry, OpenTelemetrySdk sdk) {
    this.openTelemetry = openTelemetry;
    this.sdk = sdk;
  }

  static Telemetry fromEnvironment(Map<String, String> env, String serviceName) {
    String property = System.getProperty("otel.sdk.disabled");
    String value = property != null ? property : env.get("OTEL_SDK_DISABLED");
    if (value != null && Boolean.parseBoolean(value.trim())) {
      return new Telemetry(OpenTelemetry.noop(), null);
    }
    OpenTelemetrySdk sdk =
        AutoConfiguredOpenTelemetrySdk.builder()
            .addPropertiesSupplier(
                () ->
                    Map.of(
                        "otel.traces.exporter", "none",
                        "otel.metrics.exporter", "none",
                        "otel.logs.exporter", "none",
                        "otel.service.name", serviceName))
            .disableShutdownHook()
            .build()
            .getOpenTelemetrySdk();
    return new Telemetry(sdk, sdk);
  }

  OpenTelemetry openTelemetry() {
    return openTelemetry;
  }

  @Override
  public void close() {
    if (sdk != null) {
      sdk.close();
    }
  }
}
