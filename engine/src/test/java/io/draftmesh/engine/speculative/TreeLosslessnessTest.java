package io.draftmesh.engine.speculative;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.sampling.ChiSquare;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.TokenSampler;
import io.draftmesh.engine.speculative.TreeVerifier.Outcome;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

/**
 * Statistical check that multi-draft tree verification ({@link TreeVerifier#sample}) emits exactly
 * the target's distribution, on the toy of {@link SpeculativeLosslessnessTest} (6 tokens, target
 * and draft depending on position and previous token, disagreeing on purpose).
 *
 * <p>Each round drafts a tree of depth 2 with {@code width} children per node, siblings drawn from
 * the draft either independently (with replacement, SpecInfer) or without replacement (RSD: each
 * sibling from q with the earlier siblings removed, which is the q passed for it). The target
 * scores every node on its own path; the rule picks a path and a correction or bonus token; rounds
 * repeat until three tokens exist. The first token is tested against p_1 (df 4), the first three
 * against the joint (df 124). Negative controls: the same harness must reject a rule that skips the
 * residual update between siblings, one that passes the unconditional q for siblings drawn without
 * replacement, and one that always takes the first root. 60,000 sequences, fixed seeds, a pass
 * needs p &gt; 1e-3.
 */
class TreeLosslessnessTest {
  private static final int VOCAB = 6;
  private static final int TRIALS = 60_000;

  /** A verification rule under test. */
  interface Rule {
    Outcome verify(int[] tokens, int[] parents, ProbDist[] q, ProbDist[] p, RandomGenerator rng);
  }

  /** The draft tree of one round, with the q each node was drawn from. */
  record Tree(int[] tokens, int[] parents, ProbDist[] q, ProbDist[] unconditionalQ) {}

  /**
   * Draws a depth-2 tree after {@code prev} at output position t: {@code width} roots, {@code
   * width} children under each.
   */
  /**
   * A model-free drafter's tree (Token Recycling, lookahead): fixed tokens chosen from the context,
   * each with a one-hot q, some of them tokens the target rules out.
   */
  static Tree deterministic(int t, int prev) {
    int[] roots = {(t + prev) % VOCAB, (t + 2 * prev + 1) % VOCAB, (t + 3) % VOCAB};
    List<Integer> tokens = new ArrayList<>();
    List<Integer> parents = new ArrayList<>();
    for (int r : roots) {
      if (!tokens.contains(r)) {
        tokens.add(r);
        parents.add(-1);
      }
    }
    int n = tokens.size();
    for (int r = 0; r < n; r++) {
      int child = (tokens.get(r) + t) % VOCAB;
      tokens.add(child);
      parents.add(r);
    }
    ProbDist[] q = new ProbDist[tokens.size()];
    for (int j = 0; j < q.length; j++) {
      q[j] = ProbDist.oneHot(VOCAB, tokens.get(j));
    }
    return new Tree(
        tokens.stream().mapToInt(Integer::intValue).toArray(),
        parents.stream().mapToInt(Integer::intValue).toArray(),
        q,
        q);
  }

  static Tree draft(int t, int prev, int width, boolean withoutReplacement, RandomGenerator rng) {
    List<Integer> tokens = new ArrayList<>();
    List<Integer> parents = new ArrayList<>();
    List<ProbDist> q = new ArrayList<>();
    List<ProbDist> uq = new ArrayList<>();
    drawSiblings(t, prev, -1, width, withoutReplacement, rng, tokens, parents, q, uq);
    int roots = tokens.size();
    for (int r = 0; r < roots; r++) {
      drawSiblings(t + 1, tokens.get(r), r, width, withoutReplacement, rng, tokens, parents, q, uq);
    }
    return new Tree(
        tokens.stream().mapToInt(Integer::intValue).toArray(),
        parents.stream().mapToInt(Integer::intValue).toArray(),
        q.toArray(new ProbDist[0]),
        uq.toArray(new ProbDist[0]));
  }

  private static void drawSiblings(
      int t,
      int prev,
      int parent,
      int width,
      boolean withoutReplacement,
      RandomGenerator rng,
      List<Integer> tokens,
      List<Integer> parents,
      List<ProbDist> q,
      List<ProbDist> uq) {
    ProbDist base = SpeculativeLosslessnessTest.sampledDraft(t, prev);
    float[] remaining = base.toDense().clone();
    for (int i = 0; i < width; i++) {
      ProbDist from = withoutReplacement ? normalized(remaining) : base;
      if (from == null) {
        return; // the draft's support is used up
      }
      int x = TokenSampler.sample(from, rng);
      tokens.add(x);
      parents.add(parent);
      q.add(from);
      uq.add(base);
      remaining[x] = 0;
    }
  }

  private static ProbDist normalized(float[] mass) {
    double sum = 0;
    for (float v : mass) {
      sum += v;
    }
    if (!(sum > 1e-9)) {
      return null;
    }
    float[] out = new float[mass.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) (mass[i] / sum);
    }
    return ProbDist.dense(out);
  }

  /**
   * Counts of the first three emitted tokens, indexed (a * VOCAB + b) * VOCAB + c; {@code width} 0
   * = the deterministic drafter.
   */
  static long[] simulate(
      Rule rule, int width, boolean withoutReplacement, boolean claimUnconditional, long seed) {
    RandomGenerator rng = TokenSampler.seeded(seed);
    long[] joint = new long[VOCAB * VOCAB * VOCAB];
    int[] out = new int[3 + 3];
    for (int trial = 0; trial < TRIALS; trial++) {
      int emitted = 0;
      int prev = 0;
      while (emitted < 3) {
        int t = emitted + 1;
        Tree tree =
            width == 0 ? deterministic(t, prev) : draft(t, prev, width, withoutReplacement, rng);
        int n = tree.tokens().length;
        ProbDist[] p = new ProbDist[n + 1];
        p[0] = SpeculativeLosslessnessTest.target(t, prev);
        for (int j = 0; j < n; j++) {
          int depth = tree.parents()[j] < 0 ? 0 : 1;
          p[j + 1] = SpeculativeLosslessnessTest.target(t + depth + 1, tree.tokens()[j]);
        }
        ProbDist[] q = claimUnconditional ? tree.unconditionalQ() : tree.q();
        for (int token :
            rule.verify(tree.tokens(), tree.parents(), q, p, rng).emitted(tree.tokens())) {
          out[emitted++] = token;
        }
        prev = out[emitted - 1];
      }
      joint[(out[0] * VOCAB + out[1]) * VOCAB + out[2]]++;
    }
    return joint;
  }

  private static void assertMatchesTarget(long[] joint) {
    ChiSquare.Result first =
        ChiSquare.test(
            SpeculativeLosslessnessTest.firstTokenCounts(joint),
            new double[] {0.05, 0.10, 0.40, 0.00, 0.27, 0.18});
    assertThat(first.df()).isEqualTo(4);
    assertThat(first.pValue()).as("first token: %s", first).isGreaterThan(1e-3);
    ChiSquare.Result all = ChiSquare.test(joint, SpeculativeLosslessnessTest.expectedJoint());
    assertThat(all.df()).isEqualTo(124);
    assertThat(all.pValue()).as("first three tokens: %s", all).isGreaterThan(1e-3);
  }

  private static double jointPValue(long[] joint) {
    return ChiSquare.test(joint, SpeculativeLosslessnessTest.expectedJoint()).pValue();
  }

  @Test
  void siblingsDrawnWithReplacementGiveTheTargetDistribution() {
    assertMatchesTarget(simulate(TreeVerifier::sample, 2, false, false, 4321));
  }

  @Test
  void siblingsDrawnWithoutReplacementGiveTheTargetDistribution() {
    assertMatchesTarget(simulate(TreeVerifier::sample, 3, true, false, 8765));
  }

  @Test
  void deterministicSiblingsWithOneHotQGiveTheTargetDistribution() {
    assertMatchesTarget(simulate(TreeVerifier::sample, 0, false, false, 2468));
  }

  @Test
  void aChainTreeIsTheChainRule() {
    // One child per node: the tree rule draws the same random numbers as the chain rule.
    int[] tokens = {2, 4, 5};
    int[] parents = {-1, 0, 1};
    ProbDist[] q = new ProbDist[3];
    ProbDist[] p = new ProbDist[4];
    for (int i = 0; i < 4; i++) {
      p[i] = SpeculativeLosslessnessTest.target(i + 1, i == 0 ? 0 : tokens[i - 1]);
      if (i < 3) {
        q[i] = SpeculativeLosslessnessTest.sampledDraft(i + 1, i == 0 ? 0 : tokens[i - 1]);
      }
    }
    for (long seed = 0; seed < 200; seed++) {
      SpeculativeVerifier.Outcome chain =
          SpeculativeVerifier.sample(tokens, q, p, TokenSampler.seeded(seed));
      Outcome tree = TreeVerifier.sample(tokens, parents, q, p, TokenSampler.seeded(seed));
      assertThat(tree.emitted(tokens)).isEqualTo(chain.emitted(tokens));
      assertThat(tree.bonus()).isEqualTo(chain.bonus());
    }
  }

  @Test
  void negativeControlNoResidualBetweenSiblingsFails() {
    // Every sibling tested against p itself rather than the residual left by the earlier ones.
    Rule noResidual =
        (tokens, parents, q, p, rng) -> {
          int at = -1;
          List<Integer> path = new ArrayList<>();
          outer:
          while (true) {
            for (int c = at + 1; c < tokens.length; c++) {
              if (parents[c] == at) {
                double px = p[at + 1].prob(tokens[c]);
                double qx = q[c].prob(tokens[c]);
                if (rng.nextDouble() * qx < px) {
                  path.add(c);
                  at = c;
                  continue outer;
                }
              }
            }
            return new Outcome(
                path.stream().mapToInt(Integer::intValue).toArray(),
                TokenSampler.sample(p[at + 1], rng),
                false);
          }
        };
    assertThat(jointPValue(simulate(noResidual, 2, false, false, 4321))).isLessThan(1e-3);
  }

  @Test
  void negativeControlUnconditionalQForSiblingsDrawnWithoutReplacementFails() {
    assertThat(jointPValue(simulate(TreeVerifier::sample, 3, true, true, 8765))).isLessThan(1e-3);
  }

  @Test
  void negativeControlAlwaysTheFirstRootFails() {
    Rule firstRoot =
        (tokens, parents, q, p, rng) ->
            new Outcome(new int[] {0}, TokenSampler.sample(p[1], rng), false);
    assertThat(jointPValue(simulate(firstRoot, 2, false, false, 4321))).isLessThan(1e-3);
  }
}
