package io.draftmesh.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.exporter.prometheus.PrometheusMetricReader;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.opentelemetry.sdk.resources.Resource;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The OpenTelemetry SDK of one process, built once in {@code main} from the standard {@code OTEL_*}
 * environment variables and {@code otel.*} system properties, plus the process's Prometheus {@code
 * /metrics} endpoint when {@link TelemetryConfig} asks for one. Unlike the SDK's own defaults, the
 * traces, metrics and logs exporters default to {@code none}, so a service started without
 * telemetry settings never tries to reach a collector; {@code OTEL_SDK_DISABLED=true} gives the
 * no-op implementation, except that an explicitly requested {@code --metrics-port} is still served
 * (by a metrics-only SDK: asking for a port is explicit, the launcher's default {@code
 * OTEL_SDK_DISABLED} is not). Libraries take the resulting {@link OpenTelemetry} and never build
 * their own.
 */
public final class Telemetry implements AutoCloseable {
  private final OpenTelemetry openTelemetry;
  private final OpenTelemetrySdk sdk; // null when disabled
  private final MetricsEndpoint metrics; // null when no /metrics

  private Telemetry(OpenTelemetry openTelemetry, OpenTelemetrySdk sdk, MetricsEndpoint metrics) {
    this.openTelemetry = openTelemetry;
    this.sdk = sdk;
    this.metrics = metrics;
  }

  /**
   * From the process environment and system properties; {@code serviceName} is the default name.
   */
  public static Telemetry fromEnvironment(String serviceName) {
    return create(System.getenv(), serviceName);
  }

  /** From {@code env} (instead of the process environment) and the system properties. */
  public static Telemetry create(Map<String, String> env, String serviceName) {
    return create(env, serviceName, TelemetryConfig.OFF);
  }

  /**
   * From {@code env} and the system properties, with {@code /metrics} where {@code config} says.
   *
   * @throws java.io.UncheckedIOException when the metrics port cannot be bound
   */
  public static Telemetry create(
      Map<String, String> env, String serviceName, TelemetryConfig config) {
    return config.metricsEnabled()
        ? build(env, serviceName, config.metricsHost(), config.metricsPort())
        : build(env, serviceName, null, 0);
  }

  /**
   * For tests and embedding: like {@link #create(Map, String, TelemetryConfig)} but {@code port} 0
   * binds any free port ({@link #metricsPort()}).
   */
  public static Telemetry withMetrics(
      Map<String, String> env, String serviceName, String host, int port) {
    return build(env, serviceName, host, port);
  }

  private static Telemetry build(
      Map<String, String> env, String serviceName, String metricsHost, int metricsPort) {
    PrometheusMetricReader reader =
        metricsHost == null
            ? null
            // Scope labels would repeat on every series; target_info carries the resource.
            : PrometheusMetricReader.builder().setOtelScopeLabelsEnabled(false).build();
    OpenTelemetrySdk sdk;
    if (disabled(env)) {
      if (reader == null) {
        return new Telemetry(OpenTelemetry.noop(), null, null);
      }
      sdk =
          OpenTelemetrySdk.builder()
              .setMeterProvider(
                  SdkMeterProvider.builder()
                      .setResource(
                          Resource.getDefault()
                              .merge(
                                  Resource.create(
                                      Attributes.of(
                                          MeshAttributes.SERVICE_NAME,
                                          env.getOrDefault("OTEL_SERVICE_NAME", serviceName)))))
                      .registerMetricReader(reader)
                      .build())
              .build();
    } else {
      Map<String, String> overrides = fromEnv(env);
      // Whether it is disabled was decided above, from the map we were given.
      overrides.put("otel.sdk.disabled", "false");
      sdk =
          AutoConfiguredOpenTelemetrySdk.builder()
              .addPropertiesSupplier(() -> defaults(serviceName))
              .addPropertiesCustomizer(config -> overrides)
              .addMeterProviderCustomizer(
                  (builder, config) ->
                      reader == null ? builder : builder.registerMetricReader(reader))
              .disableShutdownHook()
              .build()
              .getOpenTelemetrySdk();
    }
    MetricsEndpoint endpoint = null;
    if (reader != null) {
      try {
        endpoint = MetricsEndpoint.start(metricsHost, metricsPort, reader);
      } catch (RuntimeException e) {
        sdk.close();
        throw e;
      }
    }
    return new Telemetry(sdk, sdk, endpoint);
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

  /**
   * The {@code OTEL_*} entries of {@code env} as {@code otel.*} properties, so a map given instead
   * of the process environment configures the SDK; a system property of the same name still wins.
   */
  static Map<String, String> fromEnv(Map<String, String> env) {
    Map<String, String> props = new HashMap<>();
    env.forEach(
        (k, v) -> {
          if (k.startsWith("OTEL_") && v != null) {
            String p = k.toLowerCase(Locale.ROOT).replace('_', '.');
            if (System.getProperty(p) == null) {
              props.put(p, v);
            }
          }
        });
    return props;
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

  /** The port {@code /metrics} is served on, or -1 when it is not. */
  public int metricsPort() {
    return metrics == null ? -1 : metrics.port();
  }

  /**
   * Exports every ended span and collected metric now, waiting up to {@code timeout} (tests, and
   * before a process hands its telemetry to a backend it is about to query).
   */
  public void flush(java.time.Duration timeout) {
    if (sdk != null) {
      io.opentelemetry.sdk.common.CompletableResultCode.ofAll(
              java.util.List.of(
                  sdk.getSdkTracerProvider().forceFlush(), sdk.getSdkMeterProvider().forceFlush()))
          .join(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
    }
  }

  /** Stops {@code /metrics}, then flushes and stops the exporters. */
  @Override
  public void close() {
    if (metrics != null) {
      metrics.close();
    }
    if (sdk != null) {
      sdk.close();
    }
  }
}
