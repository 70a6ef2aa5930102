package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.util.List;

/**
 * Training rows for the long-context and knowledge tasks, drawn from the train split only.
 *
 * <p>A long-task row holds one {@link LongTasks} instance of a random length (256 tokens up to the
 * row) starting at position 0, as in evaluation, followed by a plain-text window to fill the row.
 * With a maximum instance length shorter than the row ({@code --task-tokens}), instances of 256 up
 * to that many tokens are packed one after another (each opens with its end-of-text token, as an
 * evaluation prompt does) while another fits, and text fills the rest: a 2,048-token row then
 * trains several answers instead of one. Attention is not masked between them, so an instance also
 * sees the earlier ones' keys — distractors the question must not pick. The loss weighs the answer
 * {@link #ANSWER_WEIGHT} times and the haystack {@link #CONTEXT_WEIGHT} times a text token: the
 * answer is a handful of tokens in up to 2k, and without the boost its gradient would vanish in the
 * haystack's, whose text the plain rows teach anyway.
 *
 * <p>A referenced-verse row is random train verses, one per line as {@code "Genesis 1:3 text"}, the
 * form {@code recall} prompts take ({@link KnowledgeTasks}); every token counts.
 */
final class TaskRows {
  static final float CONTEXT_WEIGHT = 0.25f;
  static final float ANSWER_WEIGHT = 8f;
  static final int MIN_TASK_TOKENS = 256;

  /** Long tasks and their shares of long-task rows. */
  static final List<String> MIX =
      List.of("passkey", "word", "multikey", "multivalue", "vartrack", "verse");

  static final double[] SHARES = {0.25, 0.15, 0.20, 0.15, 0.15, 0.10};

  private final LongTasks tasks;
  private final List<KnowledgeTasks.Verse> verses;
  private final int[] stream;
  private final TextTokenizer tokenizer;
  private final int len;
  private final int maxTask;

  /**
   * @param tasks long-task generator over the train split's filler
   * @param verses the train split's verses
   * @param stream the train token stream (fills the rest of a long-task row)
   * @param len row length
   * @param maxTask most tokens of one instance (prompt and answer); {@code len}: one per row
   */
  TaskRows(
      LongTasks tasks,
      List<KnowledgeTasks.Verse> verses,
      int[] stream,
      TextTokenizer tokenizer,
      int len,
      int maxTask) {
    if (len < MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM) {
      throw new IllegalArgumentException(
          "row length "
              + len
              + " (--seq, else --context) is too short for long-context tasks (expected: >= "
              + (MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM)
              + ")");
    }
    if (maxTask < MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM || maxTask > len) {
      throw new IllegalArgumentException(
          "--task-tokens "
              + maxTask
              + " (expected: "
              + (MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM)
              + ".."
              + len
              + ", the row length)");
    }
    if (verses.isEmpty()) {
      throw new IllegalArgumentException("no verses for referenced-verse rows");
    }
    this.tasks = tasks;
    this.verses = verses;
    this.stream = stream;
    this.tokenizer = tokenizer;
    this.len = len;
    this.maxTask = maxTask;
  }

  /** Fills row {@code offset / len} with long-task instances and text after them. */
  void longTask(SplitMix64 rng, long[] inputs, long[] targets, float[] weights, int offset) {
    int[] ids = new int[len + 1];
    float[] w = new float[len + 1];
    int n = 0;
    boolean packed = maxTask < len;
    do {
      double u = rng.nextDouble();
      int k = 0;
      for (double acc = SHARES[0]; k < SHARES.length - 1 && u >= acc; acc += SHARES[++k]) {}
      // One per row: up to the whole row (+1: the row's last target); packed: up to maxTask.
      int maxPrompt = (packed ? Math.min(maxTask, len + 1 - n) : len + 1) - LongTasks.ANSWER_ROOM;
      int promptTokens = MIN_TASK_TOKENS + rng.nextInt(maxPrompt - MIN_TASK_TOKENS + 1);
      LongTasks.Instance inst = tasks.generate(MIX.get(k), promptTokens, Double.NaN, rng);
      n = append(tokenizer.encode(inst.prompt()), CONTEXT_WEIGHT, ids, w, n);
      n = append(tokenizer.encode(inst.answer() + "\n"), ANSWER_WEIGHT, ids, w, n);
    } while (packed && len + 1 - n >= MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM);
    int start = rng.nextInt(stream.length - len - 1);
    for (int i = 0; n <= len; i++) {
      w[n] = 1f;
      ids[n++] = stream[start + i];
    }
    fill(ids, w, inputs, targets, weights, offset);
  }

  /** Appends {@code tokens} of weight {@code weight} at {@code n} as far as the row goes. */
  private int append(int[] tokens, float weight, int[] ids, float[] w, int n) {
    for (int t : tokens) {
      if (n <= len) {
        w[n] = weight;
        ids[n++] = t;
      }
    }
    return n;
  }

  /** Fills a row with referenced verses. */
  void referencedVerses(
      SplitMix64 rng, long[] inputs, long[] targets, float[] weights, int offset) {
    int[] ids = new int[len + 1];
    float[] w = new float[len + 1];
    java.util.Arrays.fill(w, 1f);
    ids[0] = ZooTokenizer.END_OF_TEXT_ID;
    int n = 1;
    while (n <= len) {
      KnowledgeTasks.Verse v = verses.get(rng.nextInt(verses.size()));
      int[] line = tokenizer.encode(KnowledgeTasks.referenced(v) + "\n");
      int m = Math.min(line.length, len + 1 - n);
      System.arraycopy(line, 0, ids, n, m);
      n += m;
    }
    fill(ids, w, inputs, targets, weights, offset);
  }

  /** Row = ids[0..len) → ids[1..len], the weight of each target. */
  private void fill(
      int[] ids, float[] w, long[] inputs, long[] targets, float[] weights, int offset) {
    for (int t = 0; t < len; t++) {
      inputs[offset + t] = ids[t];
      targets[offset + t] = ids[t + 1];
      weights[offset + t] = w[t + 1];
    }
  }
}
