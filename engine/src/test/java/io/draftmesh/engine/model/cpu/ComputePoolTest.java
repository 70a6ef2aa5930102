package io.draftmesh.engine.model.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ComputePoolTest {
  @Test
  void everyIndexRunsExactlyOnceInAlignedSharesAcrossManyLoops() throws Exception {
    try (ComputePool pool = new ComputePool(2, "test")) {
      for (int loop = 0; loop < 500; loop++) {
        int n = 8 + loop % 97;
        AtomicIntegerArray hits = new AtomicIntegerArray(n);
        pool.parallelFor(
            n,
            4,
            (worker, from, to) -> {
              assertThat(from % 4).isZero();
              for (int i = from; i < to; i++) {
                hits.incrementAndGet(i);
              }
            });
        for (int i = 0; i < n; i++) {
          assertThat(hits.get(i)).as("index %d of loop %d", i, loop).isEqualTo(1);
        }
        if (loop == 250) {
          Thread.sleep(5); // past the spin: workers park, and must wake for the next loop
        }
      }
    }
  }

  @Test
  void aFailingShareIsRethrownToTheCallerAndThePoolKeepsWorking() {
    try (ComputePool pool = new ComputePool(2, "test")) {
      assertThatThrownBy(
              () ->
                  pool.parallelFor(
                      100,
                      1,
                      (worker, from, to) -> {
                        if (from >= 50) {
                          throw new IllegalStateException("share " + from);
                        }
                      }))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageStartingWith("share ");
      int[] sum = new int[1];
      java.util.concurrent.atomic.AtomicInteger covered =
          new java.util.concurrent.atomic.AtomicInteger();
      pool.parallelFor(100, 1, (worker, from, to) -> covered.addAndGet(to - from));
      assertThat(covered.get()).isEqualTo(100);
      pool.setThreads(1);
      pool.parallelFor(100, 1, (worker, from, to) -> sum[0] += to - from);
      assertThat(sum[0]).isEqualTo(100);
    }
  }
}
