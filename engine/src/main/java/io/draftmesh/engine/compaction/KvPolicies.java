package io.draftmesh.engine.compaction;

import io.draftmesh.engine.runtime.EngineException;
import java.util.List;

/**
 * The KV compaction methods by the names requests use, with their defaults (papers.md §2) and the
 * checks every caller shares: errors name the field under {@code prefix} and say what was expected.
 */
public final class KvPolicies {
  public static final String H2O = "h2o";
  public static final String SNAPKV = "snapkv";
  public static final String SPECKV = "speckv";
  public static final String STREAMING_LLM = "streaming_llm";
  public static final List<String> METHODS = List.of(H2O, SNAPKV, SPECKV, STREAMING_LLM);

  private KvPolicies() {}

  /**
   * A policy for {@code method}; 0 for window or kernel means the default (h2o: window half the
   * budget, H2O's equal split of heavy hitters and recent tokens; it does not pool, so its kernel
   * must be 0), {@code sinks < 0} the default.
   */
  public static KvPolicy of(
      String prefix, String method, int budget, int window, int kernel, int sinks) {
    if (!METHODS.contains(method)) {
      throw EngineException.invalid(
          prefix
              + "method: \""
              + method
              + "\" (expected: one of h2o, snapkv, speckv, streaming_llm)");
    }
    if (budget < 1) {
      throw EngineException.invalid(prefix + "budget: " + budget + " (expected: >= 1)");
    }
    if (method.equals(STREAMING_LLM)) {
      int s = sinks < 0 ? StreamingLlmPolicy.DEFAULT_SINKS : sinks;
      if (s > budget) {
        throw EngineException.invalid(
            prefix + "sinks: " + s + " (expected: 0.." + budget + ", within the budget)");
      }
      return new StreamingLlmPolicy(s);
    }
    if (method.equals(H2O)) {
      int w = window == 0 ? budget / 2 : window;
      if (w < 0 || w > budget) {
        throw EngineException.invalid(
            prefix
                + "window: "
                + window
                + " (expected: 0 for half the budget, or 1.."
                + budget
                + ", within the budget)");
      }
      if (kernel != 0) {
        throw EngineException.invalid(
            prefix + "kernel: " + kernel + " (expected: 0; h2o does not pool its scores)");
      }
      return new H2oPolicy(w);
    }
    int w = window == 0 ? SpecKvPolicy.DEFAULT_WINDOW : window;
    int k = kernel == 0 ? SpecKvPolicy.DEFAULT_KERNEL : kernel;
    if (w < 1) {
      throw EngineException.invalid(
          prefix + "window: " + window + " (expected: 0 for the default 32, or >= 1)");
    }
    if (budget < w) {
      throw EngineException.invalid(
          prefix + "budget: " + budget + " (expected: >= " + prefix + "window " + w + ")");
    }
    if (k < 1 || k % 2 == 0) {
      throw EngineException.invalid(
          prefix + "kernel: " + kernel + " (expected: 0 for the default 7, or odd and >= 1)");
    }
    return method.equals(SPECKV)
        ? new SpecKvPolicy(w, k)
        : new SnapKvPolicy(w, k, SnapKvPolicy.Reduction.MAX, SnapKvPolicy.Pool.MAX);
  }
}
