package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The aligned model's instruction template, the instruction data built from the corpus, and the
 * automatic compliance metric.
 *
 * <p>Template (special tokens in angle brackets):
 *
 * <pre>
 * &lt;|endoftext|&gt;&lt;|user|&gt;{instruction}&lt;|assistant|&gt;Answer: {answer}&lt;|end|&gt;
 * </pre>
 *
 * A reply <em>complies</em> when it starts with exactly {@code "Answer: "} followed by a non-space
 * character, contains no special token before {@code <|end|>}, and ends with {@code <|end|>} within
 * the token budget. Raw-text models never see the chat tokens in training, so they do not produce
 * {@code <|end|>} and rarely open with {@code Answer:}.
 *
 * <p>Tasks, all derived from a single verse or one-paragraph fortune: {@code continue} (first words
 * given, answer with the next words), {@code repeat}, {@code first-word} and {@code last-word} (the
 * answer is checkable exactly).
 */
public final class Instructions {
  public static final String ANSWER_PREFIX = "Answer: ";
  static final int CONTINUE_WORDS = 16;
  static final List<String> TASKS = List.of("continue", "repeat", "first-word", "last-word");
  private static final Pattern WORDS = Pattern.compile("\\s+");

  /**
   * One instruction example.
   *
   * @param task one of {@link #TASKS}
   * @param instruction the user turn
   * @param answer the reply after {@link #ANSWER_PREFIX}
   */
  public record Example(String task, String instruction, String answer) {
    /** The prompt a model is given: everything up to and including {@code <|assistant|>}. */
    public String prompt() {
      return ZooTokenizer.USER + instruction + ZooTokenizer.ASSISTANT;
    }

    /** The whole templated example without the leading end-of-text token. */
    public String text() {
      return prompt() + ANSWER_PREFIX + answer + ZooTokenizer.END;
    }

    /** Whether the answer can be checked exactly (every task but {@code continue}). */
    public boolean exact() {
      return !task.equals("continue");
    }
  }

  /** A tokenized example: ids and which of them the loss is taken on. */
  record Encoded(int[] ids, boolean[] trained) {}

  private Instructions() {}

  /** The units ({@link Corpus#units}) of {@code docs} with at least 4 words, wraps joined. */
  static List<String> units(List<Corpus.Doc> docs) {
    List<String> out = new ArrayList<>();
    for (Corpus.Doc d : docs) {
      for (String u : Corpus.units(d)) {
        String line = u.replace('\n', ' ').strip();
        if (WORDS.split(line).length >= 4) {
          out.add(line);
        }
      }
    }
    return out;
  }

  /** A random example from {@code unit} with a task drawn from {@code rng}. */
  static Example example(String unit, SplitMix64 rng) {
    String[] words = WORDS.split(unit.strip());
    String task = TASKS.get(rng.nextInt(TASKS.size()));
    switch (task) {
      case "continue":
        {
          int given = 2 + rng.nextInt(Math.max(1, Math.min(10, words.length - 2)));
          given = Math.min(given, words.length - 1);
          int end = Math.min(words.length, given + CONTINUE_WORDS);
          return new Example(
              task, "Continue the text: " + join(words, 0, given), join(words, given, end));
        }
      case "repeat":
        {
          int[] span = span(words, rng);
          return new Example(
              task, "Repeat: " + join(words, span[0], span[1]), join(words, span[0], span[1]));
        }
      case "first-word":
        {
          int[] span = span(words, rng);
          return new Example(
              task, "What is the first word of: " + join(words, span[0], span[1]), words[span[0]]);
        }
      default:
        {
          int[] span = span(words, rng);
          return new Example(
              task,
              "What is the last word of: " + join(words, span[0], span[1]),
              words[span[1] - 1]);
        }
    }
  }

  /** A random span of 3..10 words. */
  private static int[] span(String[] words, SplitMix64 rng) {
    int len = Math.min(words.length, 3 + rng.nextInt(8));
    int start = rng.nextInt(words.length - len + 1);
    return new int[] {start, start + len};
  }

  /**
   * The held-out evaluation examples: one per corpus prompt, task by index (continue, repeat,
   * first-word, last-word, ...), all built from the prompt's first {@link Corpus#PROMPT_WORDS}
   * words and its reference.
   */
  public static List<Example> evalSet(List<Corpus.Prompt> prompts) {
    List<Example> out = new ArrayList<>();
    for (int i = 0; i < prompts.size(); i++) {
      Corpus.Prompt p = prompts.get(i);
      String[] promptWords = WORDS.split(p.prompt().strip());
      String[] rest = WORDS.split(p.reference().strip());
      String task = TASKS.get(i % TASKS.size());
      String phrase = String.join(" ", promptWords);
      switch (task) {
        case "continue":
          out.add(
              new Example(
                  task,
                  "Continue the text: " + phrase,
                  join(rest, 0, Math.min(rest.length, CONTINUE_WORDS))));
          break;
        case "repeat":
          out.add(new Example(task, "Repeat: " + phrase, phrase));
          break;
        case "first-word":
          out.add(new Example(task, "What is the first word of: " + phrase, promptWords[0]));
          break;
        default:
          out.add(
              new Example(
                  task,
                  "What is the last word of: " + phrase,
                  promptWords[promptWords.length - 1]));
      }
    }
    return out;
  }

  /** {@code <|endoftext|>} + the example, with the loss on the answer and {@code <|end|>}. */
  static Encoded encode(Example e, TextTokenizer tokenizer) {
    int[] prompt = tokenizer.encode(e.prompt());
    int[] reply = tokenizer.encode(ANSWER_PREFIX + e.answer());
    int n = 1 + prompt.length + reply.length + 1;
    int[] ids = new int[n];
    boolean[] trained = new boolean[n];
    ids[0] = ZooTokenizer.END_OF_TEXT_ID;
    System.arraycopy(prompt, 0, ids, 1, prompt.length);
    System.arraycopy(reply, 0, ids, 1 + prompt.length, reply.length);
    ids[n - 1] = ZooTokenizer.END_ID;
    for (int i = 1 + prompt.length; i < n; i++) {
      trained[i] = true;
    }
    return new Encoded(ids, trained);
  }

  /** Prompt ids for generation: {@code <|endoftext|>} + the user turn + {@code <|assistant|>}. */
  public static int[] promptIds(Example e, TextTokenizer tokenizer) {
    int[] prompt = tokenizer.encode(e.prompt());
    int[] ids = new int[prompt.length + 1];
    ids[0] = ZooTokenizer.END_OF_TEXT_ID;
    System.arraycopy(prompt, 0, ids, 1, prompt.length);
    return ids;
  }

  /** The verdict on one generated reply. */
  public record Verdict(boolean complies, boolean correct, String reply) {}

  /**
   * Judges generated reply ids (the tokens after the prompt, possibly stopped at an eos). Compliant
   * iff the reply is {@code "Answer: " + non-space text + <|end|>} with no other special token;
   * correct iff compliant and, for exact tasks, the answer text equals the expected answer (for
   * {@code continue}: the first answer word matches).
   */
  public static Verdict judge(Example e, int[] reply, TextTokenizer tokenizer) {
    int end = -1;
    boolean otherSpecial = false;
    for (int i = 0; i < reply.length; i++) {
      if (reply[i] == ZooTokenizer.END_ID) {
        end = i;
        break;
      }
      if (tokenizer.isSpecial(reply[i])) {
        otherSpecial = true;
        break;
      }
    }
    String text = tokenizer.decode(end < 0 ? reply : Arrays.copyOf(reply, end));
    boolean complies =
        end >= 0
            && !otherSpecial
            && text.startsWith(ANSWER_PREFIX)
            && text.length() > ANSWER_PREFIX.length()
            && !Character.isWhitespace(text.charAt(ANSWER_PREFIX.length()));
    boolean correct = false;
    if (complies) {
      String answer = text.substring(ANSWER_PREFIX.length()).strip();
      if (e.exact()) {
        correct = answer.equals(e.answer());
      } else {
        String[] got = WORDS.split(answer);
        String[] want = WORDS.split(e.answer().strip());
        correct = got.length > 0 && want.length > 0 && got[0].equals(want[0]);
      }
    }
    return new Verdict(complies, correct, tokenizer.decode(reply));
  }

  private static String join(String[] words, int from, int to) {
    return String.join(" ", Arrays.asList(words).subList(from, to));
  }
}
