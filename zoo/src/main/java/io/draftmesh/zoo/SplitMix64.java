package io.draftmesh.zoo;

/**
 * SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator whose whole state is one long, so a
 * training checkpoint can store and restore it exactly.
 */
final class SplitMix64 {
  private long state;

  SplitMix64(long seed) {
    this.state = seed;
  }

  long state() {
    return state;
  }

  void setState(long state) {
    this.state = state;
  }

  long nextLong() {
    long z = (state += 0x9E3779B97F4A7C15L);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** Uniform in [0, bound). */
  int nextInt(int bound) {
    if (bound <= 0) {
      throw new IllegalArgumentException("bound " + bound + " (expected: > 0)");
    }
    return (int) Long.remainderUnsigned(nextLong(), bound);
  }

  /** Uniform in [0, 1). */
  double nextDouble() {
    return (nextLong() >>> 11) * 0x1.0p-53;
  }
}
