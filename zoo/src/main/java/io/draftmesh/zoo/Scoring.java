package io.draftmesh.zoo;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Scores of generated completions against references: exact match of a single fact, recall of
 * several facts (RULER's {@code string_match_all}), and SQuAD-style word F1 for free text.
 */
public final class Scoring {
  private Scoring() {}

  /** The completion's first line, stripped, without one trailing period. */
  public static String firstLine(String completion) {
    int nl = completion.indexOf('\n');
    String line = (nl < 0 ? completion : completion.substring(0, nl)).strip();
    return line.endsWith(".") ? line.substring(0, line.length() - 1).strip() : line;
  }

  /** 1 when the first line of {@code completion} is exactly {@code expected}, else 0. */
  public static double exactMatch(String completion, String expected) {
    return firstLine(completion).equals(firstLine(expected)) ? 1 : 0;
  }

  /**
   * The fraction of {@code values} that occur as whole words in the completion's first line
   * (order-free, like RULER's recall-based score).
   */
  public static double recall(String completion, List<String> values) {
    if (values.isEmpty()) {
      throw new IllegalArgumentException("no values to recall (expected: at least one)");
    }
    List<String> got = words(firstLine(completion));
    int hit = 0;
    for (String v : values) {
      if (got.contains(normalize(v))) {
        hit++;
      }
    }
    return (double) hit / values.size();
  }

  /**
   * Word F1 between the completion's first line and the expected text: words lower-cased and
   * stripped of punctuation, counted as a multiset. Both empty → 1; one empty → 0.
   */
  public static double wordF1(String completion, String expected) {
    List<String> got = words(firstLine(completion));
    List<String> want = words(firstLine(expected));
    if (got.isEmpty() || want.isEmpty()) {
      return got.isEmpty() && want.isEmpty() ? 1 : 0;
    }
    Map<String, Integer> counts = new HashMap<>();
    for (String w : want) {
      counts.merge(w, 1, Integer::sum);
    }
    int common = 0;
    for (String w : got) {
      Integer c = counts.get(w);
      if (c != null && c > 0) {
        common++;
        counts.put(w, c - 1);
      }
    }
    if (common == 0) {
      return 0;
    }
    double precision = (double) common / got.size();
    double recall = (double) common / want.size();
    return 2 * precision * recall / (precision + recall);
  }

  static List<String> words(String text) {
    List<String> out = new ArrayList<>();
    for (String w : text.split("\\s+")) {
      String n = normalize(w);
      if (!n.isEmpty()) {
        out.add(n);
      }
    }
    return out;
  }

  private static String normalize(String w) {
    return w.toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{N}]", "");
  }
}
