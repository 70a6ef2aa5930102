package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * RULER-style synthetic long-context tasks (Hsieh et al. 2024) built from corpus filler, in plain
 * text, so that raw-text models can be trained and judged on them without a chat template.
 *
 * <p>Every instance is a haystack of consecutive corpus units (verses, fortunes), one per line,
 * with the task's statements inserted as lines of their own, then a question whose answer the model
 * completes ({@code "...\nAnswer: The pass key is"} → {@code " 48213"}). The completion form is the
 * one RULER uses for base models: no instruction following is needed, only finding the fact.
 *
 * <ul>
 *   <li>{@code passkey}: a 5–7 digit number stated once at a depth of 0–100 %;
 *   <li>{@code word}: the same with a rare (made-up) word;
 *   <li>{@code multikey}: four keys with one number each; one is asked for;
 *   <li>{@code multivalue}: one key with three numbers; all are asked for, in order;
 *   <li>{@code vartrack}: a chain of assignments {@code VAR A = 48213.}, {@code VAR B = VAR A.},
 *       ... and a distractor chain; every name bound to the value is asked for, in order;
 *   <li>{@code verse}: a whole KJV chapter with verse numbers; the text of one verse is asked for.
 * </ul>
 *
 * Instances are a pure function of the filler, the requested length and depth, and the generator
 * state: training draws them from the train split with the batch generator's stream, evaluation
 * from the validation split with {@link #EVAL_SEED}, so train and held-out instances share neither
 * filler nor seeds. Keys are redrawn until they do not occur in the haystack, so the answer is
 * stated exactly once (three times, once per value, for {@code multivalue}).
 */
public final class LongTasks {
  public static final List<String> TASKS =
      List.of("passkey", "word", "multikey", "multivalue", "vartrack", "verse");

  /** Seed of the held-out sets; training instances come from the training run's own stream. */
  public static final long EVAL_SEED = 0x5EED_0E7A_1001L;

  /** Tokens kept free after a prompt for the answer, so prompt + answer fit the context. */
  public static final int ANSWER_ROOM = 24;

  static final int MULTI_KEYS = 4;
  static final int MULTI_VALUES = 3;
  static final int CHAIN_HOPS = 4;
  private static final String[] ONSETS = {
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gl", "kr",
    "pl", "st", "tr", "zh"
  };
  private static final String[] VOWELS = {"a", "e", "i", "o", "u", "ae", "ou"};
  private static final String[] CODAS = {"", "", "n", "r", "l", "x", "th"};

  /**
   * One instance.
   *
   * @param task one of {@link #TASKS}
   * @param prompt everything the model is given, ending right before the answer
   * @param answer the expected completion (with its leading space), e.g. {@code " 48213"}
   * @param values the facts that must appear in the completion (one unless multi-valued)
   * @param depthPercent where the (first) statement sits in the haystack, 0–100
   * @param fillerIds the corpus documents the haystack was taken from
   */
  public record Instance(
      String task,
      String prompt,
      String answer,
      List<String> values,
      int depthPercent,
      Set<String> fillerIds) {}

  /** A statement line and the value(s) it carries. */
  private record Haystack(List<String> lines, List<String> ids) {}

  private final List<Corpus.Doc> docs;
  private final List<String> units; // one haystack line each
  private final int[] unitDoc; // index into docs per unit
  private final int[] unitTokens; // tokens of unit + "\n"
  private final List<Integer> chapters; // indices of KJV docs
  private final TextTokenizer tokenizer;

  /** Filler from {@code docs} (one split of the corpus), measured in {@code tokenizer}'s tokens. */
  public LongTasks(List<Corpus.Doc> docs, TextTokenizer tokenizer) {
    this.docs = docs;
    this.tokenizer = tokenizer;
    List<String> u = new ArrayList<>();
    List<Integer> d = new ArrayList<>();
    chapters = new ArrayList<>();
    for (int i = 0; i < docs.size(); i++) {
      Corpus.Doc doc = docs.get(i);
      if (doc.source().equals(Corpus.KJV)) {
        chapters.add(i);
      }
      for (String line : doc.text().split("\n")) {
        if (!line.isBlank()) {
          u.add(line.strip());
          d.add(i);
        }
      }
    }
    if (u.isEmpty()) {
      throw new IllegalArgumentException("no filler text (expected: at least one document)");
    }
    units = u;
    unitDoc = d.stream().mapToInt(Integer::intValue).toArray();
    unitTokens = new int[units.size()];
    for (int i = 0; i < units.size(); i++) {
      unitTokens[i] = tokenizer.encode(units.get(i) + "\n").length;
    }
  }

  /**
   * One instance of {@code task} whose prompt (with the leading end-of-text token) has at most
   * {@code promptTokens} tokens and close to that many.
   *
   * @param depth where the statement goes, in [0, 1]; NaN: drawn from {@code rng}
   */
  public Instance generate(String task, int promptTokens, double depth, SplitMix64 rng) {
    if (Double.isNaN(depth)) {
      depth = rng.nextDouble();
    }
    switch (task) {
      case "passkey":
        {
          String key = number(rng);
          return single(
              task,
              "The pass key is " + key + ".",
              "What is the pass key?",
              "The pass key is",
              key,
              promptTokens,
              depth,
              rng);
        }
      case "word":
        {
          String key = word(rng, 3);
          return single(
              task,
              "The special word is " + key + ".",
              "What is the special word?",
              "The special word is",
              key,
              promptTokens,
              depth,
              rng);
        }
      case "multikey":
        return multiKey(promptTokens, depth, rng);
      case "multivalue":
        return multiValue(promptTokens, depth, rng);
      case "vartrack":
        return varTrack(promptTokens, depth, rng);
      case "verse":
        return verse(promptTokens, rng);
      default:
        throw new IllegalArgumentException(
            "task " + task + " (expected: one of " + String.join(", ", TASKS) + ")");
    }
  }

  private Instance single(
      String task,
      String statement,
      String question,
      String lead,
      String key,
      int promptTokens,
      double depth,
      SplitMix64 rng) {
    String tail = "\nQuestion: " + question + "\nAnswer: " + lead;
    for (int attempt = 0; ; attempt++) {
      Haystack h = haystack(promptTokens, List.of(statement), tail, rng);
      if (attempt < 8 && containsKey(h, key)) {
        continue; // a haystack that happens to contain the key: draw another one
      }
      int at = insertAt(h.lines().size(), depth);
      h.lines().add(at, statement);
      return build(task, h, tail, " " + key, List.of(key), depth);
    }
  }

  private Instance multiKey(int promptTokens, double depth, SplitMix64 rng) {
    List<String> names = distinctWords(rng, MULTI_KEYS);
    List<String> keys = new ArrayList<>();
    List<String> statements = new ArrayList<>();
    for (String name : names) {
      String key = number(rng);
      keys.add(key);
      statements.add("The pass key for " + name + " is " + key + ".");
    }
    int asked = rng.nextInt(MULTI_KEYS);
    String lead = "The pass key for " + names.get(asked) + " is";
    String tail = "\nQuestion: What is the pass key for " + names.get(asked) + "?\nAnswer: " + lead;
    Haystack h = haystack(promptTokens, statements, tail, rng);
    // The asked statement goes at the requested depth; the others at independent random depths.
    List<double[]> placed = new ArrayList<>();
    for (int i = 0; i < MULTI_KEYS; i++) {
      placed.add(new double[] {i == asked ? depth : rng.nextDouble(), i});
    }
    insertSorted(h, statements, placed);
    String key = keys.get(asked);
    return build("multikey", h, tail, " " + key, List.of(key), depth);
  }

  private Instance multiValue(int promptTokens, double depth, SplitMix64 rng) {
    String name = word(rng, 3);
    List<String> values = new ArrayList<>();
    List<String> statements = new ArrayList<>();
    List<double[]> placed = new ArrayList<>();
    for (int i = 0; i < MULTI_VALUES; i++) {
      String v = number(rng);
      values.add(v);
      statements.add("One of the pass keys for " + name + " is " + v + ".");
      placed.add(new double[] {i == 0 ? depth : rng.nextDouble(), i});
    }
    placed.sort((a, b) -> Double.compare(a[0], b[0]));
    // Values are asked in the order they appear, so renumber them by depth.
    List<String> ordered = new ArrayList<>();
    List<String> orderedStatements = new ArrayList<>();
    for (int i = 0; i < MULTI_VALUES; i++) {
      int k = (int) placed.get(i)[1];
      ordered.add(values.get(k));
      orderedStatements.add(statements.get(k));
      placed.get(i)[1] = i;
    }
    String lead = "The pass keys for " + name + " are";
    String tail = "\nQuestion: What are all the pass keys for " + name + "?\nAnswer: " + lead;
    Haystack h = haystack(promptTokens, orderedStatements, tail, rng);
    insertSorted(h, orderedStatements, placed);
    return build(
        "multivalue", h, tail, " " + String.join(", ", ordered), ordered, placed.get(0)[0]);
  }

  private Instance varTrack(int promptTokens, double depth, SplitMix64 rng) {
    String value = number(rng);
    String other = number(rng);
    List<String> names = distinctNames(rng, 2 * CHAIN_HOPS);
    List<String> chain = names.subList(0, CHAIN_HOPS);
    List<String> decoy = names.subList(CHAIN_HOPS, 2 * CHAIN_HOPS);
    List<String> statements = new ArrayList<>();
    List<double[]> placed = new ArrayList<>();
    // Chain i's statements are spread over (depth .. 1] in order; the decoy chain anywhere.
    double[] chainDepths = sortedDepths(rng, CHAIN_HOPS, depth);
    double[] decoyDepths = sortedDepths(rng, CHAIN_HOPS, rng.nextDouble());
    for (int i = 0; i < CHAIN_HOPS; i++) {
      statements.add(assignment(chain, i, value));
      placed.add(new double[] {chainDepths[i], statements.size() - 1});
      statements.add(assignment(decoy, i, other));
      placed.add(new double[] {decoyDepths[i], statements.size() - 1});
    }
    String lead = "The variables assigned the value " + value + " are";
    String tail =
        "\nQuestion: Which variables are assigned the value " + value + "?\nAnswer: " + lead;
    Haystack h = haystack(promptTokens, statements, tail, rng);
    insertSorted(h, statements, placed);
    return build("vartrack", h, tail, " " + String.join(" ", chain), List.copyOf(chain), depth);
  }

  private static String assignment(List<String> names, int i, String value) {
    return "VAR " + names.get(i) + " = " + (i == 0 ? value : "VAR " + names.get(i - 1)) + ".";
  }

  private Instance verse(int promptTokens, SplitMix64 rng) {
    if (chapters.isEmpty()) {
      throw new IllegalStateException("verse task: the filler has no KJV chapter");
    }
    for (int attempt = 0; ; attempt++) {
      int docIndex = chapters.get(rng.nextInt(chapters.size()));
      Corpus.Doc doc = docs.get(docIndex);
      String[] verses = doc.text().split("\n");
      // As many leading verses as fit; the question names one of them whose text is unique.
      String[] tailFor = new String[1];
      List<String> lines = new ArrayList<>();
      int budget = promptTokens - 1;
      int shown = 0;
      String tailMax =
          "\nQuestion: What does verse "
              + verses.length
              + " say?\nAnswer: Verse "
              + verses.length
              + " says:";
      budget -= tokenizer.encode(tailMax).length;
      for (int v = 0; v < verses.length; v++) {
        String line = (v + 1) + " " + verses[v];
        int n = tokenizer.encode(line + "\n").length;
        if (n > budget) {
          break;
        }
        budget -= n;
        lines.add(line);
        shown++;
      }
      if (shown < 2 && attempt < 16) {
        continue;
      }
      if (shown == 0) {
        throw new IllegalArgumentException(
            "verse task: prompt of " + promptTokens + " tokens holds no verse (expected: more)");
      }
      int asked = rng.nextInt(shown);
      String text = verses[asked];
      int occurrences = 0;
      for (int v = 0; v < shown; v++) {
        if (verses[v].contains(text)) {
          occurrences++;
        }
      }
      if (occurrences > 1 && attempt < 16) {
        continue;
      }
      tailFor[0] =
          "\nQuestion: What does verse "
              + (asked + 1)
              + " say?\nAnswer: Verse "
              + (asked + 1)
              + " says:";
      String prompt = ZooTokenizer.END_OF_TEXT + String.join("\n", lines) + "\n" + tailFor[0];
      return new Instance(
          "verse",
          prompt,
          " " + text,
          List.of(text),
          (int) Math.round(100.0 * asked / Math.max(1, shown - 1)),
          Set.of(doc.id()));
    }
  }

  /**
   * Consecutive filler lines from a random start, as many as fit in {@code promptTokens} after the
   * end-of-text token, the statements and the question tail.
   */
  private Haystack haystack(
      int promptTokens, List<String> statements, String tail, SplitMix64 rng) {
    int budget = promptTokens - 1 - tokenizer.encode(tail).length - 1;
    for (String s : statements) {
      budget -= tokenizer.encode(s + "\n").length;
    }
    if (budget < 0) {
      throw new IllegalArgumentException(
          "prompt of " + promptTokens + " tokens is too short for the task (expected: more)");
    }
    List<String> lines = new ArrayList<>();
    List<String> ids = new ArrayList<>();
    int i = rng.nextInt(units.size());
    int guard = 0;
    while (guard++ < units.size() && unitTokens[i] <= budget) {
      budget -= unitTokens[i];
      lines.add(units.get(i));
      ids.add(docs.get(unitDoc[i]).id());
      i = (i + 1) % units.size();
    }
    return new Haystack(lines, ids);
  }

  private static boolean containsKey(Haystack h, String key) {
    for (String line : h.lines()) {
      if (line.contains(key)) {
        return true;
      }
    }
    return false;
  }

  /** Inserts statements at their depths (ties and order kept: sorted by depth, then index). */
  private static void insertSorted(Haystack h, List<String> statements, List<double[]> placed) {
    List<double[]> order = new ArrayList<>(placed);
    order.sort((a, b) -> a[0] != b[0] ? Double.compare(a[0], b[0]) : Double.compare(a[1], b[1]));
    int n = h.lines().size();
    // Insert from the deepest so earlier insertions do not shift later positions.
    for (int k = order.size() - 1; k >= 0; k--) {
      h.lines().add(insertAt(n, order.get(k)[0]), statements.get((int) order.get(k)[1]));
    }
  }

  private static int insertAt(int lines, double depth) {
    return (int) Math.round(Math.max(0, Math.min(1, depth)) * lines);
  }

  private Instance build(
      String task, Haystack h, String tail, String answer, List<String> values, double depth) {
    String prompt = ZooTokenizer.END_OF_TEXT + String.join("\n", h.lines()) + "\n" + tail;
    return new Instance(
        task, prompt, answer, values, (int) Math.round(100 * depth), new LinkedHashSet<>(h.ids()));
  }

  private static double[] sortedDepths(SplitMix64 rng, int n, double first) {
    double[] d = new double[n];
    d[0] = first;
    for (int i = 1; i < n; i++) {
      d[i] = first + (1 - first) * rng.nextDouble();
    }
    java.util.Arrays.sort(d, 1, n);
    return d;
  }

  /** A 5–7 digit number without a leading zero. */
  static String number(SplitMix64 rng) {
    int digits = 5 + rng.nextInt(3);
    StringBuilder sb = new StringBuilder().append((char) ('1' + rng.nextInt(9)));
    for (int i = 1; i < digits; i++) {
      sb.append((char) ('0' + rng.nextInt(10)));
    }
    return sb.toString();
  }

  /** A pronounceable made-up word of {@code syllables} syllables (not an English word). */
  static String word(SplitMix64 rng, int syllables) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < syllables; i++) {
      sb.append(ONSETS[rng.nextInt(ONSETS.length)]).append(VOWELS[rng.nextInt(VOWELS.length)]);
    }
    return sb.append(CODAS[rng.nextInt(CODAS.length)]).toString();
  }

  private static List<String> distinctWords(SplitMix64 rng, int n) {
    Set<String> out = new LinkedHashSet<>();
    while (out.size() < n) {
      out.add(word(rng, 2));
    }
    return new ArrayList<>(out);
  }

  /** Distinct five-letter upper-case variable names. */
  private static List<String> distinctNames(SplitMix64 rng, int n) {
    Set<String> out = new LinkedHashSet<>();
    while (out.size() < n) {
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < 5; i++) {
        sb.append((char) ('A' + rng.nextInt(26)));
      }
      out.add(sb.toString());
    }
    return new ArrayList<>(out);
  }

  /** Prompt lengths of the held-out grid, in tokens (the prompt leaves {@link #ANSWER_ROOM}). */
  public static final List<Integer> GRID_LENGTHS = List.of(512, 1024, 2048);

  /** Needle depths of the held-out grid, in percent. */
  public static final List<Integer> GRID_DEPTHS = List.of(0, 25, 50, 75, 100);

  /**
   * The held-out single-needle grid: for every length × depth, {@code perCell} instances,
   * alternating pass keys and rare words. Fixed by {@link #EVAL_SEED} and the validation filler.
   */
  public List<Instance> evalGrid(int perCell) {
    SplitMix64 rng = new SplitMix64(EVAL_SEED);
    List<Instance> out = new ArrayList<>();
    for (int len : GRID_LENGTHS) {
      for (int depth : GRID_DEPTHS) {
        for (int i = 0; i < perCell; i++) {
          out.add(generate(i % 2 == 0 ? "passkey" : "word", len - ANSWER_ROOM, depth / 100.0, rng));
        }
      }
    }
    return out;
  }

  /** {@code n} held-out instances of {@code task} at prompt length {@code len}, depths drawn. */
  public List<Instance> evalSet(String task, int len, int n) {
    SplitMix64 rng = new SplitMix64(EVAL_SEED ^ (31L * TASKS.indexOf(task) + len));
    List<Instance> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(generate(task, len - ANSWER_ROOM, Double.NaN, rng));
    }
    return out;
  }

  /** The distinct document ids of a set of instances (for disjointness checks). */
  static Set<String> fillerIds(List<Instance> instances) {
    Set<String> ids = new HashSet<>();
    for (Instance i : instances) {
      ids.addAll(i.fillerIds());
    }
    return ids;
  }
}
