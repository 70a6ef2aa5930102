package io.draftmesh.router;

/**
 * STRATEGY_AUTOREGRESSIVE: the target alone. Open returns the first token, streamed at once; then
 * [Append] Propose(k) steps with k growing 1, 2, 4 .. up to the router's {@code arChunk}, so the
 * first tokens stream at once, with the next Propose always sent before the answer to the one
 * before it is read, so the target never waits a round trip between chunks ({@link
 * TargetLoop#runAutoregressive}).
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
