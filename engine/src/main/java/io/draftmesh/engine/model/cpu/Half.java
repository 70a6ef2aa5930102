package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * IEEE binary16 to float32 in vector registers, from halves packed two to an int (JDK 17 has no
 * {@code Float.float16ToFloat}, and its Vector API compiles short-to-int lane casts and masked
 * blends poorly: a first version with them ran at a tenth of the float32 kernel's speed). Only
 * plain int lane arithmetic here. Exact for every bit pattern: the magnitude bits shifted into
 * float32 position and multiplied by 2^112 rebias normals and turn subnormals into the right
 * normals; exponent 31 (infinity, NaN) becomes float32's 255, selected with an all-ones/zero lane
 * mask computed arithmetically.
 */
final class Half {
  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

  private Half() {}

  /** The halves in the low 16 bits of each lane. */
  static FloatVector low(IntVector packed) {
    return widen(packed.and(0xFFFF));
  }

  /** The halves in the high 16 bits of each lane. */
  static FloatVector high(IntVector packed) {
    return widen(packed.lanewise(VectorOperators.LSHR, 16));
  }

  /** Lanes holding a binary16 pattern in bits 0..15 (bits 16..31 zero) as floats. */
  static FloatVector widen(IntVector bits) {
    IntVector magnitude = bits.and(0x7FFF);
    IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
    IntVector scaled = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
    // -1 where magnitude >= 0x7C00 (exponent 31), else 0.
    IntVector special = magnitude.add(0x400).lanewise(VectorOperators.LSHR, 15).neg();
    IntVector result = scaled.and(special.not()).or(shifted.or(0x7F800000).and(special));
    return result.or(bits.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
  }
}
