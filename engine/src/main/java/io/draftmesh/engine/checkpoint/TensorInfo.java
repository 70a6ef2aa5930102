package io.draftmesh.engine.checkpoint;

import java.util.Arrays;

/**
 * One tensor's entry in a safetensors header, validated against the file.
 *
 * @param name the tensor name
 * @param dtype the safetensors dtype string as stored ({@code F32}, {@code BF16}, {@code I64}, ...)
 * @param shape dimensions, outermost first; a fresh copy on every call
 * @param fileOffset absolute position of the first data byte in the file
 * @param byteLength bytes of data: product(shape) * element size
 */
public record TensorInfo(
    String name, String dtype, long[] shape, long fileOffset, long byteLength) {

  public TensorInfo {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of dimensions. */
  public int rank() {
    return shape.length;
  }

  /** Product of the dimensions (1 for a scalar). */
  public long numElements() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  /** The storage type, or null when the dtype is not F32, F16 or BF16. */
  public DType floatType() {
    switch (dtype) {
      case "F32":
        return DType.F32;
      case "F16":
        return DType.F16;
      case "BF16":
        return DType.BF16;
      default:
        return null;
    }
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype.equals(t.dtype)
        && Arrays.equals(shape, t.shape)
        && fileOffset == t.fileOffset
        && byteLength == t.byteLength;
  }

  @Override
  public int hashCode() {
    return name.hashCode() * 31 + Arrays.hashCode(shape);
  }

  @Override
  public String toString() {
    return name + " " + dtype + Arrays.toString(shape);
  }
}
