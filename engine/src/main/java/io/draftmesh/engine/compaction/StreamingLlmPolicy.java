package io.draftmesh.engine.compaction;

/**
 * StreamingLLM (mit-han-lab/streaming-llm {@code kv_cache.py}): the first {@code sinks} positions
 * (attention sinks) and the most recent {@code budget - sinks}; query-agnostic, no attention read.
 * Written as a scored policy the way kvpress writes it: sinks score 1, the rest 0.
 */
public final class StreamingLlmPolicy extends ScoredKvPolicy {
  public static final int DEFAULT_SINKS = 4;

  private final int sinks;

  public StreamingLlmPolicy(int sinks) {
    if (sinks < 0) {
      throw new IllegalArgumentException("sinks: " + sinks + " (expected: >= 0)");
    }
    this.sinks = sinks;
  }

  public StreamingLlmPolicy() {
    this(DEFAULT_SINKS);
  }

  public int sinks() {
    return sinks;
  }

  @Override
  public java.util.SortedMap<String, Long> parameters() {
    return new java.util.TreeMap<>(java.util.Map.of("sinks", (long) sinks));
  }

  @Override
  public String name() {
    return "streaming_llm";
  }

  @Override
  public int observedQueries(int draftTokens) {
    return 0;
  }

  @Override
  protected int window(int budget) {
    if (sinks > budget) {
      throw new IllegalArgumentException(
          "sinks: " + sinks + " (expected: <= budget " + budget + ")");
    }
    return budget - sinks;
  }

  @Override
  protected float[][][] scores(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int candidates) {
    float[][][] s = new float[layers][kvHeads][candidates];
    for (float[][] layer : s) {
      for (float[] head : layer) {
        for (int j = 0; j < Math.min(sinks, candidates); j++) {
          head[j] = 1f;
        }
      }
    }
    return s;
  }
}
