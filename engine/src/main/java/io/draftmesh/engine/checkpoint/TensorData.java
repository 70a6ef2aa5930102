package io.draftmesh.engine.checkpoint;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * A tensor to be written: its shape and a source of its float values in row-major order. Values
 * come from an array, a {@link FloatBuffer}, or a generator that produces them chunk by chunk, so a
 * large checkpoint can be written without holding all of it on the heap.
 */
public final class TensorData {
  /** Produces a tensor's values in order; one instance is used for one pass over the tensor. */
  @FunctionalInterface
  public interface ValueSource {
    /** Writes the next {@code length} values into {@code dst[0..length)}. */
    void next(float[] dst, int length);
  }

  private final long[] shape;
  private final long numElements;
  private final Supplier<ValueSource> source;

  private TensorData(long[] shape, Supplier<ValueSource> source) {
    this.shape = shape.clone();
    long n = 1;
    for (long d : this.shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + " has a negative dimension");
      }
      n = Math.multiplyExact(n, d);
    }
    this.numElements = n;
    this.source = source;
  }

  /** Values from {@code values}, which must hold exactly product(shape) floats (not copied). */
  public static TensorData of(float[] values, long... shape) {
    TensorData t =
        new TensorData(
            shape,
            () ->
                new ValueSource() {
                  private int offset;

                  @Override
                  public void next(float[] dst, int length) {
                    System.arraycopy(values, offset, dst, 0, length);
                    offset += length;
                  }
                });
    t.requireCount(values.length);
    return t;
  }

  /**
   * Values from {@code values}' remaining elements (position to limit), which must number exactly
   * product(shape); the buffer's position is not changed.
   */
  public static TensorData of(FloatBuffer values, long... shape) {
    FloatBuffer view = values.duplicate();
    TensorData t =
        new TensorData(
            shape,
            () -> {
              FloatBuffer b = view.duplicate();
              return (dst, length) -> b.get(dst, 0, length);
            });
    t.requireCount(view.remaining());
    return t;
  }

  /** Values produced by a fresh {@link ValueSource} from {@code source} on every pass. */
  public static TensorData generated(long[] shape, Supplier<ValueSource> source) {
    return new TensorData(shape, source);
  }

  private void requireCount(long count) {
    if (count != numElements) {
      throw new IllegalArgumentException(
          "tensor data has "
              + count
              + " values, expected "
              + numElements
              + " for shape "
              + Arrays.toString(shape));
    }
  }

  public long[] shape() {
    return shape.clone();
  }

  public long numElements() {
    return numElements;
  }

  /** Starts a pass over the values. */
  public ValueSource open() {
    return source.get();
  }
}
