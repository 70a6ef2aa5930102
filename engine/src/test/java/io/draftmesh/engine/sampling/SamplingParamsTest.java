package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.runtime.EngineException;
import org.junit.jupiter.api.Test;

class SamplingParamsTest {

  private static void assertInvalid(SamplingParams params, String message) {
    assertThatThrownBy(() -> params.validate(4096))
        .isInstanceOf(EngineException.class)
        .hasMessage(message)
        .extracting(e -> ((EngineException) e).kind())
        .isEqualTo(EngineException.Kind.INVALID_ARGUMENT);
  }

  @Test
  void validateNamesTheFieldTheValueAndTheRange() {
    assertInvalid(
        new SamplingParams(-0.5f, 0, 0f, 0f, 0),
        "sampling.temperature: -0.5 (expected: 0 for greedy, or (0, 100])");
    assertInvalid(
        new SamplingParams(Float.NaN, 0, 0f, 0f, 0),
        "sampling.temperature: NaN (expected: 0 for greedy, or (0, 100])");
    assertInvalid(
        new SamplingParams(1f, 5000, 0f, 0f, 0),
        "sampling.top_k: 5000 (expected: 0 for off, or 1..4096)");
    assertInvalid(
        new SamplingParams(1f, -1, 0f, 0f, 0),
        "sampling.top_k: -1 (expected: 0 for off, or 1..4096)");
    assertInvalid(
        new SamplingParams(1f, 0, 1.5f, 0f, 0),
        "sampling.top_p: 1.5 (expected: 0 for off, or (0, 1])");
    assertInvalid(
        new SamplingParams(1f, 0, 0f, 1f, 0),
        "sampling.min_p: 1.0 (expected: 0 for off, or (0, 1))");
  }

  @Test
  void validParamsPass() {
    SamplingParams params = new SamplingParams(0.7f, 4096, 1f, 0.05f, 42);
    assertThat(params.validate(4096)).isSameAs(params);
    assertThat(SamplingParams.GREEDY.validate(1).isGreedy()).isTrue();
  }
}
