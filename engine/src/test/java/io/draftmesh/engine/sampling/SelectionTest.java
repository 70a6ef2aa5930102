package io.draftmesh.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SelectionTest {

  @Test
  void keysOrderByDescendingValueThenAscendingId() {
    float[] values = {
      Float.NEGATIVE_INFINITY, -3.5f, -0.0f, 0.0f, Float.MIN_VALUE, 1f, 1f, 7e30f, Float.MAX_VALUE
    };
    long[] keys = new long[values.length];
    for (int i = 0; i < values.length; i++) {
      keys[i] = Selection.key(values[i], i);
    }
    Arrays.sort(keys);
    int[] ids = Arrays.stream(keys).mapToInt(Selection::id).toArray();
    assertThat(ids).containsExactly(8, 7, 5, 6, 4, 2, 3, 1, 0);
    for (int i = 0; i < values.length; i++) {
      assertThat(Selection.value(Selection.key(values[i], i))).isEqualTo(values[i] + 0.0f);
    }
  }

  @Test
  void selectSmallestAgreesWithSort() {
    SplittableRandom rng = new SplittableRandom(7);
    for (int trial = 0; trial < 300; trial++) {
      int n = 1 + rng.nextInt(400);
      long[] keys = new long[n];
      for (int i = 0; i < n; i++) {
        // few distinct values: many ties broken by id
        keys[i] = Selection.key(rng.nextInt(trial % 2 == 0 ? 5 : 1000), i);
      }
      int k = rng.nextInt(n + 1);
      long[] expected = keys.clone();
      Arrays.sort(expected);
      long[] selected = keys.clone();
      Selection.selectSmallest(selected, n, k);
      long[] head = Arrays.copyOf(selected, k);
      Arrays.sort(head);
      assertThat(head).containsExactly(Arrays.copyOf(expected, k));
    }
  }

  @Test
  void selectSmallestHandlesSortedAndReversedInput() {
    int n = 10_000;
    long[] asc = new long[n];
    long[] desc = new long[n];
    for (int i = 0; i < n; i++) {
      asc[i] = Selection.key(-i, i);
      desc[i] = Selection.key(i, i);
    }
    Selection.selectSmallest(asc, n, 10);
    Selection.selectSmallest(desc, n, 10);
    assertThat(Arrays.stream(asc, 0, 10).mapToInt(Selection::id).sorted().toArray())
        .containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    assertThat(Arrays.stream(desc, 0, 10).mapToInt(Selection::id).sorted().toArray())
        .containsExactly(9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999);
  }
}
