package io.draftmesh.router;

import java.util.Arrays;
import java.util.List;

/**
 * Nudging's decisions as pure functions, as the reference implementation makes them
 * (fywalter/nudging {@code utils.py}: {@code completion_with_nudging}, {@code complete_with_base},
 * {@code check_need_nudging}):
 *
 * <ul>
 *   <li>The aligned model's chunk is split into words the reference's way: its leading spaces are
 *       kept apart, the rest is split on single spaces ({@link #split}).
 *   <li>The first word is always taken. At each later word j (in order, skipping the empty words
 *       that runs of spaces leave), the base model predicts the next token after the output so far
 *       plus words 0..j-1; it takes over there when its top-1 probability is ≥ γ or the word (with
 *       its leading space) starts with the base's token ({@link #takesOver}).
 *   <li>No take-over: words 0..n-2 are taken (the last word may be cut off by the chunk's end) and
 *       the aligned model proposes again; a chunk of one word is taken whole.
 *   <li>After a take-over the base's first token is taken; it continues until just before its first
 *       token whose top-1 probability is below γ ({@link #baseRun}).
 *   <li>The same nudging words three times after their first appearance end the generation ({@link
 *       Repeats}; the reference's {@code repeat_nudging_word >= 3}).
 * </ul>
 */
final class NudgingRule {
  static final float DEFAULT_GAMMA = 0.4f;
  static final int DEFAULT_CHUNK_TOKENS = 16;
  static final int MAX_REPEATS = 3;

  private NudgingRule() {}

  /** An aligned chunk split into words: {@code spacePrefix} + words joined by single spaces. */
  record Words(String spacePrefix, List<String> words) {
    /** The text of words 0..j-1 with the chunk's leading spaces: what the aligned model wrote. */
    String prefix(int j) {
      return spacePrefix + String.join(" ", words.subList(0, j));
    }

    /** Word j (j ≥ 1) with the space that separates it from the previous one. */
    String word(int j) {
      return " " + words.get(j);
    }

    int size() {
      return words.size();
    }
  }

  static Words split(String chunk) {
    int i = 0;
    while (i < chunk.length() && chunk.charAt(i) == ' ') {
      i++;
    }
    // split(" ", -1) keeps trailing empty words, as Python's str.split(" ") does.
    return new Words(chunk.substring(0, i), Arrays.asList(chunk.substring(i).split(" ", -1)));
  }

  /**
   * Whether the base model takes over at a word: its top-1 probability there is at least γ, or the
   * word starts with the token it would write ({@code baseTokenText}; "" for a special token, which
   * every word starts with, as in the reference).
   */
  static boolean takesOver(String word, String baseTokenText, float baseTop1, float gamma) {
    return word.startsWith(baseTokenText) || baseTop1 >= gamma;
  }

  /**
   * How many of the base's continuation tokens to keep: those before the first whose top-1
   * probability is below γ. {@code top1[i]} is the base's top-1 probability at the position that
   * produced continuation token i (the take-over token itself is always kept and not in the array).
   * Returns {@code top1.length} when all of them stay (the base goes on).
   */
  static int baseRun(float[] top1, float gamma) {
    for (int i = 0; i < top1.length; i++) {
      if (top1[i] < gamma) {
        return i;
      }
    }
    return top1.length;
  }

  /** The reference's stop on repeated nudging words. Not thread-safe. */
  static final class Repeats {
    private String last = "";
    private int count;

    /** Records this round's nudging words; true when the generation must stop (not taken). */
    boolean stop(String words) {
      if (words.equals(last)) {
        count++;
        return count >= MAX_REPEATS;
      }
      last = words;
      count = 0;
      return false;
    }
  }
}
