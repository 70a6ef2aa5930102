package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.FloatBits;
import org.junit.jupiter.api.Test;

/** The vectorised binary16 widening agrees with the scalar reference on every bit pattern. */
class HalfTest {
  @Test
  void widensEveryBitPatternExactlyAsFloatBits() {
    int lanes = Half.S.length();
    short[] bits = new short[1 << 16];
    for (int i = 0; i < bits.length; i++) {
      bits[i] = (short) i;
    }
    float[] out = new float[lanes];
    int mismatches = 0;
    int firstBad = -1;
    for (int off = 0; off < bits.length; off += lanes) {
      Half.widen(bits, off).intoArray(out, 0);
      for (int l = 0; l < lanes; l++) {
        float expected = FloatBits.f16ToFloat(bits[off + l]);
        // Bit equality: distinguishes -0 from 0 and keeps NaN payloads.
        if (Float.floatToRawIntBits(out[l]) != Float.floatToRawIntBits(expected)) {
          mismatches++;
          if (firstBad < 0) {
            firstBad = off + l;
          }
        }
      }
    }
    assertThat(mismatches).as("first mismatching pattern 0x%04x", firstBad).isZero();
  }
}
