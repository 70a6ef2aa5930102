package io.draftmesh.engine.sampling;

import io.draftmesh.engine.runtime.EngineException;

/**
 * Per-request sampling transforms, applied in this order: temperature, top-k, top-p, min-p. Zero
 * values mean "off"; temperature 0 is greedy decoding.
 *
 * @param temperature 0 = greedy; otherwise (0, 100]
 * @param topK 0 = off; otherwise 1..vocabSize
 * @param topP 0 or 1 = off; otherwise (0, 1)
 * @param minP 0 = off; otherwise (0, 1)
 * @param seed seeds the request's random stream
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, long seed) {

  public static final SamplingParams GREEDY = new SamplingParams(0f, 0, 0f, 0f, 0L);

  public boolean isGreedy() {
    return temperature == 0f;
  }

  /** Throws INVALID_ARGUMENT naming the first bad field, its value and the expected range. */
  public SamplingParams validate(int vocabSize) {
    if (!(temperature >= 0f && temperature <= 100f)) {
      throw EngineException.invalid(
          "sampling.temperature: " + temperature + " (expected: 0 for greedy, or (0, 100])");
    }
    if (topK < 0 || topK > vocabSize) {
      throw EngineException.invalid(
          "sampling.top_k: " + topK + " (expected: 0 for off, or 1.." + vocabSize + ")");
    }
    if (!(topP >= 0f && topP <= 1f)) {
      throw EngineException.invalid(
          "sampling.top_p: " + topP + " (expected: 0 for off, or (0, 1])");
    }
    if (!(minP >= 0f && minP < 1f)) {
      throw EngineException.invalid(
          "sampling.min_p: " + minP + " (expected: 0 for off, or (0, 1))");
    }
    return this;
  }
}
