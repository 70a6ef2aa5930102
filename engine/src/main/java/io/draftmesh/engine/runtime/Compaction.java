package io.draftmesh.engine.runtime;

import io.draftmesh.engine.compaction.CompactedCache;

/**
 * What {@link Sequence#compact} did to a prompt's KV cache.
 *
 * @param next the prediction after the prompt (SpecKV: read from the compacted cache after
 *     re-feeding the last prompt token; SnapKV, StreamingLLM: the prefill's, which saw the whole
 *     prompt)
 * @param method the policy's name, e.g. {@code snapkv}
 * @param promptTokens the prompt's length L
 * @param keptSlots cache slots per KV head after compaction (re-fed tokens included)
 * @param droppedSlots prompt positions per KV head whose KV is gone: L - keptSlots
 * @param answerTokens draft-answer tokens read for scoring and then dropped (SpecKV)
 * @param freedBlocks KV blocks returned to the pool
 * @param bytesPerSlot bytes one slot takes across layers, KV heads, keys and values
 * @param cache the compacted cache copied out of the pool when the caller asked for it (to store
 *     it), else null; null too when nothing was dropped
 */
public record Compaction(
    Position next,
    String method,
    int promptTokens,
    int keptSlots,
    int droppedSlots,
    int answerTokens,
    int freedBlocks,
    long bytesPerSlot,
    CompactedCache cache) {

  public long keptBytes() {
    return keptSlots * bytesPerSlot;
  }

  public long droppedBytes() {
    return droppedSlots * bytesPerSlot;
  }

  /** True when nothing of the prompt was dropped. */
  public boolean keptAll() {
    return droppedSlots == 0;
  }
}
