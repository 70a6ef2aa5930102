package io.draftmesh.engine.compaction;

import java.util.Arrays;

/**
 * What a KV compaction keeps: per layer and KV head, the cache positions whose keys and values
 * survive, ascending, the same count for every head (heads may keep different positions). Keys keep
 * their original RoPE positions, so after compaction a sequence's next position is decoupled from
 * its cache length.
 *
 * @param kept (layers, kvHeads, count): kept positions, ascending, each in [0, promptLength)
 * @param promptLength the sequence length the selection was made for
 * @param refeed trailing prompt tokens whose KV is dropped and recomputed on the compacted cache
 *     (SpecKV re-feeds the last prompt token, so its first prediction already reads the compacted
 *     cache); 0 for policies that keep the last token's KV
 */
public record KvSelection(int[][][] kept, int promptLength, int refeed) {

  /** Every position kept by every head: what a budget of at least the prompt length gives. */
  public static KvSelection all(int layers, int kvHeads, int promptLength) {
    int[] every = new int[promptLength];
    Arrays.setAll(every, i -> i);
    int[][][] kept = new int[layers][kvHeads][];
    for (int[][] layer : kept) {
      for (int h = 0; h < kvHeads; h++) {
        layer[h] = every.clone();
      }
    }
    return new KvSelection(kept, promptLength, 0);
  }

  /** Slots each head keeps (the same for all). */
  public int keptPerHead() {
    return kept.length == 0 || kept[0].length == 0 ? 0 : kept[0][0].length;
  }

  /** Slots each head drops, re-fed tokens included. */
  public int droppedPerHead() {
    return promptLength - keptPerHead();
  }

  /** True when nothing is dropped and nothing re-fed. */
  public boolean keepsAll() {
    return refeed == 0 && keptPerHead() == promptLength;
  }
}
