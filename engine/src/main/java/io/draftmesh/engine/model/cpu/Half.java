package io.draftmesh.engine.model.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * IEEE binary16 to float32 in vector registers (JDK 17 has no {@code Float.float16ToFloat}, and a
 * table lookup per weight would cost more than the memory it saves). Exact for every bit pattern:
 * the magnitude bits shifted into float32 position and multiplied by 2^112 rebias normals and turn
 * subnormals into the right normals; exponent 31 (infinity, NaN) is set to float32's 255.
 */
final class Half {
  static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;

  /** As many short lanes as S has float lanes: half the bits. */
  static final VectorSpecies<Short> SS =
      ShortVector.SPECIES_PREFERRED.withShape(VectorShape.forBitSize(S.vectorBitSize() / 2));

  private Half() {}

  /** {@code S.length()} halves from {@code bits[off ..]} widened to floats. */
  static FloatVector widen(short[] bits, int off) {
    ShortVector h = ShortVector.fromArray(SS, bits, off);
    IntVector i = (IntVector) h.convertShape(VectorOperators.S2I, IS, 0); // sign-extends
    IntVector abs = i.and(0x7FFF);
    IntVector shifted = abs.lanewise(VectorOperators.LSHL, 13);
    IntVector scaled = shifted.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
    VectorMask<Integer> special = abs.compare(VectorOperators.GE, 0x7C00);
    IntVector magnitude = scaled.blend(shifted.or(0x7F800000), special);
    IntVector sign = i.and(0x8000).lanewise(VectorOperators.LSHL, 16);
    return magnitude.or(sign).reinterpretAsFloats();
  }
}
