package io.draftmesh.target;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TargetServiceMainTest {
  @TempDir Path model;

  @Test
  void helpExitsZero() {
    assertThat(TargetServiceMain.run(new String[] {"--help"}, Map.of())).isZero();
  }

  @Test
  void badFlagsExitTwoBeforeAnythingStarts() {
    assertThat(TargetServiceMain.run(new String[] {}, Map.of())).isEqualTo(2);
    assertThat(
            TargetServiceMain.run(
                new String[] {"--model", model.toString(), "--role", "draft"}, Map.of()))
        .isEqualTo(2);
    assertThat(
            TargetServiceMain.run(
                new String[] {"--model", model.toString()}, Map.of("DRAFTMESH_PORT", "-1")))
        .isEqualTo(2);
  }

  @Test
  void aDirectoryWithoutACheckpointFailsToLoadWithExitOne() {
    assertThat(TargetServiceMain.run(new String[] {"--model", model.toString()}, Map.of()))
        .isEqualTo(1);
  }
}
