package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** The bench's baseline and metrics, without models (the bench itself runs as a command). */
class ApproxBenchTest {
  @Test
  void streamingDropKeepsTheSinksAndTheRecentTokens() {
    int[] prompt = java.util.stream.IntStream.range(100, 120).toArray();
    assertThat(ApproxBench.streamingDrop(prompt, 8))
        .containsExactly(100, 101, 102, 103, 116, 117, 118, 119);
    assertThat(ApproxBench.streamingDrop(prompt, 20)).isEqualTo(prompt);
  }

  @Test
  void agreementCountsThePrefixAndThePositions() {
    int[] ref = {1, 2, 3, 4};
    assertThat(ApproxBench.prefixAgreement(new int[] {1, 2, 9, 4}, ref)).isEqualTo(0.5);
    assertThat(ApproxBench.tokenAgreement(new int[] {1, 2, 9, 4}, ref)).isEqualTo(0.75);
    assertThat(ApproxBench.prefixAgreement(ref, ref)).isEqualTo(1.0);
    assertThat(ApproxBench.tokenAgreement(new int[] {1}, ref)).isEqualTo(0.25);
  }

  @Test
  void wordF1IsOverWordMultisets() {
    assertThat(ApproxBench.wordF1("the Lord is my shepherd", "the lord is my shepherd"))
        .isEqualTo(1.0);
    assertThat(ApproxBench.wordF1("a b", "c d")).isZero();
    // 2 common of 2 and of 4: p = 1, r = 0.5.
    assertThat(ApproxBench.wordF1("a b", "a b c d")).isCloseTo(2 / 3.0, within());
    // Duplicates count once per occurrence.
    assertThat(ApproxBench.wordF1("a a", "a b")).isCloseTo(0.5, within());
  }

  @Test
  void flagsAreCheckedByName() {
    assertThat(ApproxBench.parse(new String[] {"--json", "--prompts", "2"}))
        .isEqualTo(new ApproxBench.Options(true, false, 2, 32));
    assertThat(ApproxBench.parse(new String[] {"--help"})).isNull();
    assertThatThrownBy(() -> ApproxBench.parse(new String[] {"--prompts", "0"}))
        .hasMessageContaining("--prompts: 0");
    assertThatThrownBy(() -> ApproxBench.parse(new String[] {"--budget"}))
        .hasMessageContaining("unknown flag \"--budget\"");
  }

  private static org.assertj.core.data.Offset<Double> within() {
    return org.assertj.core.data.Offset.offset(1e-9);
  }
}
