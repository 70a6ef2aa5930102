package io.draftmesh.engine.kv;

import java.nio.ByteBuffer;

/**
 * Moves one token's keys and values between slots of a {@link KvBlockPool}, in every layer and KV
 * head. After a tree verify the accepted path's nodes sit in scattered slots; moving them to
 * consecutive positions makes the sequence's KV a plain causal history again. Keys were stored
 * after RoPE at their path position, which the move keeps, so nothing is re-rotated.
 */
public final class SlotMoves {
  private SlotMoves() {}

  /** Copies slot {@code from}'s keys and values over slot {@code to}'s. */
  public static void move(KvBlockPool pool, long from, long to) {
    if (from == to) {
      return;
    }
    int slots = pool.slots();
    int rowBytes = pool.rowBytes();
    for (int l = 0; l < pool.layers(); l++) {
      copy(pool.keys(l), slots, rowBytes, pool.kvHeads(), from, to);
      copy(pool.values(l), slots, rowBytes, pool.kvHeads(), from, to);
    }
  }

  private static void copy(ByteBuffer buf, int slots, int rowBytes, int heads, long from, long to) {
    for (int h = 0; h < heads; h++) {
      int src = Math.toIntExact(((long) h * slots + from) * rowBytes);
      int dst = Math.toIntExact(((long) h * slots + to) * rowBytes);
      buf.put(dst, buf, src, rowBytes);
    }
  }
}
