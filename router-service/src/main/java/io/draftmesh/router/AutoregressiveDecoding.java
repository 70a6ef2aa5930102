package io.draftmesh.router;

/**
 * STRATEGY_AUTOREGRESSIVE: the target alone. Open returns the first token, streamed at once; then
 * [Append] Propose(k) steps with k growing 1, 2, 4 .. up to the router's {@code arChunk}, so the
 * first tokens stream at once and later ones cost one round trip per chunk.
 */
final class AutoregressiveDecoding implements DecodingStrategy {
  private final TargetLoop loop;

  AutoregressiveDecoding(TargetLoop loop) {
    this.loop = loop;
  }

  @Override
  public void run() {
    if (loop.open(() -> {}) >= 0) {
      loop.runAutoregressive();
    }
  }
}
