package io.draftmesh.draft;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DraftServiceMainTest {
  @TempDir Path model;

  @Test
  void helpExitsZero() {
    assertThat(DraftServiceMain.run(new String[] {"--help"}, Map.of())).isZero();
  }

  @Test
  void badFlagsExitTwoBeforeAnythingStarts() {
    assertThat(DraftServiceMain.run(new String[] {}, Map.of())).isEqualTo(2);
    assertThat(
            DraftServiceMain.run(
                new String[] {"--model", model.toString(), "--role", "target"}, Map.of()))
        .isEqualTo(2);
    assertThat(
            DraftServiceMain.run(
                new String[] {"--model", model.toString()}, Map.of("DRAFTMESH_PORT", "-1")))
        .isEqualTo(2);
  }

  @Test
  void aDirectoryWithoutACheckpointFailsToLoadWithExitOne() {
    assertThat(DraftServiceMain.run(new String[] {"--model", model.toString()}, Map.of()))
        .isEqualTo(1);
  }
}
