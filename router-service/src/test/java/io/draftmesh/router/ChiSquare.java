package io.draftmesh.router;

/**
 * Pearson's chi-square goodness-of-fit test (a copy of the engine's test helper, which is not
 * published in a test jar). The p-value is the upper tail Q(df/2, x/2) of the regularized
 * incomplete gamma function (Numerical Recipes §6.2: series for x &lt; a+1, Lentz's continued
 * fraction otherwise); Γ of a half-integer is computed exactly by recursion.
 */
final class ChiSquare {
  private ChiSquare() {}

  /** Outcome of a test: the statistic, its degrees of freedom and the p-value. */
  public record Result(double statistic, int df, double pValue) {}

  /**
   * Tests {@code observed} counts against {@code expected} probabilities (summing to 1). Cells with
   * expected probability 0 are left out of the statistic and the degrees of freedom, but any count
   * in one makes the p-value 0 (an impossible outcome happened).
   */
  public static Result test(long[] observed, double[] expected) {
    long n = 0;
    for (long o : observed) {
      n += o;
    }
    double stat = 0;
    int cells = 0;
    boolean impossible = false;
    for (int i = 0; i < observed.length; i++) {
      if (expected[i] == 0) {
        impossible |= observed[i] != 0;
        continue;
      }
      double e = n * expected[i];
      double d = observed[i] - e;
      stat += d * d / e;
      cells++;
    }
    int df = cells - 1;
    return new Result(stat, df, impossible ? 0.0 : pValue(stat, df));
  }

  /** P(X ≥ x) for X ~ chi-square with {@code df} degrees of freedom. */
  public static double pValue(double x, int df) {
    if (df < 1) {
      throw new IllegalArgumentException("df: " + df);
    }
    if (x <= 0) {
      return 1.0;
    }
    return upperRegularizedGamma(df / 2.0, x / 2.0);
  }

  static double upperRegularizedGamma(double a, double x) {
    double lnPrefix = a * Math.log(x) - x - lnGammaHalfInteger(a);
    if (x < a + 1) {
      double term = 1.0 / a;
      double sum = term;
      for (int n = 1; n < 10_000; n++) {
        term *= x / (a + n);
        sum += term;
        if (Math.abs(term) < Math.abs(sum) * 1e-16) {
          break;
        }
      }
      return Math.max(0.0, 1.0 - sum * Math.exp(lnPrefix));
    }
    double tiny = 1e-300;
    double b = x + 1 - a;
    double c = 1 / tiny;
    double d = 1 / b;
    double h = d;
    for (int i = 1; i < 10_000; i++) {
      double an = -i * (i - a);
      b += 2;
      d = an * d + b;
      if (Math.abs(d) < tiny) {
        d = tiny;
      }
      c = b + an / c;
      if (Math.abs(c) < tiny) {
        c = tiny;
      }
      d = 1 / d;
      double delta = d * c;
      h *= delta;
      if (Math.abs(delta - 1) < 1e-16) {
        break;
      }
    }
    return Math.exp(lnPrefix) * h;
  }

  /** ln Γ(a) for a a positive multiple of 1/2: Γ(1) = 1, Γ(1/2) = √π, Γ(a+1) = aΓ(a). */
  static double lnGammaHalfInteger(double a) {
    if (a * 2 != Math.rint(a * 2) || a <= 0) {
      throw new IllegalArgumentException("a: " + a);
    }
    double z = (a == Math.rint(a)) ? 1.0 : 0.5;
    double ln = (z == 1.0) ? 0.0 : 0.5 * Math.log(Math.PI);
    for (; z < a; z += 1) {
      ln += Math.log(z);
    }
    return ln;
  }
}
