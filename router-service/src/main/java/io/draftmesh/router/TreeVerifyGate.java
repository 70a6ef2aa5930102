package io.draftmesh.router;

/**
 * Per round of tree decoding, whether to verify the drafted tree or have the target take one plain
 * step instead, by expected tokens per wall nanosecond. A verify of n nodes costs more than a plain
 * step (a forward of 1 + n tokens instead of 1, and more to answer) and pays only if the tree is
 * expected to yield enough more than the plain step's one token; a round whose tree is weak is
 * cheaper as a plain step. Lossless either way: both commit only what the target decided, and the
 * choice depends only on the committed sequence and costs already measured.
 *
 * <p>Pure: fed the wall time of each verify (with its node count) and of each plain step, it
 * compares, for the tree at hand, {@code expectedTokens / verifyCost(nodes)} with {@code 1 /
 * plainCost}. Costs are running averages ({@link RunningAverage}) measured in this request, as
 * {@link SpeculationGate}'s are; there is no tuned threshold. Until both costs are known it
 * verifies once, then takes one plain step. The kind the rule stops choosing is still run now and
 * then, so that a cost that changed (a longer context, a busier machine) is seen: after {@link
 * SpeculationGate#PROBE_EVERY} steps without a sample of it, then after twice as many, and so on,
 * back to {@code PROBE_EVERY} once the rule chooses it again. A probe runs the kind the rule judged
 * worse, so probes that keep confirming the rule become rarer (a fixed interval cost a ninth of the
 * rounds where the tree always paid).
 */
final class TreeVerifyGate {
  private final RunningAverage verifyNanos = new RunningAverage(); // wall ns per verify
  private final RunningAverage verifyNodes = new RunningAverage(); // nodes per verify, alongside
  private final RunningAverage plainNanos = new RunningAverage(); // wall ns per plain step
  private int sinceVerify; // steps since a verify was measured
  private int sincePlain; // steps since a plain step was measured
  private int probeVerifyAfter = SpeculationGate.PROBE_EVERY; // steps without a verify
  private int probePlainAfter = SpeculationGate.PROBE_EVERY; // steps without a plain step

  /**
   * True: verify the drafted tree of {@code nodes}; false: one plain step instead (asked once per
   * step, before it runs). {@code expectedTokens} is what the verify is expected to commit (1 + the
   * expected accepted nodes); NaN where the drafter makes no estimate, and the tree is then always
   * verified.
   */
  boolean verifyNext(double expectedTokens, int nodes) {
    if (Double.isNaN(expectedTokens) || !verifyNanos.known()) {
      return true;
    }
    if (!plainNanos.known()) {
      return false;
    }
    if (sincePlain >= probePlainAfter) {
      probePlainAfter *= 2;
      return false;
    }
    if (sinceVerify >= probeVerifyAfter) {
      probeVerifyAfter *= 2;
      return true;
    }
    boolean verify =
        verifyPays(
            expectedTokens, nodes, verifyNanos.value(), verifyNodes.value(), plainNanos.value());
    if (verify) {
      probeVerifyAfter = SpeculationGate.PROBE_EVERY;
    } else {
      probePlainAfter = SpeculationGate.PROBE_EVERY;
    }
    return verify;
  }

  /** A verify of a {@code nodes}-node tree took {@code nanos} (send to committed and learned). */
  void verified(long nanos, int nodes) {
    verifyNanos.add(nanos);
    verifyNodes.add(nodes);
    sinceVerify = 0;
    sincePlain++;
  }

  /** A plain step took {@code nanos} (also the steps taken because there was nothing to draft). */
  void plain(long nanos) {
    plainNanos.add(nanos);
    sincePlain = 0;
    sinceVerify++;
  }

  /**
   * Whether a verify of {@code nodes} nodes, expected to commit {@code expectedTokens}, commits
   * more per nanosecond than a plain step's one token. Its cost is interpolated between the two
   * costs measured: a plain step is a forward of the trunk alone (0 nodes), and verifies of {@code
   * meanNodes} nodes took {@code meanVerifyNanos}; a tree smaller than the usual one (the table
   * knew fewer tokens) is charged less.
   */
  static boolean verifyPays(
      double expectedTokens,
      int nodes,
      double meanVerifyNanos,
      double meanNodes,
      double plainNanos) {
    double verifyNanos = plainNanos + (meanVerifyNanos - plainNanos) * nodes / meanNodes;
    return expectedTokens * plainNanos >= verifyNanos;
  }
}
