package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.FloatBits;
import jdk.incubator.vector.IntVector;
import org.junit.jupiter.api.Test;

/** The vectorised binary16 widening agrees with the scalar reference on every finite pattern. */
class HalfTest {
  private static boolean isFinite(int pattern) {
    return (pattern & 0x7C00) != 0x7C00;
  }

  @Test
  void widensEveryFinitePatternExactlyAsFloatBitsFromBothHalvesOfAnInt() {
    int lanes = Half.IS.length();
    float[] lo = new float[lanes];
    float[] hi = new float[lanes];
    int[] packed = new int[lanes];
    int mismatches = 0;
    int checked = 0;
    int firstBad = -1;
    for (int base = 0; base < 1 << 16; base += lanes) {
      for (int l = 0; l < lanes; l++) {
        int pattern = base + l;
        int other = (pattern * 40503 + 12345) & 0xFFFF; // a different pattern in the other half
        packed[l] = pattern | (other << 16);
      }
      IntVector v = IntVector.fromArray(Half.IS, packed, 0);
      Half.lowScaled(v).mul(Half.SCALE).intoArray(lo, 0);
      Half.highScaled(v).mul(Half.SCALE).intoArray(hi, 0);
      for (int l = 0; l < lanes; l++) {
        // Bit equality: distinguishes -0 from 0 and keeps subnormals exact.
        int[] bits = {packed[l] & 0xFFFF, packed[l] >>> 16};
        float[] got = {lo[l], hi[l]};
        for (int k = 0; k < 2; k++) {
          if (!isFinite(bits[k])) {
            continue;
          }
          checked++;
          float expected = FloatBits.f16ToFloat((short) bits[k]);
          if (Float.floatToRawIntBits(got[k]) != Float.floatToRawIntBits(expected)) {
            mismatches++;
            firstBad = firstBad < 0 ? bits[k] : firstBad;
          }
        }
      }
    }
    assertThat(checked).isEqualTo(2 * (65536 - 2 * 1024));
    assertThat(mismatches).as("first mismatching pattern 0x%04x", firstBad).isZero();
  }

  @Test
  void finiteRejectsInfinityAndNanOfEitherSign() {
    short one = FloatBits.floatToF16(1f);
    assertThat(Half.finite(new short[] {one, (short) 0x7BFF, (short) 0x0001})).isTrue();
    for (int special : new int[] {0x7C00, 0xFC00, 0x7E00, 0xFFFF, 0x7C01}) {
      assertThat(Half.finite(new short[] {one, (short) special})).as("0x%04x", special).isFalse();
    }
  }
}
