package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FloatBitsTest {

  private static int bits(float f) {
    return Float.floatToRawIntBits(f);
  }

  @Test
  void f16WideningMatchesHandComputedBitPatterns() {
    // {f16 bits, expected float32 bits}
    int[][] cases = {
      {0x0000, 0x00000000}, // +0
      {0x8000, 0x80000000}, // -0
      {0x3C00, 0x3F800000}, // 1.0
      {0xC000, 0xC0000000}, // -2.0
      {0x3555, 0x3EAAA000}, // 0.333251953125
      {0x7BFF, 0x477FE000}, // 65504, largest finite
      {0x0400, 0x38800000}, // 2^-14, smallest normal
      {0x0001, 0x33800000}, // 2^-24, smallest subnormal
      {0x8001, 0xB3800000}, // -2^-24
      {0x03FF, 0x387FC000}, // largest subnormal 1023 * 2^-24
      {0x0200, 0x38000000}, // 2^-15
      {0x7C00, 0x7F800000}, // +inf
      {0xFC00, 0xFF800000}, // -inf
      {0x7E00, 0x7FC00000}, // quiet NaN
      {0x7C01, 0x7F802000}, // signalling NaN payload kept
    };
    for (int[] c : cases) {
      float f = FloatBits.f16ToFloat((short) c[0]);
      assertThat(Integer.toHexString(bits(f)))
          .as("f16 0x%04x", c[0])
          .isEqualTo(Integer.toHexString(c[1]));
    }
  }

  @Test
  void f16WideningAgreesWithTheDefinitionForAllPatterns() {
    for (int h = 0; h < 65536; h++) {
      int sign = h >>> 15;
      int exp = (h >>> 10) & 0x1F;
      int mant = h & 0x3FF;
      float f = FloatBits.f16ToFloat((short) h);
      if (exp == 0x1F) {
        assertThat(mant == 0 ? Float.isInfinite(f) : Float.isNaN(f)).as("0x%04x", h).isTrue();
        continue;
      }
      double magnitude =
          exp == 0 ? Math.scalb((double) mant, -24) : Math.scalb(1024.0 + mant, exp - 25);
      double expected = sign == 1 ? -magnitude : magnitude;
      assertThat(bits(f)).as("0x%04x", h).isEqualTo(bits((float) expected));
    }
  }

  @Test
  void f16NarrowingInvertsWideningForEveryNonNanPattern() {
    for (int h = 0; h < 65536; h++) {
      float f = FloatBits.f16ToFloat((short) h);
      short back = FloatBits.floatToF16(f);
      if (Float.isNaN(f)) {
        assertThat(Float.isNaN(FloatBits.f16ToFloat(back))).isTrue();
      } else {
        assertThat(back & 0xFFFF).as("0x%04x", h).isEqualTo(h);
      }
    }
  }

  @Test
  void f16NarrowingRoundsToNearestEven() {
    assertThat(FloatBits.floatToF16(1f + 0x1p-11f)).isEqualTo((short) 0x3C00); // tie -> even down
    assertThat(FloatBits.floatToF16(1f + 3 * 0x1p-11f)).isEqualTo((short) 0x3C02); // tie -> up
    assertThat(FloatBits.floatToF16(1f + 0x1p-11f + 0x1p-20f)).isEqualTo((short) 0x3C01);
    assertThat(FloatBits.floatToF16(65519f)).isEqualTo((short) 0x7BFF);
    assertThat(FloatBits.floatToF16(65520f)).isEqualTo((short) 0x7C00); // overflow -> inf
    assertThat(FloatBits.floatToF16(-1e10f)).isEqualTo((short) 0xFC00);
    assertThat(FloatBits.floatToF16(0x1p-25f)).isEqualTo((short) 0x0000); // tie -> even zero
    assertThat(FloatBits.floatToF16(0x1.8p-25f)).isEqualTo((short) 0x0001);
    assertThat(FloatBits.floatToF16(3 * 0x1p-25f)).isEqualTo((short) 0x0002); // 1.5 ulp -> 2
    assertThat(FloatBits.floatToF16(-0f)).isEqualTo((short) 0x8000);
    assertThat(FloatBits.floatToF16(0x1.ffcp-15f)).isEqualTo((short) 0x0400); // carries to normal
  }

  @Test
  void bf16WideningIsTheTopHalfOfFloat32() {
    int[][] cases = {
      {0x0000, 0x00000000},
      {0x8000, 0x80000000},
      {0x3F80, 0x3F800000}, // 1.0
      {0x4049, 0x40490000}, // 3.140625
      {0xC2F7, 0xC2F70000}, // -123.5
      {0x0001, 0x00010000}, // subnormal float
      {0x0080, 0x00800000}, // smallest normal
      {0x7F7F, 0x7F7F0000}, // largest finite
      {0x7F80, 0x7F800000},
      {0xFF80, 0xFF800000},
      {0x7FC0, 0x7FC00000},
    };
    for (int[] c : cases) {
      float f = FloatBits.bf16ToFloat((short) c[0]);
      assertThat(Integer.toHexString(bits(f)))
          .as("bf16 0x%04x", c[0])
          .isEqualTo(Integer.toHexString(c[1]));
    }
  }

  @Test
  void bf16NarrowingRoundsToNearestEvenAndKeepsNan() {
    assertThat(FloatBits.floatToBf16(1f + 0x1p-8f)).isEqualTo((short) 0x3F80); // tie -> even
    assertThat(FloatBits.floatToBf16(1f + 3 * 0x1p-8f)).isEqualTo((short) 0x3F82); // tie -> up
    assertThat(FloatBits.floatToBf16(1f + 0x1p-8f + 0x1p-20f)).isEqualTo((short) 0x3F81);
    assertThat(FloatBits.floatToBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);
    assertThat(Float.isNaN(FloatBits.bf16ToFloat(FloatBits.floatToBf16(Float.NaN)))).isTrue();
    // A NaN whose payload is only in the low 16 bits must not become infinity.
    float lowPayloadNan = Float.intBitsToFloat(0x7F800001);
    assertThat(Float.isNaN(FloatBits.bf16ToFloat(FloatBits.floatToBf16(lowPayloadNan)))).isTrue();
    for (int h = 0; h < 65536; h++) {
      float f = FloatBits.bf16ToFloat((short) h);
      if (!Float.isNaN(f)) {
        assertThat(FloatBits.floatToBf16(f) & 0xFFFF).isEqualTo(h);
      }
    }
  }
}
