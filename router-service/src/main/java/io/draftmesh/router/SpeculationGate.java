package io.draftmesh.router;

/**
 * Whether the next step of an adaptive speculative request should be a speculative round or a chunk
 * of plain target steps, from what each has cost this request in wall time per committed token.
 * Speculation is a bet that can lose: when a worker op costs about as much as the forward it
 * carries (small models, shared cores), a round's two round trips for ~3 tokens cost more than the
 * target writing a chunk alone (SmartSpec, Liu et al. 2024, turns speculation off on the same kind
 * of cost model). Lossless either way: both paths commit only what the target decided, and the
 * choice depends only on times already measured.
 *
 * <p>Pure: fed (nanoseconds, tokens) of each step, it says which kind to run next. It measures
 * {@link #WARMUP_ROUNDS} rounds, then one chunk, then runs the cheaper kind, switching only for a
 * {@link #MARGIN} gain, and runs the other kind once every {@link #PROBE_EVERY} steps so a change
 * in either cost (longer context, a busier machine) is seen.
 */
final class SpeculationGate {
  static final int WARMUP_ROUNDS = 4;
  static final int PROBE_EVERY = 8;

  /** The other kind must be this much cheaper per token before the gate switches to it. */
  static final double MARGIN = 0.05;

  private final RunningAverage speculative = new RunningAverage(); // ns per committed token
  private final RunningAverage plain = new RunningAverage();
  private int rounds;
  private int chunks;
  private boolean preferSpeculation = true;
  private int sinceProbe;

  /** True: run a speculative round next; false: a chunk of plain target steps. */
  boolean speculateNext() {
    if (rounds < WARMUP_ROUNDS) {
      return true;
    }
    if (chunks == 0) {
      return false;
    }
    if (preferSpeculation
        ? plain.value() < speculative.value() * (1 - MARGIN)
        : speculative.value() < plain.value() * (1 - MARGIN)) {
      preferSpeculation = !preferSpeculation;
      sinceProbe = 0;
    }
    if (++sinceProbe > PROBE_EVERY) {
      sinceProbe = 0;
      return !preferSpeculation;
    }
    return preferSpeculation;
  }

  /** A speculative round took {@code nanos} and committed {@code tokens}. */
  void speculated(long nanos, int tokens) {
    if (tokens > 0) {
      speculative.add((double) nanos / tokens);
      rounds++;
    }
  }

  /** A chunk of plain target steps took {@code nanos} and committed {@code tokens}. */
  void plain(long nanos, int tokens) {
    if (tokens > 0) {
      plain.add((double) nanos / tokens);
      chunks++;
    }
  }
}
