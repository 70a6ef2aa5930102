package io.draftmesh.zoo;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Short closed-book tasks on which a larger model is better because it has memorized more of its
 * training text: the tasks entropy switching and nudging are judged on.
 *
 * <ul>
 *   <li>{@code recall}: a verse reference ({@code "Genesis 1:3"}) → the verse;
 *   <li>{@code verse-continue}: the first half of a verse → the rest;
 *   <li>{@code fortune-continue}: the first half of a one-paragraph fortune → the rest.
 * </ul>
 *
 * All three ask for text the models were trained on, so their sets are drawn from the
 * <em>train</em> split on purpose (a held-out verse cannot be recalled by anyone); they are fixed
 * by {@link #EVAL_SEED}. Plain text, no template: a prompt is {@code <|endoftext|>} + the cue, the
 * answer the rest of the line, scored by word F1 ({@link Scoring#wordF1}). Training teaches the
 * reference format with {@link #referencedVerses} rows: the chapter text the model reads anyway,
 * each verse prefixed by its reference.
 */
public final class KnowledgeTasks {
  public static final List<String> TASKS = List.of("recall", "verse-continue", "fortune-continue");

  /** Seed of the fixed evaluation sets. */
  public static final long EVAL_SEED = 0x5EED_C0DE_0003L;

  private static final Pattern WORDS = Pattern.compile("\\s+");

  /**
   * One example.
   *
   * @param task one of {@link #TASKS}
   * @param prompt the cue, starting with {@code <|endoftext|>}
   * @param answer the expected continuation (with its leading space), one line
   */
  public record Example(String task, String prompt, String answer) {}

  /** A verse and its reference, {@code "Genesis 1:3"}. */
  public record Verse(String reference, String text) {}

  private KnowledgeTasks() {}

  /** Every verse of the KJV chapters in {@code docs}, with its reference. */
  public static List<Verse> verses(List<Corpus.Doc> docs) {
    List<Verse> out = new ArrayList<>();
    for (Corpus.Doc d : docs) {
      if (!d.source().equals(Corpus.KJV)) {
        continue;
      }
      String[] lines = d.text().split("\n");
      for (int v = 0; v < lines.length; v++) {
        out.add(new Verse(d.id() + ":" + (v + 1), lines[v].strip()));
      }
    }
    return out;
  }

  /** The one-line form a referenced verse takes in training rows and recall prompts. */
  public static String referenced(Verse v) {
    return v.reference() + " " + v.text();
  }

  /**
   * {@code n} examples of {@code task} from the train split (see the class comment), drawn with
   * {@link #EVAL_SEED}.
   */
  public static List<Example> evalSet(String task, List<Corpus.Doc> train, int n) {
    SplitMix64 rng = new SplitMix64(EVAL_SEED ^ TASKS.indexOf(task));
    List<Example> out = new ArrayList<>();
    if (task.equals("fortune-continue")) {
      List<String> fortunes = new ArrayList<>();
      for (Corpus.Doc d : train) {
        if (d.source().equals(Corpus.FORTUNES)) {
          for (String u : Corpus.units(d)) {
            String line = u.replace('\n', ' ').strip();
            if (WORDS.split(line).length >= 8) {
              fortunes.add(line);
            }
          }
        }
      }
      while (out.size() < n) {
        out.add(halves(task, fortunes.get(rng.nextInt(fortunes.size()))));
      }
      return out;
    }
    List<Verse> verses = verses(train);
    if (verses.isEmpty()) {
      throw new IllegalArgumentException(task + ": no KJV verse in the train split");
    }
    while (out.size() < n) {
      Verse v = verses.get(rng.nextInt(verses.size()));
      switch (task) {
        case "recall":
          out.add(new Example(task, ZooTokenizer.END_OF_TEXT + v.reference(), " " + v.text()));
          break;
        case "verse-continue":
          if (WORDS.split(v.text()).length >= 8) {
            out.add(halves(task, v.text()));
          }
          break;
        default:
          throw new IllegalArgumentException(
              "task " + task + " (expected: one of " + String.join(", ", TASKS) + ")");
      }
    }
    return out;
  }

  /** Cue = the first half of the words, answer = the rest. */
  private static Example halves(String task, String line) {
    String[] w = WORDS.split(line);
    int half = w.length / 2;
    return new Example(
        task,
        ZooTokenizer.END_OF_TEXT + String.join(" ", List.of(w).subList(0, half)),
        " " + String.join(" ", List.of(w).subList(half, w.length)));
  }
}
