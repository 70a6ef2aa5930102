package io.draftmesh.telemetry;

import io.opentelemetry.exporter.prometheus.PrometheusMetricReader;
import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The Prometheus {@code /metrics} endpoint of one process: the OpenTelemetry SDK's metrics, read at
 * scrape time by a {@link PrometheusMetricReader} and served in the Prometheus text format by the
 * JDK's HTTP server (with {@code /-/healthy} beside it). Counters get Prometheus's {@code _total}
 * and units their suffix ({@code _seconds}), so {@code draftmesh.time_to_first_token} in seconds is
 * scraped as {@code draftmesh_time_to_first_token_seconds}.
 */
public final class MetricsEndpoint implements AutoCloseable {
  private final HTTPServer server;
  private final ExecutorService executor;

  private MetricsEndpoint(HTTPServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /**
   * Serves {@code reader} on {@code host:port}; port 0 picks a free one ({@link #port()}).
   *
   * @throws UncheckedIOException naming the address when it cannot be bound
   */
  static MetricsEndpoint start(String host, int port, PrometheusMetricReader reader) {
    PrometheusRegistry registry = new PrometheusRegistry();
    registry.register(reader);
    // Scrapes are rare (every 10-60 s) and cheap: one daemon thread is plenty.
    ExecutorService executor =
        Executors.newSingleThreadExecutor(
            r -> {
              Thread t = new Thread(r, "metrics-http");
              t.setDaemon(true);
              return t;
            });
    try {
      HTTPServer server =
          HTTPServer.builder()
              .hostname(host)
              .port(port)
              .registry(registry)
              .executorService(executor)
              .buildAndStart();
      return new MetricsEndpoint(server, executor);
    } catch (IOException e) {
      executor.shutdownNow();
      throw new UncheckedIOException(
          "--metrics-port: cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
    }
  }

  /** The bound port. */
  public int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.close();
    executor.shutdownNow();
  }
}
