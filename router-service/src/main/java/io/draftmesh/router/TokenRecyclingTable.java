package io.draftmesh.router;

import java.util.concurrent.atomic.AtomicLongArray;
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
 *
 * <p>Beside it, per candidate rank, how often a drafted candidate of that rank was tried where the
 * target saw it in the context that happened, and how often it was the one accepted: the hit rates
 * that pick which of the template's nodes a smaller budget keeps.
 */
final class TokenRecyclingTable {
  private final AtomicReferenceArray<int[]>
      next; // (vocab) candidates, most likely first; null = unseen
  private final AtomicLongArray tried = new AtomicLongArray(TokenRecyclingDrafter.K); // (rank)
  private final AtomicLongArray hits = new AtomicLongArray(TokenRecyclingDrafter.K); // (rank)

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

  /** Counts a drafted candidate of {@code rank} tried in a context that happened. */
  void tried(int rank, boolean accepted) {
    tried.incrementAndGet(rank);
    if (accepted) {
      hits.incrementAndGet(rank);
    }
  }

  /**
   * How often a candidate of {@code rank} was accepted where it was tried, by Laplace's rule of
   * succession ((hits + 1) / (tries + 2)): 1/2 for every rank before anything was seen, always
   * strictly between 0 and 1.
   */
  double hitRate(int rank) {
    return (hits.get(rank) + 1.0) / (tried.get(rank) + 2.0);
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
