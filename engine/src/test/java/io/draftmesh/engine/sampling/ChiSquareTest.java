package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import org.junit.jupiter.api.Test;

/** The chi-square helper against standard table critical values (e.g. NIST/SEMATECH §1.3.6.7.4). */
class ChiSquareTest {

  @Test
  void pValuesMatchTableCriticalValues() {
    assertThat(ChiSquare.pValue(3.841, 1)).isCloseTo(0.05, within(1e-4));
    assertThat(ChiSquare.pValue(11.070, 5)).isCloseTo(0.05, within(1e-4));
    assertThat(ChiSquare.pValue(23.209, 10)).isCloseTo(0.01, within(1e-5));
    assertThat(ChiSquare.pValue(18.467, 4)).isCloseTo(0.001, within(1e-5));
    assertThat(ChiSquare.pValue(66.619, 35)).isCloseTo(0.001, within(1e-5));
    assertThat(ChiSquare.pValue(34.0, 35)).isCloseTo(0.5158, within(1e-3)); // near the median
  }

  @Test
  void twoDegreesOfFreedomIsExponential() {
    for (double x : new double[] {0.1, 1, 6, 30}) {
      assertThat(ChiSquare.pValue(x, 2)).isCloseTo(Math.exp(-x / 2), within(1e-12));
    }
  }

  @Test
  void testStatisticAndImpossibleCells() {
    ChiSquare.Result fair = ChiSquare.test(new long[] {50, 50, 0}, new double[] {0.5, 0.5, 0});
    assertThat(fair.statistic()).isZero();
    assertThat(fair.df()).isEqualTo(1);
    assertThat(fair.pValue()).isEqualTo(1.0);

    ChiSquare.Result impossible =
        ChiSquare.test(new long[] {50, 49, 1}, new double[] {0.5, 0.5, 0});
    assertThat(impossible.pValue()).isZero();
  }
}
