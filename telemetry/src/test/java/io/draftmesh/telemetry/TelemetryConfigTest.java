package io.draftmesh.telemetry;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import org.junit.jupiter.api.Test;

class TelemetryConfigTest {
  @Test
  void takesItsFlagsOutAndLeavesTheRestInOrder() {
    TelemetryConfig.Parsed p =
        TelemetryConfig.parse(
            new String[] {
              "--port", "1", "--metrics-port", "9464", "--model", "m", "--metrics-host=127.0.0.1"
            },
            Map.of());
    assertThat(p.config()).isEqualTo(new TelemetryConfig("127.0.0.1", 9464));
    assertThat(p.config().metricsEnabled()).isTrue();
    assertThat(p.rest()).containsExactly("--port", "1", "--model", "m");
  }

  @Test
  void offByDefaultAndReadFromTheEnvironment() {
    assertThat(TelemetryConfig.parse(new String[0], Map.of()).config())
        .isEqualTo(TelemetryConfig.OFF);
    assertThat(TelemetryConfig.OFF.metricsEnabled()).isFalse();
    TelemetryConfig env =
        TelemetryConfig.parse(new String[0], Map.of("DRAFTMESH_METRICS_PORT", "9100")).config();
    assertThat(env.metricsPort()).isEqualTo(9100);
    assertThat(env.metricsHost()).isEqualTo("0.0.0.0");
    // A flag wins over its variable.
    assertThat(
            TelemetryConfig.parse(
                    new String[] {"--metrics-port=0"}, Map.of("DRAFTMESH_METRICS_PORT", "9100"))
                .config()
                .metricsEnabled())
        .isFalse();
  }

  @Test
  void errorsNameTheOriginTheValueAndWhatWasExpected() {
    assertThatThrownBy(
            () -> TelemetryConfig.parse(new String[] {"--metrics-port", "70000"}, Map.of()))
        .isInstanceOf(TelemetryConfig.ConfigException.class)
        .hasMessage("--metrics-port: 70000 (expected: 0..65535)");
    assertThatThrownBy(
            () -> TelemetryConfig.parse(new String[0], Map.of("DRAFTMESH_METRICS_PORT", "x")))
        .hasMessage("DRAFTMESH_METRICS_PORT: x (expected: an integer)");
    assertThatThrownBy(() -> TelemetryConfig.parse(new String[] {"--metrics-port"}, Map.of()))
        .hasMessage("--metrics-port: missing value (expected: N)");
  }

  @Test
  void usageListsBothFlags() {
    assertThat(TelemetryConfig.usage(30, 30))
        .contains("--metrics-port N")
        .contains("DRAFTMESH_METRICS_PORT")
        .contains("--metrics-host ADDR");
  }
}
