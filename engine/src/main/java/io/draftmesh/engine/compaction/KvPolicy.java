package io.draftmesh.engine.compaction;

/**
 * A KV compaction policy: which cache slots each layer and KV head keeps after prefill, within a
 * budget of {@code C_max} slots per KV head that includes the recent window. The compaction
 * mechanism (gathering the kept slots, freeing the rest) is separate and shared by all policies.
 */
public interface KvPolicy {
  /** Short name as requests and reports spell it, e.g. {@code snapkv}. */
  String name();

  /**
   * The policy's settings by name, budget aside (it is the caller's): what, with the name and the
   * budget, decides the selection. Names a stored compacted cache (kvcache-service's key).
   */
  java.util.SortedMap<String, Long> parameters();

  /**
   * Attention query rows this policy needs captured at the end of the prefill, counting back from
   * the last token fed; 0 for query-agnostic policies.
   *
   * @param draftTokens draft-answer tokens fed after the prompt (SpecKV); 0 otherwise
   */
  int observedQueries(int draftTokens);

  /**
   * True when the policy reads only the sum of the observed rows of each query head: the engine
   * then passes a {@link CapturedAttention} of one row per head holding that sum, so observing
   * every prompt query costs one row, not a square. False (the default): every observed row.
   */
  default boolean summedQueries() {
    return false;
  }

  /**
   * Chooses the kept slots of a prompt of {@code promptLength} tokens.
   *
   * @param attention the captured attention of the last {@link #observedQueries} rows over every
   *     key fed (prompt, then any draft tokens); may be null when {@code observedQueries} is 0
   * @param budget C_max, slots kept per KV head; a budget of at least the prompt keeps everything
   */
  KvSelection select(
      int layers, int kvHeads, CapturedAttention attention, int promptLength, int budget);
}
