package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.FloatBits;
import jdk.incubator.vector.IntVector;
import org.junit.jupiter.api.Test;

/** The vectorised binary16 widening agrees with the scalar reference on every bit pattern. */
class HalfTest {
  @Test
  void widensEveryBitPatternExactlyAsFloatBitsFromBothHalvesOfAnInt() {
    int lanes = Half.IS.length();
    float[] lo = new float[lanes];
    float[] hi = new float[lanes];
    int[] packed = new int[lanes];
    int mismatches = 0;
    int firstBad = -1;
    for (int base = 0; base < 1 << 16; base += lanes) {
      for (int l = 0; l < lanes; l++) {
        int pattern = base + l;
        int other = (pattern * 40503 + 12345) & 0xFFFF; // a different pattern in the other half
        packed[l] = pattern | (other << 16);
      }
      IntVector v = IntVector.fromArray(Half.IS, packed, 0);
      Half.low(v).intoArray(lo, 0);
      Half.high(v).intoArray(hi, 0);
      for (int l = 0; l < lanes; l++) {
        // Bit equality: distinguishes -0 from 0 and keeps NaN payloads.
        int[] bits = {packed[l] & 0xFFFF, packed[l] >>> 16};
        float[] got = {lo[l], hi[l]};
        for (int k = 0; k < 2; k++) {
          float expected = FloatBits.f16ToFloat((short) bits[k]);
          if (Float.floatToRawIntBits(got[k]) != Float.floatToRawIntBits(expected)) {
            mismatches++;
            firstBad = firstBad < 0 ? bits[k] : firstBad;
          }
        }
      }
    }
    assertThat(mismatches).as("first mismatching pattern 0x%04x", firstBad).isZero();
  }

  @Test
  void aPackedMatrixMultipliesLikeItsWidenedCopyIncludingTailColumns() {
    int rows = 7;
    int cols = 2 * Half.S.length() * 3 + 5; // three packed blocks and five tail columns
    short[] bits = new short[rows * cols];
    float[] widened = new float[rows * cols];
    java.util.SplittableRandom r = new java.util.SplittableRandom(3);
    for (int i = 0; i < bits.length; i++) {
      bits[i] = FloatBits.floatToF16((float) r.nextGaussian());
      widened[i] = FloatBits.f16ToFloat(bits[i]);
    }
    F16Matrix half = new F16Matrix(bits, rows, cols);
    F32Matrix full = new F32Matrix(widened, rows, cols);
    float[] row = new float[cols];
    half.row(5, row, 0);
    assertThat(row).containsExactly(java.util.Arrays.copyOfRange(widened, 5 * cols, 6 * cols));
    for (int n : new int[] {1, 3, 6}) {
      float[] x = new float[n * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) r.nextGaussian();
      }
      float[] a = new float[n * rows];
      float[] b = new float[n * rows];
      half.multiply(x, n, a, rows, false, 0, rows);
      full.multiply(x, n, b, rows, false, 0, rows);
      for (int i = 0; i < a.length; i++) {
        assertThat(a[i])
            .as("n=%d element %d", n, i)
            .isCloseTo(b[i], org.assertj.core.data.Offset.offset(1e-4f));
      }
    }
  }
}
