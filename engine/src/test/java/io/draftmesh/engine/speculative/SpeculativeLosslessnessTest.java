package io.draftmesh.engine.speculative;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.sampling.ChiSquare;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.TokenSampler;
import io.draftmesh.engine.speculative.SpeculativeVerifier.Outcome;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Statistical check that speculative sampling emits exactly the target's distribution.
 *
 * <p>The toy: a 6-token vocabulary and two "models" whose next-token distributions depend on the
 * output position t (1-based) and the previous token — a real (if short) context, so a round that
 * ends in a correction really does change what the next round drafts and verifies. Under plain
 * decoding the target emits a, b, c with probability p_1(a | BOS) · p_2(b | a) · p_3(c | b). We run
 * the full process — draft γ tokens x_i ~ q_t(· | previous), score γ+1 target positions on that
 * drafted context, verify, append the emitted tokens, and start a new round until at least three
 * tokens exist — and chi-square test the first token against p_1 (df 4) and the first three tokens
 * against the joint (df = nonzero cells − 1 = 124). With γ = 1 and γ = 2, the first three tokens
 * mix accepted drafts, corrections and bonus tokens, across round boundaries.
 *
 * <p>Target and draft tables deliberately disagree: at position 1, q puts mass on token 3, which p
 * rules out, and p on token 4, which q never drafts; token 5 has p/q = 0.9, so acceptance must
 * really be random there. The same harness must reject deliberately wrong rules (negative
 * controls), which shows the test has the power to see a biased verifier. Fixed seeds; 60,000
 * sequences per run (the smallest expected cell count is 0.05³ · 60,000 = 7.5); a pass needs
 * p-value &gt; 1e-3.
 */
class SpeculativeLosslessnessTest {
  private static final int VOCAB = 6;
  private static final int TOKENS = 3; // emitted tokens compared per sequence
  private static final int TRIALS = 60_000;
  private static final int BOS = 0; // the "previous token" at position 1

  private static final double[][] TARGET = {
    {0.30, 0.25, 0.20, 0.15, 0.10, 0.00},
    {0.05, 0.10, 0.40, 0.00, 0.27, 0.18},
    {0.50, 0.00, 0.10, 0.10, 0.10, 0.20},
  };
  private static final double[][] DRAFT = {
    {0.10, 0.10, 0.30, 0.00, 0.20, 0.30},
    {0.40, 0.10, 0.10, 0.20, 0.00, 0.20},
    {0.20, 0.20, 0.20, 0.20, 0.00, 0.20},
  };

  /** A verification rule under test. */
  interface Rule {
    Outcome verify(int[] draft, ProbDist[] q, ProbDist[] p, RandomGenerator rng);
  }

  /** A drafter's distribution at output position t after token prev. */
  interface Drafter {
    ProbDist q(int t, int prev);
  }

  /** Target at position t after prev: row (t + prev) mod 3; dense. */
  static ProbDist target(int t, int prev) {
    return dense(TARGET[(t + prev) % 3]);
  }

  /** Draft at position t after prev: row (t + 2·prev) mod 3; sparse (nonzero entries only). */
  static ProbDist sampledDraft(int t, int prev) {
    double[] row = DRAFT[(t + 2 * prev) % 3];
    int n = 0;
    for (double v : row) {
      n += v > 0 ? 1 : 0;
    }
    int[] ids = new int[n];
    float[] probs = new float[n];
    for (int i = 0, j = 0; i < row.length; i++) {
      if (row[i] > 0) {
        ids[j] = i;
        probs[j++] = (float) row[i];
      }
    }
    return new ProbDist(VOCAB, ids, probs);
  }

  /** A model-free drafter: always proposes (t + prev) mod 6, sometimes a token p rules out. */
  static ProbDist deterministicDraft(int t, int prev) {
    return ProbDist.oneHot(VOCAB, (t + prev) % VOCAB);
  }

  private static ProbDist dense(double[] row) {
    float[] f = new float[row.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = (float) row[i];
    }
    return ProbDist.dense(f);
  }

  /** Whether a drafter drafts on after the first token: given q, and the token drawn from it. */
  interface Stop {
    boolean draftsOn(ProbDist q, int drawn);
  }

  /** Counts of the first {@link #TOKENS} emitted tokens, indexed (a * VOCAB + b) * VOCAB + c. */
  static long[] simulate(Rule rule, Drafter drafter, int gamma, long seed) {
    return simulate(rule, drafter, gamma, (q, drawn) -> true, seed);
  }

  /** The same, the drafter stopping early (after one token) when {@code stop} says so. */
  static long[] simulate(Rule rule, Drafter drafter, int gamma, Stop stop, long seed) {
    RandomGenerator rng = TokenSampler.seeded(seed);
    long[] joint = new long[VOCAB * VOCAB * VOCAB];
    int[] out = new int[TOKENS + gamma];
    for (int trial = 0; trial < TRIALS; trial++) {
      int emitted = 0;
      int prev = BOS;
      while (emitted < TOKENS) {
        int t = emitted + 1;
        int[] draft = new int[gamma];
        ProbDist[] q = new ProbDist[gamma];
        int context = prev;
        int drafted = 0;
        for (int i = 0; i < gamma; i++) {
          ProbDist qi = drafter.q(t + i, context);
          int x = TokenSampler.sample(qi, rng);
          if (i > 0 && !stop.draftsOn(qi, x)) {
            break;
          }
          q[i] = qi;
          draft[i] = x;
          context = x;
          drafted++;
        }
        draft = java.util.Arrays.copyOf(draft, drafted);
        q = java.util.Arrays.copyOf(q, drafted);
        ProbDist[] p = new ProbDist[drafted + 1];
        context = prev;
        for (int i = 0; i <= drafted; i++) {
          p[i] = target(t + i, context); // the target scores the drafted context
          if (i < drafted) {
            context = draft[i];
          }
        }
        for (int token : rule.verify(draft, q, p, rng).emitted(draft)) {
          out[emitted++] = token;
        }
        prev = out[emitted - 1];
      }
      joint[(out[0] * VOCAB + out[1]) * VOCAB + out[2]]++;
    }
    return joint;
  }

  static double[] expectedJoint() {
    double[] joint = new double[VOCAB * VOCAB * VOCAB];
    for (int a = 0; a < VOCAB; a++) {
      for (int b = 0; b < VOCAB; b++) {
        for (int c = 0; c < VOCAB; c++) {
          joint[(a * VOCAB + b) * VOCAB + c] =
              TARGET[(1 + BOS) % 3][a] * TARGET[(2 + a) % 3][b] * TARGET[(3 + b) % 3][c];
        }
      }
    }
    return joint;
  }

  static long[] firstTokenCounts(long[] joint) {
    long[] first = new long[VOCAB];
    for (int i = 0; i < joint.length; i++) {
      first[i / (VOCAB * VOCAB)] += joint[i];
    }
    return first;
  }

  private static void assertMatchesTarget(long[] joint) {
    ChiSquare.Result first = ChiSquare.test(firstTokenCounts(joint), TARGET[(1 + BOS) % 3]);
    assertThat(first.df()).isEqualTo(4);
    assertThat(first.pValue()).as("first token: %s", first).isGreaterThan(1e-3);
    ChiSquare.Result all = ChiSquare.test(joint, expectedJoint());
    assertThat(all.df()).isEqualTo(124);
    assertThat(all.pValue()).as("first three tokens: %s", all).isGreaterThan(1e-3);
  }

  private static double jointPValue(long[] joint) {
    return ChiSquare.test(joint, expectedJoint()).pValue();
  }

  @ParameterizedTest(name = "gamma = {0}")
  @ValueSource(ints = {1, 2})
  void sampledDraftsGiveTheTargetDistribution(int gamma) {
    assertMatchesTarget(
        simulate(
            SpeculativeVerifier::sample, SpeculativeLosslessnessTest::sampledDraft, gamma, 1234));
  }

  private static float maxProb(ProbDist q) {
    float max = 0;
    for (int i = 0; i < VOCAB; i++) {
      max = Math.max(max, q.prob(i));
    }
    return max;
  }

  @Test
  void draftsStoppedOnTheDraftsConfidenceGiveTheTargetDistribution() {
    // 0.35 stops after rows whose top probability is 0.3 or 0.2 and drafts on after the 0.4 row,
    // so rounds have 1 to 3 tokens: the stop the engine's propose applies.
    Stop confidence = (q, drawn) -> SpeculationMath.draftsOn(maxProb(q), 0.35f);
    assertMatchesTarget(
        simulate(
            SpeculativeVerifier::sample,
            SpeculativeLosslessnessTest::sampledDraft,
            3,
            confidence,
            4321));
  }

  @Test
  void negativeControlStoppingOnTheDrawnTokensProbabilityFails() {
    // The rule propose had before: stop when the token just drawn is unlikely under q. Low-q
    // tokens then never reach the verifier in later positions, which skews the output.
    Stop drawnToken = (q, drawn) -> q.prob(drawn) >= 0.25f;
    assertThat(
            jointPValue(
                simulate(
                    SpeculativeVerifier::sample,
                    SpeculativeLosslessnessTest::sampledDraft,
                    3,
                    drawnToken,
                    4321)))
        .isLessThan(1e-3);
  }

  @Test
  void deterministicDraftsWithOneHotQGiveTheTargetDistribution() {
    assertMatchesTarget(
        simulate(
            SpeculativeVerifier::sample, SpeculativeLosslessnessTest::deterministicDraft, 2, 5678));
  }

  @Test
  void negativeControlAcceptAlwaysFails() {
    Rule acceptAlways =
        (draft, q, p, rng) ->
            new Outcome(draft.length, TokenSampler.sample(p[draft.length], rng), true);
    assertThat(
            jointPValue(simulate(acceptAlways, SpeculativeLosslessnessTest::sampledDraft, 2, 1234)))
        .isLessThan(1e-3);
  }

  @Test
  void negativeControlResampleFromTargetOnRejectionFails() {
    // Right acceptance test, wrong correction: draws from p instead of norm(max(0, p - q)).
    Rule resampleFromP =
        (draft, q, p, rng) -> {
          for (int i = 0; i < draft.length; i++) {
            double px = p[i].prob(draft[i]);
            double qx = q[i].prob(draft[i]);
            if (!(rng.nextDouble() * qx < px)) {
              return new Outcome(i, TokenSampler.sample(p[i], rng), false);
            }
          }
          return new Outcome(draft.length, TokenSampler.sample(p[draft.length], rng), true);
        };
    assertThat(
            jointPValue(
                simulate(resampleFromP, SpeculativeLosslessnessTest::sampledDraft, 2, 1234)))
        .isLessThan(1e-3);
  }

  @Test
  void negativeControlBonusFromWrongPositionFails() {
    // Right everywhere except that the bonus is drawn from p_k-1 instead of p_k.
    Rule staleBonus =
        (draft, q, p, rng) -> {
          Outcome outcome = SpeculativeVerifier.sample(draft, q, p, rng);
          return outcome.bonus()
              ? new Outcome(draft.length, TokenSampler.sample(p[draft.length - 1], rng), true)
              : outcome;
        };
    assertThat(
            jointPValue(simulate(staleBonus, SpeculativeLosslessnessTest::sampledDraft, 1, 1234)))
        .isLessThan(1e-3);
  }

  @Test
  void negativeControlMisreportedDraftDistributionFails() {
    // A deterministic drafter verified as if it had sampled from the table: the proposal
    // distribution passed must be the one the drafts came from.
    Rule mismatchedQ =
        (draft, q, p, rng) -> {
          ProbDist[] claimed = new ProbDist[q.length];
          for (int i = 0; i < q.length; i++) {
            claimed[i] = sampledDraft(1 + i, 0);
          }
          return SpeculativeVerifier.sample(draft, claimed, p, rng);
        };
    assertThat(
            jointPValue(
                simulate(mismatchedQ, SpeculativeLosslessnessTest::deterministicDraft, 2, 9)))
        .isLessThan(1e-3);
  }
}
