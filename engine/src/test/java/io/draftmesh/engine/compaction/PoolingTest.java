package io.draftmesh.engine.compaction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class PoolingTest {
  @Test
  void oddKernelIsCentredAndIgnoresCellsPastTheEdges() {
    float[] x = {0, 0, 0, 5, 0, 0, 0, 0, 1};
    // kernel 3: each cell sees itself and one neighbour each side.
    assertThat(Pooling.max(x, 3)).containsExactly(0, 0, 5, 5, 5, 0, 0, 1, 1);
    // kernel 7 at the edges: cell 0 sees 0..3, cell 8 sees 5..8.
    float[] k7 = Pooling.max(x, 7);
    assertThat(k7[0]).isEqualTo(5f);
    assertThat(k7[8]).isEqualTo(1f);
    assertThat(k7[7]).isEqualTo(1f);
    assertThat(k7[6]).isEqualTo(5f);
  }

  @Test
  void evenKernelReachesOneFurtherRightThanLeft() {
    // kernel 4: window [i - 1, i + 2], as SpecPC pads ((k-1)//2 left, k-1-(k-1)//2 right).
    float[] x = {0, 0, 0, 0, 7, 0, 0, 0};
    assertThat(Pooling.max(x, 4)).containsExactly(0, 0, 7, 7, 7, 7, 0, 0);
  }

  @Test
  void kernelOneIsTheIdentity() {
    float[] x = {3, 1, 2};
    assertThat(Pooling.max(x, 1)).containsExactly(3, 1, 2);
    assertThat(Pooling.average(x, 1)).containsExactly(3, 1, 2);
  }

  @Test
  void averageCountsPaddingAsZero() {
    float[] x = {3, 3, 3};
    // count_include_pad: the edge cells divide by the full kernel.
    assertThat(Pooling.average(x, 3)).containsExactly(2f, 3f, 2f);
  }

  @Test
  void rejectsAKernelBelowOne() {
    assertThatThrownBy(() -> Pooling.max(new float[2], 0)).hasMessageContaining("kernel: 0");
  }
}
