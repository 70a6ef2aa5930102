package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Finite IEEE binary16 to float32 in vector registers, from halves packed two to an int: JDK 17 has
 * no half conversion (no {@code Float.float16ToFloat}, no vector cast), so it is four int lane
 * operations and one multiply. An arithmetic shift right by 3 moves a half's sign to bit 31 (its
 * copies land in bits 28..30, which the mask clears) and its exponent and mantissa to float32's
 * bits 13..27; read as a float that is the value times 2^-112 (subnormal halves become float32
 * subnormals), so multiplying by 2^112 is exact. Exponent 31 (infinity, NaN) would come out as
 * 2^16..2^17: {@link #finite} screens a matrix for it, and the loader widens such a matrix at load
 * instead.
 */
final class Half {
  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
  private static final int MASK = 0x8FFFE000; // sign and the 15 magnitude bits, float32 position

  private Half() {}

  /** Multiplying {@link #lowScaled}/{@link #highScaled} by this gives the halves' values. */
  static final float SCALE = 0x1p112f;

  /**
   * The halves in the low 16 bits of each lane times 2^-112, exactly (three lane operations): a
   * kernel that multiplies them by activations scaled by {@link #SCALE} gets the same products for
   * one multiply fewer per weight vector.
   */
  static FloatVector lowScaled(IntVector packed) {
    return packed
        .lanewise(VectorOperators.LSHL, 16)
        .lanewise(VectorOperators.ASHR, 3)
        .and(MASK)
        .reinterpretAsFloats();
  }

  /** The halves in the high 16 bits of each lane times 2^-112, exactly (two lane operations). */
  static FloatVector highScaled(IntVector packed) {
    return packed.lanewise(VectorOperators.ASHR, 3).and(MASK).reinterpretAsFloats();
  }

  /** The largest biased exponent among the patterns: 31 when one is infinity or NaN. */
  static int topExponent(short[] bits) {
    int top = 0;
    for (short b : bits) {
      top = Math.max(top, (b >> 10) & 0x1F);
    }
    return top;
  }

  /**
   * Whether every pattern is finite (exponent below 31), i.e. {@link #lowScaled}/{@link
   * #highScaled} hold.
   */
  static boolean finite(short[] bits) {
    return topExponent(bits) < 31;
  }
}
