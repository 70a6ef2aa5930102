package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.List;
import org.junit.jupiter.api.Test;

class ScoringTest {
  @Test
  void exactMatchTakesTheFirstLineWithoutATrailingPeriod() {
    assertThat(Scoring.exactMatch(" 48213.\nAnd the LORD said", " 48213")).isEqualTo(1);
    assertThat(Scoring.exactMatch(" 48213", " 48213")).isEqualTo(1);
    assertThat(Scoring.exactMatch(" 4821", " 48213")).isZero();
    assertThat(Scoring.exactMatch(" 482134", " 48213")).isZero();
    assertThat(Scoring.exactMatch("\n48213", " 48213")).as("answer on the next line").isZero();
  }

  @Test
  void recallCountsWholeValuesOnTheFirstLine() {
    List<String> values = List.of("111", "222", "333");
    assertThat(Scoring.recall(" 111, 222, 333.", values)).isEqualTo(1);
    assertThat(Scoring.recall(" 333, 111", values)).isCloseTo(2 / 3.0, within(1e-12));
    assertThat(Scoring.recall(" 1112, 22", values)).isZero();
    assertThat(Scoring.recall(" 111\n222 333", values)).isCloseTo(1 / 3.0, within(1e-12));
    assertThat(Scoring.recall(" ABCDE FGHIJ", List.of("ABCDE", "FGHIJ"))).isEqualTo(1);
    assertThatThrownBy(() -> Scoring.recall("x", List.of())).hasMessageContaining("no values");
  }

  @Test
  void wordF1IsTheSquadScore() {
    assertThat(
            Scoring.wordF1(
                " And God said, Let there be light.", " And God said, Let there be light"))
        .isEqualTo(1);
    // got: the lord said (3), want: and the lord spake unto moses (6), common: the, lord.
    double p = 2 / 3.0;
    double r = 2 / 6.0;
    assertThat(Scoring.wordF1(" The LORD said", " and the LORD spake unto Moses"))
        .isCloseTo(2 * p * r / (p + r), within(1e-12));
    // Repeated words count once per occurrence in the reference.
    assertThat(Scoring.wordF1(" the the the", " the end")).isCloseTo(0.4, within(1e-12));
    assertThat(Scoring.wordF1(" nothing alike", " and the lord")).isZero();
    assertThat(Scoring.wordF1("", " and")).isZero();
    assertThat(Scoring.wordF1("", "")).isEqualTo(1);
  }
}
