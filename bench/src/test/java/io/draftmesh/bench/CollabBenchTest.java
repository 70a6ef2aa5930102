package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** bench collab's scores and flags (the runs themselves are the bench, never a timed test). */
class CollabBenchTest {
  @Test
  void unigramF1ComparesTheFirstReferenceLengthWords() {
    assertThat(CollabBench.unigramF1(" of the sea, tossed", "of the sea, tossed")).isEqualTo(1.0);
    assertThat(CollabBench.unigramF1("the the", "the sea")).isEqualTo(0.5); // counts clipped
    assertThat(CollabBench.unigramF1("a b c d e f", "x y")).isZero();
    // Only the first |reference| words count: a long reply is not rewarded for volume.
    assertThat(CollabBench.unigramF1("x y of the", "of the")).isZero();
  }

  @Test
  void agreementIsTheLargeModelsPrefixReproduced() {
    assertThat(CollabBench.agreement(List.of(1, 2, 3, 9), List.of(1, 2, 3, 4))).isEqualTo(0.75);
    assertThat(CollabBench.agreement(List.of(5), List.of(1, 2))).isZero();
    assertThat(CollabBench.agreement(List.of(1, 2), List.of())).isZero();
  }

  @Test
  void badFlagsAreUsageErrorsNamingTheFlag() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
    PrintStream o = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertThat(CollabBench.run(new String[] {"--prompts", "0"}, o, e)).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("--prompts: 0 (expected:");
    assertThat(CollabBench.run(new String[] {"--fast"}, o, e)).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown flag \"--fast\"");
    assertThat(CollabBench.run(new String[] {"--help"}, o, e)).isZero();
  }
}
