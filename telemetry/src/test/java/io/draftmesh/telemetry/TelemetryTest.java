package io.draftmesh.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.api.Test;

class TelemetryTest {
  @Test
  void disabledGivesTheNoopImplementation() {
    try (Telemetry t = Telemetry.create(Map.of("OTEL_SDK_DISABLED", "true"), "svc")) {
      assertThat(t.enabled()).isFalse();
      assertThat(
              t.openTelemetry()
                  .getTracer("x")
                  .spanBuilder("s")
                  .startSpan()
                  .getSpanContext()
                  .isValid())
          .isFalse();
    }
  }

  @Test
  void theGivenMapConfiguresTheSdk() {
    assertThat(Telemetry.fromEnv(Map.of("OTEL_TRACES_EXPORTER", "zipkin", "PATH", "/bin")))
        .containsExactlyEntriesOf(Map.of("otel.traces.exporter", "zipkin"));
  }

  @Test
  void metricsOnlyWhenDisabledButAPortWasAskedFor() {
    try (Telemetry t =
        Telemetry.create(
            Map.of("OTEL_SDK_DISABLED", "true"), "svc", new TelemetryConfig("127.0.0.1", 0))) {
      // Port 0 in a config means no endpoint: the no-op stays.
      assertThat(t.enabled()).isFalse();
      assertThat(t.metricsPort()).isEqualTo(-1);
    }
  }

  @Test
  void enabledSdkExportsNowhereByDefault() {
    assertThat(Telemetry.defaults("svc"))
        .containsEntry("otel.traces.exporter", "none")
        .containsEntry("otel.metrics.exporter", "none")
        .containsEntry("otel.logs.exporter", "none")
        .containsEntry("otel.service.name", "svc");
    try (Telemetry t = Telemetry.create(Map.of(), "svc")) {
      assertThat(t.enabled()).isTrue();
      var span = t.openTelemetry().getTracer("x").spanBuilder("s").startSpan();
      assertThat(span.getSpanContext().isValid()).isTrue();
      span.end();
    }
  }
}
