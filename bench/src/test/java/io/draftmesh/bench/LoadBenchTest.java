package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** bench load's flags and refusal parsing (the runs themselves are the bench, never a test). */
class LoadBenchTest {
  @Test
  void flagsSizeTheGatewaysLimits() {
    assertThat(LoadBench.parse(new String[] {}))
        .isEqualTo(new LoadBench.Options(1000, 16, 250, 40, 200));
    assertThat(LoadBench.parse(new String[] {"--quick"}))
        .isEqualTo(new LoadBench.Options(200, 16, 50, 40, 200));
    assertThat(LoadBench.parse(new String[] {"--quick", "--queue", "4", "--streams", "10"}))
        .isEqualTo(new LoadBench.Options(10, 4, 50, 40, 200));
    assertThat(LoadBench.parse(new String[] {"--help"})).isNull();
  }

  @Test
  void badFlagsNameTheFlagAndTheValue() {
    assertThatThrownBy(() -> LoadBench.parse(new String[] {"--queue", "0"}))
        .hasMessage("--queue: 0 (expected: an integer >= 1)");
    assertThatThrownBy(() -> LoadBench.parse(new String[] {"--overload"}))
        .hasMessage("--overload: missing value");
    assertThatThrownBy(() -> LoadBench.parse(new String[] {"--fast"}))
        .hasMessage("unknown flag --fast");
  }

  @Test
  void aRefusalsCodeIsReadFromItsOpenAiErrorBody() {
    LoadBench.Client c = new LoadBench.Client();
    c.errorBody.append(
        "{\"error\":{\"message\":\"server busy\",\"type\":\"rate_limit_error\","
            + "\"param\":null,\"code\":\"server_busy\"}}");
    assertThat(c.errorCode()).isEqualTo("server_busy");
    assertThat(new LoadBench.Client().errorCode()).isEqualTo("-");
  }
}
