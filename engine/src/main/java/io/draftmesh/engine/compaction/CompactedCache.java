package io.draftmesh.engine.compaction;

/**
 * A compacted prompt cache taken out of a pool, to be kept elsewhere (kvcache-service) and put back
 * into a new sequence: per layer and KV head the kept prompt positions and their slots' keys and
 * values. The arrays are not copied; treat as immutable.
 *
 * @param promptTokens the compacted prompt's length (the positions the next token follows)
 * @param positions (layers, kvHeads, kept): kept prompt positions, ascending, the same count per
 *     head
 * @param kv per layer, keys then values, each (kvHeads, kept, headDim) float32 little-endian; keys
 *     after RoPE at their original positions
 */
public record CompactedCache(int promptTokens, int[][][] positions, byte[] kv) {

  /** Slots kept per layer and KV head. */
  public int kept() {
    return positions.length == 0 || positions[0].length == 0 ? 0 : positions[0][0].length;
  }
}
