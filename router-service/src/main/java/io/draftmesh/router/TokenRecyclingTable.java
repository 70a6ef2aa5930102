package io.draftmesh.router;

import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Token Recycling's adjacency table for one target model: token → the up to {@link
 * TokenRecyclingDrafter#K} tokens the target rated most likely after it, latest sighting wins. The
 * paper keeps it for the life of the server, so a request drafts from what earlier requests saw
 * from its first round on; the router keeps one per target model (model id, tokenizer and
 * vocabulary size: token ids mean nothing across tokenizers) and every request of that model reads
 * and writes it. Each entry is replaced whole, so concurrent requests see one sighting or another,
 * never a mix; races only decide which sighting is latest. Memory: K ints per token seen (128 KB
 * for a 4,096-token vocabulary seen in full at K = 8).
 */
final class TokenRecyclingTable {
  private final AtomicReferenceArray<int[]>
      next; // (vocab) candidates, most likely first; null = unseen

  TokenRecyclingTable(int vocab) {
    this.next = new AtomicReferenceArray<>(vocab);
  }

  /** The key of the table a target model's requests share. */
  static String key(io.draftmesh.proto.v1.ModelInfo target) {
    return target.getModelId() + "/" + target.getTokenizerHash() + "/" + target.getVocabSize();
  }

  int vocab() {
    return next.length();
  }

  /** The candidates after {@code token}, most likely first; null if it was never seen. */
  int[] candidates(int token) {
    return next.get(token);
  }

  /** Records the target's top candidates after {@code token} (ids, most likely first). */
  void learn(int token, int[] ids) {
    for (int id : ids) {
      if (id < 0 || id >= next.length()) {
        return; // not a token of this model: never drafted
      }
    }
    if (ids.length > 0) {
      next.set(token, ids);
    }
  }
}
