package io.draftmesh.zoo;

import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Scores one model on the task suites through the serving runtime (paged KV, chunked prefill),
 * greedy: the long-context grid (single needle by prompt length × depth), the other long-context
 * tasks at one length, and the closed-book knowledge tasks. Prompts are plain text, so base and
 * aligned models alike are asked the same way.
 */
final class TaskEval {
  /** Tokens generated at most per long-context answer (a verse is the longest). */
  static final int LONG_ANSWER_TOKENS = 64;

  /** Tokens generated at most per knowledge answer. */
  static final int KNOWLEDGE_ANSWER_TOKENS = 48;

  /**
   * The single-needle grid: accuracy per (prompt length, depth) and per length.
   *
   * @param cells exact-match rate by length, then by depth percent
   * @param byLength mean over depths per length
   */
  record Grid(
      Map<Integer, Map<Integer, Double>> cells, Map<Integer, Double> byLength, int perCell) {}

  /**
   * One model's scores.
   *
   * @param grid single needle (exact match), null when the model's context is too short
   * @param longTasks other long-context tasks at {@code longLength} tokens: exact match for
   *     multikey, recall for multivalue and vartrack, word F1 for verse
   * @param knowledge word F1 per knowledge task, and their mean under "mean"
   * @param prefillMillis one prefill of a {@code longLength}-token prompt (the first of the set)
   */
  record Scores(
      String name,
      Grid grid,
      int longLength,
      Map<String, Double> longTasks,
      Map<String, Double> knowledge,
      double prefillMillis,
      List<String> samples) {}

  private final LongTasks heldOut;
  private final List<Corpus.Doc> train;
  private final int perCell;
  private final int perTask;
  private final int knowledgePerTask;
  private final int longLength;

  /**
   * @param heldOut long-task generator over the validation split
   * @param train the train split (the knowledge tasks ask for memorized text)
   */
  TaskEval(
      LongTasks heldOut,
      List<Corpus.Doc> train,
      int perCell,
      int perTask,
      int knowledgePerTask,
      int longLength) {
    this.heldOut = heldOut;
    this.train = train;
    this.perCell = perCell;
    this.perTask = perTask;
    this.knowledgePerTask = knowledgePerTask;
    this.longLength = longLength;
  }

  Scores score(String name, InferenceEngine engine, boolean longContext) {
    List<String> samples = new ArrayList<>();
    Grid grid = null;
    Map<String, Double> longTasks = new LinkedHashMap<>();
    double prefillMillis = Double.NaN;
    if (longContext) {
      grid = grid(engine, samples);
      for (String task : List.of("multikey", "multivalue", "vartrack", "verse")) {
        double sum = 0;
        List<LongTasks.Instance> set = heldOut.evalSet(task, longLength, perTask);
        for (LongTasks.Instance inst : set) {
          String got = complete(engine, inst.prompt(), LONG_ANSWER_TOKENS);
          sum += longScore(inst, got);
          sample(samples, task, inst.answer(), got);
        }
        longTasks.put(task, sum / set.size());
      }
      prefillMillis = prefillMillis(engine, heldOut.evalSet("passkey", longLength, 1).get(0));
    }
    Map<String, Double> knowledge = new LinkedHashMap<>();
    double mean = 0;
    for (String task : KnowledgeTasks.TASKS) {
      double sum = 0;
      List<KnowledgeTasks.Example> set = KnowledgeTasks.evalSet(task, train, knowledgePerTask);
      for (KnowledgeTasks.Example e : set) {
        String got = complete(engine, e.prompt(), KNOWLEDGE_ANSWER_TOKENS);
        sum += Scoring.wordF1(got, e.answer());
        sample(samples, task, e.answer(), got);
      }
      knowledge.put(task, sum / set.size());
      mean += sum / set.size() / KnowledgeTasks.TASKS.size();
    }
    knowledge.put("mean", mean);
    return new Scores(name, grid, longLength, longTasks, knowledge, prefillMillis, samples);
  }

  private Grid grid(InferenceEngine engine, List<String> samples) {
    Map<Integer, Map<Integer, Double>> cells = new LinkedHashMap<>();
    Map<Integer, Double> byLength = new LinkedHashMap<>();
    List<LongTasks.Instance> all = heldOut.evalGrid(perCell);
    int i = 0;
    for (int len : LongTasks.GRID_LENGTHS) {
      Map<Integer, Double> row = new LinkedHashMap<>();
      double lengthSum = 0;
      for (int depth : LongTasks.GRID_DEPTHS) {
        double sum = 0;
        for (int k = 0; k < perCell; k++) {
          LongTasks.Instance inst = all.get(i++);
          String got = complete(engine, inst.prompt(), LONG_ANSWER_TOKENS / 4);
          sum += Scoring.exactMatch(got, inst.answer());
          sample(samples, "needle " + len + "@" + depth + "%", inst.answer(), got);
        }
        row.put(depth, sum / perCell);
        lengthSum += sum / perCell;
      }
      cells.put(len, row);
      byLength.put(len, lengthSum / LongTasks.GRID_DEPTHS.size());
    }
    return new Grid(cells, byLength, perCell);
  }

  static double longScore(LongTasks.Instance inst, String got) {
    switch (inst.task()) {
      case "multivalue":
      case "vartrack":
        return Scoring.recall(got, inst.values());
      case "verse":
        return Scoring.wordF1(got, inst.answer());
      default:
        return Scoring.exactMatch(got, inst.answer());
    }
  }

  private static void sample(List<String> samples, String task, String want, String got) {
    // One sample per task (the grid's cells count as one task, "needle").
    String kind = task.split(" ")[0];
    if (samples.stream().noneMatch(s -> s.split("[ :]")[0].equals(kind))) {
      samples.add(task + ": want [" + want.strip() + "] got [" + Scoring.firstLine(got) + "]");
    }
  }

  /**
   * Greedy completion of a plain-text prompt (which starts with the end-of-text token) until a
   * newline, an end-of-text or {@code maxTokens} tokens.
   */
  static String complete(InferenceEngine engine, String prompt, int maxTokens) {
    int[] ids = engine.tokenizer().encode(prompt);
    int room = engine.model().maxContext() - ids.length;
    int budget = Math.min(maxTokens, room);
    if (budget < 1) {
      throw new IllegalArgumentException(
          "prompt of "
              + ids.length
              + " tokens leaves no room to answer (expected: < "
              + engine.model().maxContext()
              + ")");
    }
    List<Integer> out = new ArrayList<>();
    Sequence s = engine.open(ids, SamplingParams.GREEDY, "eval-task");
    try {
      outer:
      while (out.size() < budget) {
        int k = Math.min(8, budget - out.size());
        for (int id : s.propose(k, 0f, ResultOptions.NONE).join().tokens()) {
          if (id == ZooTokenizer.END_OF_TEXT_ID || engine.tokenizer().isSpecial(id)) {
            break outer;
          }
          out.add(id);
          if (engine.tokenizer().decode(new int[] {id}).contains("\n")) {
            break outer;
          }
        }
      }
    } finally {
      s.closeAsync().join();
    }
    return engine.tokenizer().decode(out.stream().mapToInt(Integer::intValue).toArray());
  }

  private static double prefillMillis(InferenceEngine engine, LongTasks.Instance inst) {
    int[] ids = engine.tokenizer().encode(inst.prompt());
    Sequence s = engine.open(ids, SamplingParams.GREEDY, "eval-prefill");
    try {
      long t0 = System.nanoTime();
      s.prefill(ResultOptions.NONE).join();
      return (System.nanoTime() - t0) / 1e6;
    } finally {
      s.closeAsync().join();
    }
  }
}
