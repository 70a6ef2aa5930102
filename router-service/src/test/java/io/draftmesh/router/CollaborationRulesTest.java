package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The approximate strategies' decisions as pure functions, on scripted inputs. */
class CollaborationRulesTest {

  // ---- nudging (fywalter/nudging utils.py) ----

  @Test
  void chunksSplitIntoWordsLikePythonsSplitOnASpace() {
    NudgingRule.Words w = NudgingRule.split("  Answer: the  sky ");
    assertThat(w.spacePrefix()).isEqualTo("  ");
    assertThat(w.words()).containsExactly("Answer:", "the", "", "sky", "");
    assertThat(w.prefix(1)).isEqualTo("  Answer:");
    assertThat(w.prefix(4)).isEqualTo("  Answer: the  sky");
    assertThat(w.word(1)).isEqualTo(" the");
    // Joining every word back gives the chunk: nothing is dropped or doubled.
    assertThat(w.prefix(w.size())).isEqualTo("  Answer: the  sky ");
    assertThat(NudgingRule.split("").words()).containsExactly("");
  }

  @Test
  void baseTakesOverAtOrAboveGammaOrWhenItsTokenStartsTheWord() {
    assertThat(NudgingRule.takesOver(" sky", " the", 0.4f, 0.4f)).isTrue(); // p = γ: take over
    assertThat(NudgingRule.takesOver(" sky", " the", 0.39f, 0.4f)).isFalse();
    assertThat(NudgingRule.takesOver(" sky", " sk", 0.01f, 0.4f)).isTrue(); // agrees with the word
    assertThat(NudgingRule.takesOver(" sky", " skyline", 0.01f, 0.4f)).isFalse();
    assertThat(NudgingRule.takesOver(" sky", "", 0.01f, 0.4f)).isTrue(); // special: "" as in Python
  }

  @Test
  void baseRunsUntilJustBeforeItsFirstUnsureToken() {
    assertThat(NudgingRule.baseRun(new float[] {0.9f, 0.5f, 0.39f, 0.99f}, 0.4f)).isEqualTo(2);
    assertThat(NudgingRule.baseRun(new float[] {0.1f, 0.9f}, 0.4f)).isZero();
    assertThat(NudgingRule.baseRun(new float[] {0.4f, 0.4f}, 0.4f)).isEqualTo(2); // goes on
    assertThat(NudgingRule.baseRun(new float[0], 0.4f)).isZero();
  }

  @Test
  void theSameNudgeThreeMoreTimesStops() {
    NudgingRule.Repeats r = new NudgingRule.Repeats();
    assertThat(r.stop(" a")).isFalse();
    assertThat(r.stop(" a")).isFalse();
    assertThat(r.stop(" b")).isFalse(); // a different nudge resets the count
    assertThat(r.stop(" b")).isFalse();
    assertThat(r.stop(" b")).isFalse();
    assertThat(r.stop(" b")).isTrue(); // the fourth " b" in a row
  }

  @Test
  void utf8PrefixNeverEndsInsideACharacter() {
    byte[] b = "aé日🙂".getBytes(java.nio.charset.StandardCharsets.UTF_8); // 1 + 2 + 3 + 4 bytes
    int[] expected = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};
    for (int n = 0; n <= b.length; n++) {
      assertThat(NudgingDecoding.completeUtf8Prefix(b, n))
          .as("prefix of %d bytes", n)
          .isEqualTo(expected[n]);
    }
    // Invalid bytes decode to U+FFFD on their own: nothing to wait for.
    assertThat(NudgingDecoding.completeUtf8Prefix(new byte[] {(byte) 0x80, (byte) 0x80}, 2))
        .isEqualTo(2);
    assertThat(NudgingDecoding.completeUtf8Prefix(new byte[] {'a', (byte) 0xFF}, 2)).isEqualTo(2);
  }

  // ---- Entropy Adaptive Decoding ----

  /** Who writes each token, "S" or "L", when the writer's entropy at token t is h[t]. */
  private static String writers(SpanRule rule, float[] h) {
    StringBuilder s = new StringBuilder();
    for (float x : h) {
      s.append(rule.large() ? 'L' : 'S');
      rule.observe("t", x);
    }
    return s.toString();
  }

  @Test
  void largeWritesWhileTheRollingMeanExceedsTau() {
    // w = 2, min run 1: the mean of the last two entropies against τ = 1.
    float[] h = {0, 0, 3, 3, 3, 0, 0, 0, 2.1f, 0};
    // after t2 the mean is 1.5 > 1: L from t3; after t5 it is 1.5 still; after t6 it is 0: S.
    assertThat(writers(new EntropySwitchRule(1f, 2, 1), h)).isEqualTo("SSSLLLLSSL");
  }

  @Test
  void theMeanMustExceedTauStrictly() {
    float[] h = {1, 1, 1, 1};
    assertThat(writers(new EntropySwitchRule(1f, 2, 1), h)).isEqualTo("SSSS");
    assertThat(writers(new EntropySwitchRule(0.99f, 2, 1), h)).isEqualTo("SLLL");
  }

  @Test
  void minimumRunHoldsTheWriterAgainstASpike() {
    // One hard token in easy text: with min run 1 the large model takes one token and hands back
    // (flapping); with min run 3 the small model must write 3 tokens first, and the large one
    // then keeps 3 tokens before the mean (now low) may send it back.
    float[] h = {0, 5, 0, 0, 0, 0, 0, 0};
    assertThat(writers(new EntropySwitchRule(1f, 1, 1), h)).isEqualTo("SSLSSSSS");
    assertThat(writers(new EntropySwitchRule(1f, 3, 3), h)).isEqualTo("SSSLLLSS");
    EntropySwitchRule r = new EntropySwitchRule(1f, 3, 3);
    assertThat(r.safeTokens()).isEqualTo(3);
    r.observe("t", 0);
    assertThat(r.safeTokens()).isEqualTo(2);
  }

  @Test
  void rollingMeanCoversOnlyTheLastWindow() {
    EntropySwitchRule r = new EntropySwitchRule(10f, 3, 1);
    for (float x : new float[] {9, 9, 9, 0, 0, 3}) {
      r.observe("t", x);
    }
    assertThat(r.mean()).isEqualTo(1f);
    assertThat(r.signal()).isEqualTo(1f);
  }

  @Test
  void rulesRejectBadParameters() {
    assertThatThrownBy(() -> new EntropySwitchRule(-1f, 5, 5))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new EntropySwitchRule(1f, 0, 5))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new LeadInRule(-1, ".")).isInstanceOf(IllegalArgumentException.class);
  }

  // ---- FoReaL-style lead-in ----

  @Test
  void largeWritesTheFirstNTokensOfEverySentence() {
    LeadInRule r = new LeadInRule(2, ".!?\n");
    List<String> tokens = List.of("A", " b", " c", ".", " D", " e", "?", " ", "F", " g", "\n", "H");
    StringBuilder w = new StringBuilder();
    List<Boolean> switched = new ArrayList<>();
    for (String t : tokens) {
      w.append(r.large() ? 'L' : 'S');
      switched.add(r.observe(t, 0f));
    }
    // A sentence starts after ".", "?" and "\n"; the lone space after "?" counts toward the next.
    assertThat(w.toString()).isEqualTo("LLSSLLSLLSSL");
    assertThat(new LeadInRule(0, ".").large()).isFalse(); // n = 0: the small model alone
    assertThat(r.endsSentence(". ")).isTrue();
    assertThat(r.endsSentence(" ")).isFalse();
  }
}
