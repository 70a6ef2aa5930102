package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.FloatBits;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Both KV row types' scores, single, four and five rows at a time, equal a double-precision
 * reference over the stored rows for key counts below, at and past one {@link LaneSums} block
 * (partial lane groups, several blocks), and their four- and five-row values equal the reference
 * too: the group kernels (a 64-wide head on AVX-512) and the row-after-row fallbacks alike.
 */
class AttentionRowsTest {
  private static final int L = LaneSums.L;

  static List<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    for (boolean half : new boolean[] {false, true}) {
      for (int headDim : new int[] {L, 2 * L, 4 * L, 8 * L, L + 4}) {
        for (int len : new int[] {1, L - 1, L + 3, LaneSums.KEYS, 3 * LaneSums.KEYS + 5}) {
          cases.add(Arguments.of(half, headDim, len));
        }
      }
    }
    return cases;
  }

  @ParameterizedTest(name = "float16={0} headDim={1} keys={2}")
  @MethodSource("cases")
  void scoresAndValuesOfOneFourAndFiveRowsEqualTheReference(boolean half, int headDim, int len) {
    Random r = new Random(31L * headDim + len);
    float scale = (float) (1 / Math.sqrt(headDim));
    KvRows rows = half ? new F16Rows(headDim, scale) : new F32Rows(headDim, scale);
    int slots = len + 3;
    ByteBuffer keys =
        ByteBuffer.allocateDirect(slots * rows.rowBytes()).order(ByteOrder.nativeOrder());
    ByteBuffer values =
        ByteBuffer.allocateDirect(slots * rows.rowBytes()).order(ByteOrder.nativeOrder());
    float[] row = new float[headDim];
    for (int s = 0; s < slots; s++) {
      for (int i = 0; i < headDim; i++) {
        row[i] = (float) r.nextGaussian();
      }
      rows.store(row, 0, keys, s * rows.rowBytes());
      for (int i = 0; i < headDim; i++) {
        row[i] = (float) r.nextGaussian();
      }
      rows.store(row, 0, values, s * rows.rowBytes());
    }
    int[] slot = new int[len];
    for (int j = 0; j < len; j++) {
      slot[j] = (j * 7 + 2) % slots; // scattered, as a block table maps them
    }
    float[] qkv = new float[5 * headDim + 5];
    for (int i = 0; i < qkv.length; i++) {
      qkv[i] = (float) r.nextGaussian();
    }
    int[] q = {5, 5 + headDim, 5 + 2 * headDim, 5 + 3 * headDim, 5 + 4 * headDim};
    double[][] want = new double[5][len];
    for (int t = 0; t < 5; t++) {
      for (int j = 0; j < len; j++) {
        for (int i = 0; i < headDim; i++) {
          want[t][j] += qkv[q[t] + i] * element(half, keys, slot[j] * headDim + i);
        }
        want[t][j] *= scale;
      }
    }
    int stride = len + 2;
    float[] one = new float[5 * stride];
    float[] four = new float[5 * stride];
    float[] five = new float[5 * stride];
    java.util.Arrays.fill(one, Float.NaN);
    java.util.Arrays.fill(four, Float.NaN);
    java.util.Arrays.fill(five, Float.NaN);
    for (int t = 0; t < 5; t++) {
      rows.scores(qkv, q[t], slot, 0, keys, len, one, t * stride);
    }
    rows.scores4(qkv, q, slot, 0, keys, len, four, stride);
    rows.scores5(qkv, q, slot, 0, keys, len, five, stride);
    for (int t = 0; t < 5; t++) {
      for (int j = 0; j < len; j++) {
        assertThat((double) one[t * stride + j])
            .as("row %d score %d", t, j)
            .isCloseTo(want[t][j], within(1e-4));
        if (t < 4) {
          assertThat((double) four[t * stride + j])
              .as("4 rows: row %d score %d", t, j)
              .isCloseTo(want[t][j], within(1e-4));
        }
        assertThat((double) five[t * stride + j])
            .as("5 rows: row %d score %d", t, j)
            .isCloseTo(want[t][j], within(1e-4));
      }
      // Past the keys nothing is written: each key's sum stays in its own lane.
      assertThat(one[t * stride + len]).isNaN();
      assertThat(four[t * stride + len]).isNaN();
      assertThat(five[t * stride + len]).isNaN();
    }
    assertThat(four[4 * stride]).as("4 rows write no fifth").isNaN();

    float[] probs = new float[5 * stride];
    for (int i = 0; i < probs.length; i++) {
      probs[i] = r.nextFloat();
    }
    float[] inv = {0.5f, 0.25f, 1f, 0.125f, 2f};
    int width = headDim + 3;
    int[] o = {1, 1 + width, 1 + 2 * width, 1 + 3 * width, 1 + 4 * width};
    float[] out4 = new float[5 * width + 1];
    float[] out5 = new float[5 * width + 1];
    rows.values4(probs, stride, inv, len, slot, 0, values, out4, o);
    rows.values5(probs, stride, inv, len, slot, 0, values, out5, o);
    for (int t = 0; t < 5; t++) {
      for (int i = 0; i < headDim; i++) {
        double sum = 0;
        for (int j = 0; j < len; j++) {
          sum += probs[t * stride + j] * inv[t] * element(half, values, slot[j] * headDim + i);
        }
        if (t < 4) {
          assertThat((double) out4[o[t] + i])
              .as("4 rows: row %d output %d", t, i)
              .isCloseTo(sum, within(1e-3 * Math.sqrt(len)));
        } else {
          assertThat(out4[o[t] + i]).as("4 rows write no fifth").isZero();
        }
        assertThat((double) out5[o[t] + i])
            .as("5 rows: row %d output %d", t, i)
            .isCloseTo(sum, within(1e-3 * Math.sqrt(len)));
      }
    }
  }

  private static double element(boolean half, ByteBuffer buf, int element) {
    return half
        ? FloatBits.f16ToFloat(buf.getShort(element * Short.BYTES))
        : buf.getFloat(element * Float.BYTES);
  }

  private static org.assertj.core.data.Offset<Double> within(double tolerance) {
    return org.assertj.core.data.Offset.offset(tolerance);
  }
}
