package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.FloatBits;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The float16 KV rows: writes round exactly as {@link FloatBits#floatToF16} (nearest, ties to even,
 * subnormals included) and refuse what a half cannot hold; scores and weighted values equal a
 * scalar reference over the stored halves, for head widths that take each kernel on this machine
 * (one, two and four int vectors a row, and the scalar loop).
 */
class F16RowsTest {
  private static final int L = FloatVector.SPECIES_PREFERRED.length();

  static int[] headDims() {
    return new int[] {2 * L, 4 * L, 8 * L, L, L + 4};
  }

  private static ByteBuffer buffer(int bytes) {
    return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
  }

  @ParameterizedTest
  @MethodSource("headDims")
  void writesRoundEveryFloatLikeTheScalarConversion(int headDim) {
    F16Rows rows = new F16Rows(headDim, 1f);
    ByteBuffer row = buffer(rows.rowBytes());
    float[] src = new float[headDim];
    // Every exponent from zero through the largest finite half, both signs, mantissas stepped
    // so that ties, odd and even neighbours and subnormal halves all occur.
    long checked = 0;
    String firstWrong = null;
    for (long bits = 0; bits <= 0x477FE000L; bits += 4999) {
      for (int i = 0; i < headDim; i++) {
        long b = Math.min(0x477FE000L, bits + i * 131L);
        src[i] = Float.intBitsToFloat((int) b) * (i % 3 == 0 ? -1 : 1);
      }
      rows.store(src, 0, row, 0);
      for (int i = 0; i < headDim; i++) {
        short want = FloatBits.floatToF16(src[i]);
        if (row.getShort(2 * i) != want && firstWrong == null) {
          firstWrong = src[i] + " -> " + row.getShort(2 * i) + " (expected: " + want + ")";
        }
      }
      checked += headDim;
    }
    assertThat(firstWrong).as("the first float rounded otherwise").isNull();
    assertThat(checked).isGreaterThan(1_000_000);
  }

  @ParameterizedTest
  @MethodSource("headDims")
  void aValueBeyondFloat16sRangeFailsTheWriteNamingIt(int headDim) {
    F16Rows rows = new F16Rows(headDim, 1f);
    ByteBuffer row = buffer(rows.rowBytes());
    float[] src = new float[headDim];
    src[headDim - 1] = 65504f; // the largest half: fine
    rows.store(src, 0, row, 0);
    assertThat(FloatBits.f16ToFloat(row.getShort(2 * (headDim - 1)))).isEqualTo(65504f);
    src[headDim / 2] = -70000f;
    assertThatThrownBy(() -> rows.store(src, 0, row, 0))
        .hasMessageContaining("kv dtype float16")
        .hasMessageContaining("-70000.0")
        .hasMessageContaining("--kv-dtype float32");
    src[headDim / 2] = Float.NaN;
    assertThatThrownBy(() -> rows.store(src, 0, row, 0)).hasMessageContaining("NaN");
  }

  @ParameterizedTest
  @MethodSource("headDims")
  void scoresAndValuesEqualTheScalarReferenceOverTheStoredHalves(int headDim) {
    Random r = new Random(headDim);
    float scale = (float) (1 / Math.sqrt(headDim));
    F16Rows rows = new F16Rows(headDim, scale);
    int kvHeads = 2;
    int slots = 64;
    int headBase = slots; // KV head 1
    ByteBuffer keys = buffer(kvHeads * slots * rows.rowBytes());
    ByteBuffer values = buffer(kvHeads * slots * rows.rowBytes());
    float[] row = new float[headDim];
    for (int s = 0; s < kvHeads * slots; s++) {
      for (int i = 0; i < headDim; i++) {
        row[i] = (float) (r.nextGaussian() * (i % 7 == 0 ? 1e-6 : 2)); // some subnormal halves
      }
      rows.store(row, 0, keys, s * rows.rowBytes());
      for (int i = 0; i < headDim; i++) {
        row[i] = (float) r.nextGaussian();
      }
      rows.store(row, 0, values, s * rows.rowBytes());
    }
    int len = 37; // odd: the value kernels' tail
    int[] slot = new int[len];
    for (int j = 0; j < len; j++) {
      slot[j] = (j * 17) % slots; // scattered, as a block table maps them
    }
    float[] qkv = new float[3 + headDim];
    for (int i = 0; i < headDim; i++) {
      qkv[3 + i] = (float) r.nextGaussian();
    }

    float[] scores = new float[2 + len];
    rows.scores(qkv, 3, slot, headBase, keys, len, scores, 2);
    double[] expected = new double[len];
    for (int j = 0; j < len; j++) {
      for (int i = 0; i < headDim; i++) {
        expected[j] += qkv[3 + i] * half(keys, (headBase + slot[j]) * headDim + i);
      }
      expected[j] *= scale;
      assertThat((double) scores[2 + j]).as("score %d", j).isCloseTo(expected[j], within(1e-5));
    }
    // A score moves when one key element does: the kernel reads every element.
    assertThat(Math.abs(expected[0] - expected[1])).isGreaterThan(1e-3);

    float[] probs = new float[1 + len];
    for (int j = 0; j < len; j++) {
      probs[1 + j] = r.nextFloat();
    }
    float inv = 0.37f;
    float[] out = new float[5 + headDim];
    rows.values(probs, 1, inv, len, slot, headBase, values, out, 5);
    for (int i = 0; i < headDim; i++) {
      double want = 0;
      for (int j = 0; j < len; j++) {
        want += probs[1 + j] * inv * half(values, (headBase + slot[j]) * headDim + i);
      }
      assertThat((double) out[5 + i]).as("output %d", i).isCloseTo(want, within(1e-5));
    }
  }

  private static org.assertj.core.data.Offset<Double> within(double tolerance) {
    return org.assertj.core.data.Offset.offset(tolerance);
  }

  private static double half(ByteBuffer buf, int element) {
    return FloatBits.f16ToFloat(buf.getShort(element * Short.BYTES));
  }
}
