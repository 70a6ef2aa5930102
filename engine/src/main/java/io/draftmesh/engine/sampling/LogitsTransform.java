package io.draftmesh.engine.sampling;

/**
 * One step of a sampling pipeline: rescales or narrows a {@link Candidates} working set, like
 * Hugging Face's Temperature/TopK/TopP/MinP logits warpers (top-k differs only at ties, see {@link
 * TopK}). Each truncation acts on the distribution left by the steps before it, renormalised.
 */
public sealed interface LogitsTransform
    permits LogitsTransform.Temperature,
        LogitsTransform.TopK,
        LogitsTransform.TopP,
        LogitsTransform.MinP {

  /** Applies this step to {@code candidates} in place. */
  void apply(Candidates candidates);

  /** Divides logits by {@code t}: below 1 sharpens, above 1 flattens. */
  record Temperature(float t) implements LogitsTransform {
    public Temperature {
      if (!(t > 0f && Float.isFinite(t))) {
        throw new IllegalArgumentException("temperature: " + t + " (expected: > 0, finite)");
      }
    }

    @Override
    public void apply(Candidates c) {
      if (t != 1f) {
        c.divide(t);
      }
    }
  }

  /**
   * Keeps exactly the {@code k} most likely tokens. At a tie on the k-th value the lower ids win
   * (HF and vLLM keep every tied token instead; we prefer an exact, deterministic k). Expected O(V)
   * by partial selection; no sort.
   */
  record TopK(int k) implements LogitsTransform {
    public TopK {
      if (k < 1) {
        throw new IllegalArgumentException("top_k: " + k + " (expected: >= 1)");
      }
    }

    @Override
    public void apply(Candidates c) {
      c.keepTop(k);
    }
  }

  /**
   * Nucleus sampling: keeps the smallest set of most likely tokens whose cumulative probability is
   * at least {@code p} (always at least one). Sorts only as many of the most likely tokens as the
   * nucleus needs (partial selection of 256, 1024, ... then a sort of those), so the usual small
   * nucleus costs O(V) rather than O(V log V).
   */
  record TopP(float p) implements LogitsTransform {
    private static final int FIRST_PREFIX = 256;

    public TopP {
      if (!(p > 0f && p <= 1f)) {
        throw new IllegalArgumentException("top_p: " + p + " (expected: (0, 1])");
      }
    }

    @Override
    public void apply(Candidates c) {
      if (p >= 1f) {
        return;
      }
      int n = c.size();
      double max = c.maxLogit();
      double need = p * c.sumExp(max);
      for (int m = Math.min(n, FIRST_PREFIX); ; m = (int) Math.min(n, 4L * m)) {
        c.sortTop(m);
        double cumulative = 0;
        for (int i = 0; i < m; i++) {
          cumulative += Math.exp(c.logit(i) - max);
          if (cumulative >= need) {
            c.truncate(i + 1);
            return;
          }
        }
        if (m == n) {
          return; // round-off left the full sum just short of p: keep everything
        }
      }
    }
  }

  /**
   * Keeps tokens whose probability is at least {@code minP} times the top token's, i.e. whose logit
   * is at least {@code max + ln(minP)}. O(n).
   */
  record MinP(float minP) implements LogitsTransform {
    public MinP {
      if (!(minP > 0f && minP < 1f)) {
        throw new IllegalArgumentException("min_p: " + minP + " (expected: (0, 1))");
      }
    }

    @Override
    public void apply(Candidates c) {
      c.keepAtLeast(c.maxLogit() + Math.log(minP));
    }
  }
}
