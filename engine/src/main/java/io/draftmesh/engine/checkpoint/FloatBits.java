package io.draftmesh.engine.checkpoint;

/**
 * Exact conversions between float32 and the 16-bit float formats, in plain Java (JDK 17 has no
 * {@code Float.float16ToFloat}). Widening is exact for every bit pattern, including subnormals,
 * infinities, NaN payloads and negative zero. Narrowing rounds to nearest, ties to even, like
 * PyTorch's {@code tensor.to(torch.float16 / torch.bfloat16)}.
 */
public final class FloatBits {
  /** float16 bit pattern (as an unsigned index) to float32, computed once: 256 KiB. */
  private static final float[] F16_TABLE = new float[1 << 16];

  static {
    for (int i = 0; i < F16_TABLE.length; i++) {
      F16_TABLE[i] = computeF16ToFloat(i);
    }
  }

  private FloatBits() {}

  /** Widens a bfloat16 bit pattern to float32; exact. */
  public static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  /** Widens an IEEE binary16 bit pattern to float32; exact. */
  public static float f16ToFloat(short bits) {
    return F16_TABLE[bits & 0xFFFF];
  }

  private static float computeF16ToFloat(int h) {
    int sign = (h & 0x8000) << 16;
    int exp = (h >>> 10) & 0x1F;
    int mant = h & 0x3FF;
    if (exp == 0x1F) {
      // Infinity (mant == 0) or NaN: keep the payload in the top mantissa bits.
      return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
    }
    if (exp == 0) {
      // Zero or subnormal: mant * 2^-24, exact in float32 (mant < 2^10).
      float magnitude = mant * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    // Normal: rebias the exponent from 15 to 127.
    return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  }

  /** Narrows float32 to bfloat16, rounding to nearest even; NaN stays a (quiet) NaN. */
  public static short floatToBf16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if ((bits & 0x7FFFFFFF) > 0x7F800000) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + roundingBias) >>> 16);
  }

  /**
   * Narrows float32 to IEEE binary16, rounding to nearest even: values at or above 65520 in
   * magnitude become infinity, tiny values become subnormals or signed zero, NaN stays a quiet NaN.
   */
  public static short floatToF16(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int abs = bits & 0x7FFFFFFF;
    if (abs >= 0x7F800000) {
      if (abs == 0x7F800000) {
        return (short) (sign | 0x7C00);
      }
      return (short) (sign | 0x7E00 | ((abs >>> 13) & 0x3FF));
    }
    if (abs >= 0x477FF000) { // >= 65520: rounds to infinity
      return (short) (sign | 0x7C00);
    }
    if (abs >= 0x38800000) { // >= 2^-14: normal half
      int rebased = abs - 0x38000000; // exponent bias 127 -> 15
      rebased += 0x0FFF + ((rebased >>> 13) & 1);
      return (short) (sign | (rebased >>> 13));
    }
    if (abs < 0x33000000) { // < 2^-25: below half the smallest subnormal
      return (short) sign;
    }
    // Subnormal half: value / 2^-24 = mantissa * 2^(exp - 126), with exp in [102, 112].
    int exp = abs >>> 23;
    int mant = (abs & 0x7FFFFF) | 0x800000;
    int shift = 126 - exp; // 14..24
    int half = mant >>> shift;
    int rem = mant & ((1 << shift) - 1);
    int halfway = 1 << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1) == 1)) {
      half++; // may carry into the smallest normal, which is the right encoding
    }
    return (short) (sign | half);
  }
}
