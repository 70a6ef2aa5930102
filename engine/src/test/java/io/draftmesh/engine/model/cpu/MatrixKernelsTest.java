package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.FloatBits;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Both weight layouts multiply like a naive double-precision reference for every kernel shape: 1..9
 * activation rows and 13, 17 and 25 (each float16 register kernel, 9, 8, 5, 4, 2 and 1 rows, and
 * each float32 one, 6, 5, 4, 3, 2 and 1, their remainders and repeats; on AVX2, more than 8 take
 * the float16 tile and its float32 kernels), row counts that leave a partial last panel, column
 * counts below, at and past a widening tile, sub-ranges of rows as threads split them, and
 * accumulation into existing outputs.
 */
class MatrixKernelsTest {
  private static final int P = Panels.WIDTH;

  /**
   * Tolerance: float32 accumulation of {@code cols} products of N(0,1) values, relative to
   * sqrt(cols).
   */
  private static float tolerance(int cols) {
    return 2e-5f * (float) Math.sqrt(cols) * 4;
  }

  private static double[] reference(float[] w, int rows, int cols, float[] x, int n) {
    double[] out = new double[n * rows];
    for (int r = 0; r < n; r++) {
      for (int o = 0; o < rows; o++) {
        double s = 0;
        for (int i = 0; i < cols; i++) {
          s += (double) x[r * cols + i] * w[o * cols + i];
        }
        out[r * rows + o] = s;
      }
    }
    return out;
  }

  @Test
  void bothLayoutsMatchTheNaiveProductForRandomShapesRowCountsAndSplits() {
    SplittableRandom rnd = new SplittableRandom(17);
    int[][] shapes = {
      {1, 1},
      {3, 5},
      {P, 7},
      {P + 1, 33},
      {2 * P - 3, 64},
      {5 * P, 129},
      {3 * P + 11, 700},
      {70, 1025}
    };
    for (int[] shape : shapes) {
      int rows = shape[0];
      int cols = shape[1];
      short[] bits = new short[rows * cols];
      float[] w = new float[rows * cols];
      for (int i = 0; i < w.length; i++) {
        bits[i] = FloatBits.floatToF16((float) rnd.nextGaussian());
        w[i] = FloatBits.f16ToFloat(bits[i]); // the same values in both layouts
      }
      Matrix[] matrices = {new F32Matrix(w, rows, cols), new F16Matrix(bits, rows, cols)};
      for (Matrix m : matrices) {
        float[] row = new float[cols];
        int pick = rows - 1 - rnd.nextInt(rows);
        m.row(pick, row, 0);
        for (int i = 0; i < cols; i++) {
          assertThat(row[i])
              .as("%s row %d col %d", m.dtype(), pick, i)
              .isEqualTo(w[pick * cols + i]);
        }
      }
      for (int n : new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 17, 25}) {
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) rnd.nextGaussian();
        }
        double[] expected = reference(w, rows, cols, x, n);
        for (Matrix m : matrices) {
          for (boolean accumulate : new boolean[] {false, true}) {
            int stride = rows + 3; // outputs wider than the matrix, as the residual stream is
            float[] out = new float[n * stride];
            for (int i = 0; i < out.length; i++) {
              out[i] = accumulate ? i % 7 : Float.NaN; // NaN: a written output is overwritten
            }
            // Two ranges as two threads split them: at a panel boundary.
            int split = Math.min(rows, P * (1 + rnd.nextInt(Panels.count(rows))));
            m.multiply(x, n, out, stride, accumulate, 0, split);
            m.multiply(x, n, out, stride, accumulate, split, rows);
            String bad = null;
            for (int r = 0; r < n && bad == null; r++) {
              for (int o = 0; o < stride && bad == null; o++) {
                int at = r * stride + o;
                double want;
                boolean ok;
                if (o >= rows) { // beyond the matrix: untouched
                  want = accumulate ? at % 7 : Double.NaN;
                  ok = accumulate ? out[at] == want : Float.isNaN(out[at]);
                } else {
                  want = expected[r * rows + o] + (accumulate ? at % 7 : 0);
                  ok = Math.abs(out[at] - want) <= tolerance(cols);
                }
                if (!ok) {
                  bad =
                      String.format(
                          "%s %dx%d n=%d acc=%s [%d][%d]: %s (expected: %s)",
                          m.dtype(), rows, cols, n, accumulate, r, o, out[at], want);
                }
              }
            }
            assertThat(bad).isNull();
          }
        }
      }
    }
  }

  /**
   * The register kernels multiply weights widened without their 2^112 factor by activations scaled
   * by it: float16 subnormals must come out exact, and a step holding an activation too large to
   * scale must take the tile path instead of overflowing to infinity.
   */
  @Test
  void float16SubnormalsAndActivationsTooLargeToScaleMultiplyExactly() {
    int rows = 2 * P;
    int cols = 40;
    SplittableRandom rnd = new SplittableRandom(5);
    short[] bits = new short[rows * cols];
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      // Every other weight a subnormal half (exponent field 0): 1..1023 times 2^-24.
      bits[i] =
          i % 2 == 0
              ? (short) (1 + rnd.nextInt(1023) | (rnd.nextBoolean() ? 0x8000 : 0))
              : FloatBits.floatToF16((float) rnd.nextGaussian());
      w[i] = FloatBits.f16ToFloat(bits[i]);
    }
    F16Matrix m = new F16Matrix(bits, rows, cols);
    for (float big : new float[] {1f, 40_000f, 3e6f}) {
      for (int n = 1; n <= 9; n++) {
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) rnd.nextGaussian();
        }
        x[x.length - 1] = big; // one large activation in the last row
        double[] expected = reference(w, rows, cols, x, n);
        float[] out = new float[n * rows];
        m.multiply(x, n, out, rows, false, 0, rows);
        for (int i = 0; i < out.length; i++) {
          double tol = tolerance(cols) * Math.max(1, Math.abs(big) / 4);
          assertThat((double) out[i])
              .as("n=%d big=%s output %d", n, big, i)
              .isFinite()
              .isCloseTo(expected[i], org.assertj.core.data.Offset.offset(tol));
        }
      }
    }
  }

  /**
   * A float16 matrix is stored times 2^shift so that no weight stays subnormal, the shift bounded
   * by its largest weight: with no room (largest 2^15), some room (2^10) and the full 2^10 (largest
   * 2), every kernel and the tile, and {@code row}, still give the weights' own values.
   */
  @Test
  void float16WeightsShiftedOutOfTheSubnormalsKeepTheirValuesWhateverTheLargest() {
    int rows = 2 * P + 3; // a partial last panel: the tile path too
    int cols = 24;
    for (float largest : new float[] {0x1p15f, 0x1p10f, 2f}) {
      SplittableRandom rnd = new SplittableRandom(11);
      short[] bits = new short[rows * cols];
      float[] w = new float[rows * cols];
      for (int i = 0; i < w.length; i++) {
        bits[i] =
            i == 0
                ? FloatBits.floatToF16(largest)
                : i % 3 == 0
                    ? (short) (1 + rnd.nextInt(1023) | (rnd.nextBoolean() ? 0x8000 : 0))
                    : FloatBits.floatToF16((float) rnd.nextGaussian() / 4);
        w[i] = FloatBits.f16ToFloat(bits[i]);
      }
      F16Matrix m = new F16Matrix(bits, rows, cols);
      float[] row = new float[cols];
      for (int r = 0; r < rows; r++) {
        m.row(r, row, 0);
        for (int i = 0; i < cols; i++) {
          assertThat(row[i])
              .as("largest %s row %d col %d", largest, r, i)
              .isEqualTo(w[r * cols + i]);
        }
      }
      for (int n = 1; n <= 9; n++) {
        float[] x = new float[n * cols];
        for (int i = 0; i < x.length; i++) {
          x[i] = (float) rnd.nextGaussian();
        }
        double[] expected = reference(w, rows, cols, x, n);
        float[] out = new float[n * rows];
        m.multiply(x, n, out, rows, false, 0, rows);
        for (int i = 0; i < out.length; i++) {
          // Once the large product is in an accumulator, each later add rounds at half its ulp:
          // at most cols of them, on top of the usual sum of small ones.
          double tol = tolerance(cols) + cols * largest * Math.abs(x[i / rows * cols]) * 0x1p-23;
          assertThat((double) out[i])
              .as("largest %s n=%d output %d", largest, n, i)
              .isCloseTo(expected[i], org.assertj.core.data.Offset.offset(tol));
        }
      }
    }
  }

  @Test
  void aFloat16MatrixHoldingInfinityIsRefused() {
    short[] bits = {FloatBits.floatToF16(1f), (short) 0x7C00};
    assertThatThrownBy(() -> new F16Matrix(bits, 1, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("infinity or NaN");
  }
}
