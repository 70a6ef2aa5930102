package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ThreadChoiceTest {
  @Test
  void moreThreadsOnlyForWorkLongEnoughToSplitThatTheyClearlySpeedUp() {
    // The zoo draft's measurement that once chose two threads: 1.4x faster, but 26 us of work.
    assertThat(ThreadChoice.decide(0.026, 0.018, 2)).isEqualTo(1);
    // The zoo target's: long enough, and 1.43x faster.
    assertThat(ThreadChoice.decide(0.501, 0.350, 2)).isEqualTo(2);
    // Between the floors: more threads only when they win clearly.
    assertThat(ThreadChoice.decide(0.2, 0.19, 2)).isEqualTo(1);
    assertThat(ThreadChoice.decide(ThreadChoice.MIN_PARALLEL_MS, 0.05, 2)).isEqualTo(2);
    // Long work: the zoo target's measurement at a busy moment (two threads 4% slower) keeps two;
    // two threads clearly slower drops them.
    assertThat(ThreadChoice.decide(0.662, 0.688, 2)).isEqualTo(2);
    assertThat(ThreadChoice.decide(0.662, 0.80, 2)).isEqualTo(1);
  }
}
