package io.draftmesh.engine.sampling;

import java.util.Arrays;

/**
 * Ranking of (value, token id) pairs packed into one {@code long}, so that selection and sorting
 * run on primitive arrays: ascending key order is descending value order, lower id first among
 * equal values. Values must not be NaN; {@code -0f} ranks as {@code 0f}.
 */
final class Selection {
  private Selection() {}

  /** The rank key of {@code value} for token {@code id} (id &ge; 0). */
  static long key(float value, int id) {
    int bits = Float.floatToRawIntBits(value + 0.0f); // -0 -> +0
    bits ^= (bits >> 31) & 0x7fffffff; // signed-int order == float order
    return ((long) ~bits << 32) | id; // ~ flips to descending value; id breaks ties ascending
  }

  /** The token id packed into {@code key}. */
  static int id(long key) {
    return (int) key;
  }

  /** The value packed into {@code key} ({@code -0f} comes back as {@code 0f}). */
  static float value(long key) {
    int bits = ~(int) (key >>> 32);
    bits ^= (bits >> 31) & 0x7fffffff; // the mapping is its own inverse
    return Float.intBitsToFloat(bits);
  }

  /**
   * Rearranges {@code a[0..n)} so that its {@code k} smallest keys occupy {@code a[0..k)} (in no
   * particular order). Expected O(n): quickselect with median-of-three pivots, falling back to a
   * sort of the remaining range if the partitioning degenerates. Keys must be distinct.
   */
  static void selectSmallest(long[] a, int n, int k) {
    if (k <= 0 || k >= n) {
      return;
    }
    int target = k - 1;
    int lo = 0;
    int hi = n - 1;
    int budget = 2 * (32 - Integer.numberOfLeadingZeros(n)) + 8;
    while (hi > lo) {
      if (budget-- == 0) {
        Arrays.sort(a, lo, hi + 1);
        return;
      }
      long pivot = median(a[lo], a[(lo + hi) >>> 1], a[hi]);
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (a[i] < pivot) {
          i++;
        }
        while (a[j] > pivot) {
          j--;
        }
        if (i <= j) {
          long t = a[i];
          a[i] = a[j];
          a[j] = t;
          i++;
          j--;
        }
      }
      // a[lo..j] <= pivot <= a[i..hi], and every element strictly between j and i equals pivot.
      if (target <= j) {
        hi = j;
      } else if (target >= i) {
        lo = i;
      } else {
        return;
      }
    }
  }

  private static long median(long a, long b, long c) {
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
}
