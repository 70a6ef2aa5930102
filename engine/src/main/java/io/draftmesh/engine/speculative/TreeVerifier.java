package io.draftmesh.engine.speculative;

import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.TokenSampler;
import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * The lossless acceptance rules for a token tree (several candidate continuations verified in one
 * target pass), as pure functions. Node j holds {@code tokens[j]} and hangs under {@code
 * parents[j]} ({@code -1}: under the prefix); parents come before their children. The target's
 * predictions are indexed {@code 0} for the position after the prefix and {@code j + 1} for the one
 * after node j. A round emits the tokens of an accepted root-to-node path, then {@link
 * Outcome#nextToken()}.
 *
 * <p>Sampling uses recursive rejection sampling over siblings (SpecInfer's multi-step speculative
 * sampling, Miao et al. 2024; Recursive Speculative Decoding, Jeon et al. 2024): at a node, its
 * children are tried in index order; child i, drawn from {@code q[i]}, is accepted with probability
 * min(1, r(x)/q_i(x)) where r starts as the target's distribution and after each rejection becomes
 * norm(max(0, r − q_i)); when every child is rejected, the token is drawn from r. Each child's q
 * must be the distribution it was drawn from <em>given its earlier siblings</em>: the same q for
 * siblings drawn independently (with replacement), q with the earlier siblings removed and
 * renormalized for siblings drawn without replacement (RSD). With one child per node this is the
 * chain rule of {@link SpeculativeVerifier#sample}.
 */
public final class TreeVerifier {
  private TreeVerifier() {}

  /**
   * The accepted path and the token after it.
   *
   * @param path node indices from a root down, the accepted nodes (empty if none)
   * @param nextToken the correction (some child of the path's end was rejected) or the bonus
   * @param bonus whether the path ends at a leaf, so {@code nextToken} is a plain target draw
   */
  public record Outcome(int[] path, int nextToken, boolean bonus) {
    public int accepted() {
      return path.length;
    }

    /** The emitted tokens: the path's tokens then {@code nextToken}. */
    public int[] emitted(int[] tokens) {
      int[] out = new int[path.length + 1];
      for (int i = 0; i < path.length; i++) {
        out[i] = tokens[path[i]];
      }
      out[path.length] = nextToken;
      return out;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Outcome other
          && Arrays.equals(path, other.path)
          && nextToken == other.nextToken
          && bonus == other.bonus;
    }

    @Override
    public int hashCode() {
      return 31 * Arrays.hashCode(path) + 7 * nextToken + (bonus ? 1 : 0);
    }

    @Override
    public String toString() {
      return "Outcome[path="
          + Arrays.toString(path)
          + ", next="
          + nextToken
          + ", bonus="
          + bonus
          + "]";
    }
  }

  /**
   * Greedy: from the prefix, step to the first child whose token equals the target's argmax there,
   * while one exists; then emit the argmax. Equal to greedy decoding of the target.
   *
   * @param targetArgmax (nodes + 1) argmax after the prefix, then after each node
   */
  public static Outcome greedy(int[] tokens, int[] parents, int[] targetArgmax) {
    validate(tokens, parents);
    if (targetArgmax == null || targetArgmax.length != tokens.length + 1) {
      throw EngineException.invalid(
          "verify.target_argmax: "
              + (targetArgmax == null ? 0 : targetArgmax.length)
              + " given (expected: "
              + (tokens.length + 1)
              + ", one per node plus the prefix's)");
    }
    int[] path = new int[tokens.length];
    int n = 0;
    int at = -1;
    outer:
    while (true) {
      int want = targetArgmax[at + 1];
      for (int c = at + 1; c < tokens.length; c++) {
        if (parents[c] == at && tokens[c] == want) {
          path[n++] = c;
          at = c;
          continue outer;
        }
      }
      return new Outcome(Arrays.copyOf(path, n), want, !hasChild(parents, at));
    }
  }

  /**
   * Multi-draft speculative sampling (see the class comment): the emitted tokens are distributed
   * exactly as the target's, provided each node was drawn from its {@code q}.
   *
   * @param q (nodes) the distribution node j was drawn from, given its parent's path and its
   *     earlier siblings
   * @param p (nodes + 1) the target's distribution after the prefix, then after each node
   * @param rng the request's stream; consumed only on uncertain accepts and on draws
   */
  public static Outcome sample(
      int[] tokens, int[] parents, ProbDist[] q, ProbDist[] p, RandomGenerator rng) {
    validate(tokens, parents);
    int k = tokens.length;
    if (q == null || q.length != k) {
      throw EngineException.invalid(
          "verify.draft_distributions: "
              + (q == null ? 0 : q.length)
              + " given (expected: "
              + k
              + ", one per node)");
    }
    if (p == null || p.length != k + 1) {
      throw EngineException.invalid(
          "verify.target_distributions: "
              + (p == null ? 0 : p.length)
              + " given (expected: "
              + (k + 1)
              + ", one per node plus the prefix's)");
    }
    int[] path = new int[k];
    int n = 0;
    int at = -1;
    outer:
    while (true) {
      float[] residual = null; // (vocab) r after the first rejection; before it r = p[at + 1]
      for (int c = at + 1; c < k; c++) {
        if (parents[c] != at) {
          continue;
        }
        int x = tokens[c];
        double rx = residual == null ? p[at + 1].prob(x) : residual[x];
        double qx = q[c].prob(x);
        // q(x) = 0: x cannot have been drawn from q, so no acceptance is lossless; reject, as
        // the chain rule does.
        boolean accept = qx > 0 && (rx >= qx || rng.nextDouble() * qx < rx);
        if (accept) {
          path[n++] = c;
          at = c;
          continue outer;
        }
        residual = residual(residual == null ? p[at + 1].toDense() : residual, q[c]);
      }
      int next;
      if (residual == null) {
        next = TokenSampler.sample(p[at + 1], rng);
      } else {
        next = TokenSampler.sample(ProbDist.dense(residual), rng);
      }
      return new Outcome(Arrays.copyOf(path, n), next, !hasChild(parents, at));
    }
  }

  /**
   * norm(max(0, r − q)) as a new array; r itself when that has no mass (r = q up to round-off), as
   * the chain rule does.
   */
  private static float[] residual(float[] r, ProbDist q) {
    float[] qd = q.toDense();
    double total = 0;
    float[] out = new float[r.length];
    for (int i = 0; i < r.length; i++) {
      float v = r[i] - qd[i];
      if (v > 0) {
        out[i] = v;
        total += v;
      }
    }
    if (!(total > 0)) {
      return r;
    }
    float inv = (float) (1.0 / total);
    for (int i = 0; i < out.length; i++) {
      out[i] *= inv;
    }
    return out;
  }

  private static boolean hasChild(int[] parents, int node) {
    for (int c = node + 1; c < parents.length; c++) {
      if (parents[c] == node) {
        return true;
      }
    }
    return false;
  }

  /** {@link #validate(String, int[], int[])} for a verify. */
  public static void validate(int[] tokens, int[] parents) {
    validate("verify", tokens, parents);
  }

  /**
   * Checks a tree's shape: as many parents as tokens, each parent before its child (which also
   * rules out cycles). Errors name the field {@code <op>.tree_parents}.
   */
  public static void validate(String op, int[] tokens, int[] parents) {
    if (tokens == null || tokens.length == 0) {
      throw EngineException.invalid(op + ".draft_token_ids: missing (expected: 1 or more nodes)");
    }
    if (parents == null || parents.length != tokens.length) {
      throw EngineException.invalid(
          op
              + ".tree_parents: "
              + (parents == null ? 0 : parents.length)
              + " given (expected: "
              + tokens.length
              + ", one per draft token)");
    }
    for (int j = 0; j < parents.length; j++) {
      int parent = parents[j];
      if (parent < -1 || parent >= j) {
        String why =
            parent == j
                ? "a node cannot be its own parent"
                : parent > j
                    ? "a parent comes before its children, which also rules out cycles"
                    : "-1 marks a root";
        throw EngineException.invalid(
            op
                + ".tree_parents["
                + j
                + "]: "
                + parent
                + " (expected: -1.."
                + (j - 1)
                + "; "
                + why
                + ")");
      }
    }
  }
}
