package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Task rows in training, context extension of a continued model, and the Qwen2 family. */
class LongContextTrainingTest {
  @TempDir static Path dir;
  static Corpus corpus;
  static Path tokenizerJson;
  static TextTokenizer tokenizer;
  static Trainer.Data data;

  @BeforeAll
  static void setUp() throws Exception {
    Runtimes.configureDjl(0);
    corpus = TinyCorpus.write(dir.resolve("corpus"), 150);
    tokenizerJson = ZooTokenizer.ensure(corpus, 384);
    tokenizer = TextTokenizer.load(tokenizerJson);
    data = TrainCommand.data(corpus, tokenizerJson, tokenizer, true, true);
  }

  @AfterAll
  static void tearDown() {
    tokenizer.close();
  }

  static TrainConfig config(
      String name, int context, Path init, double longMix, double refMix, String arch) {
    return new TrainConfig(
        name, 32, 1, 2, 2, 64, context, 384, 2, 2, 1e-2, 0.1, 0, 0.0, 1.0, 7, 2, 2, 1000, init, 0,
        null, 0, longMix, refMix, arch, 0, 0);
  }

  /**
   * A 640-token config half on long tasks, with rows of {@code seq} and task instances up to it.
   */
  static TrainConfig rowsConfig(int seq, int taskTokens) {
    return new TrainConfig(
        "l",
        32,
        1,
        2,
        2,
        64,
        640,
        384,
        2,
        2,
        1e-2,
        0.1,
        0,
        0.0,
        1.0,
        7,
        2,
        2,
        1000,
        null,
        0,
        null,
        0,
        0.5,
        0,
        TrainConfig.LLAMA,
        seq,
        taskTokens);
  }

  private static PrintStream quiet() {
    return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
  }

  private static TaskRows rows(int len) {
    return rows(len, len);
  }

  private static TaskRows rows(int len, int maxTask) {
    return new TaskRows(
        new LongTasks(corpus.train(), tokenizer),
        KnowledgeTasks.verses(corpus.train()),
        data.train().tokens(),
        tokenizer,
        len,
        maxTask);
  }

  @Test
  void packedRowsCarrySeveralInstancesEachWithItsAnswer() {
    int len = 2000;
    int maxTask = 600;
    Batches b =
        new Batches(data.train().tokens(), 3, len, 0, null, tokenizer)
            .tasks(rows(len, maxTask), 1.0, 0);
    Batches.Batch batch = b.next(new SplitMix64(5));
    assertThat(b.next(new SplitMix64(5))).usingRecursiveComparison().isEqualTo(batch);
    for (int r = 0; r < batch.rows(); r++) {
      int o = r * len;
      // Instances start at end-of-text tokens of the haystack's weight; answers follow each.
      java.util.List<Integer> starts = new java.util.ArrayList<>(java.util.List.of(0));
      java.util.List<int[]> answers = new java.util.ArrayList<>(); // [first, last] targets
      for (int t = 0; t < len; t++) {
        float w = batch.weights()[o + t];
        if (batch.targets()[o + t] == ZooTokenizer.END_OF_TEXT_ID && w == TaskRows.CONTEXT_WEIGHT) {
          starts.add(t + 1);
        }
        if (w == TaskRows.ANSWER_WEIGHT) {
          if (answers.isEmpty() || answers.get(answers.size() - 1)[1] != t - 1) {
            answers.add(new int[] {t, t});
          } else {
            answers.get(answers.size() - 1)[1] = t;
          }
        }
      }
      assertThat(batch.inputs()[o]).isEqualTo(ZooTokenizer.END_OF_TEXT_ID);
      // 2000 tokens hold at least three instances of at most 600 (each at least 256 + answer).
      assertThat(answers).as("row " + r).hasSizeGreaterThanOrEqualTo(3);
      assertThat(starts).hasSameSizeAs(answers);
      for (int i = 0; i < answers.size(); i++) {
        int[] a = answers.get(i);
        int[] ids = new int[a[1] - a[0] + 1];
        for (int t = a[0]; t <= a[1]; t++) {
          ids[t - a[0]] = (int) batch.targets()[o + t];
        }
        assertThat(tokenizer.decode(ids)).startsWith(" ").endsWith("\n");
        // An instance (prompt from its end-of-text, answer) stays within maxTask tokens.
        assertThat(a[1] + 1 - starts.get(i)).isLessThanOrEqualTo(maxTask);
        assertThat(a[0]).isGreaterThan(starts.get(i));
      }
      // What no instance fits in any more is plain text of weight 1.
      int end = answers.get(answers.size() - 1)[1];
      assertThat(len - 1 - end).isLessThan(TaskRows.MIN_TASK_TOKENS + LongTasks.ANSWER_ROOM);
      for (int t = end + 1; t < len; t++) {
        assertThat(batch.weights()[o + t]).isEqualTo(1f);
      }
    }
  }

  @Test
  void rowsShorterThanTheContextKeepTheContextInTheConfig() {
    TrainConfig c = rowsConfig(320, 300);
    assertThat(c.rowLength()).isEqualTo(320);
    assertThat(c.maxTaskTokens()).isEqualTo(300);
    assertThat(c.tokensPerStep()).isEqualTo(2 * 320);
    assertThat(c.flags()).containsEntry("seq", "320").containsEntry("task-tokens", "300");
    TrainConfig whole = config("w", 640, null, 0.5, 0, TrainConfig.LLAMA);
    assertThat(whole.rowLength()).isEqualTo(640);
    assertThat(whole.maxTaskTokens()).isEqualTo(640);
    assertThat(whole.flags()).doesNotContainKeys("seq", "task-tokens");
    assertThatThrownBy(() -> rowsConfig(700, 0))
        .hasMessageContaining("--seq 700 (expected: 0 for the context, or 8..640)");
    assertThatThrownBy(() -> rowsConfig(320, 400))
        .hasMessageContaining("--task-tokens 400 (expected: 0 for the row, or at most");
    assertThatThrownBy(() -> rows(400, 200)).hasMessageContaining("--task-tokens 200");
  }

  @Test
  void longTaskRowsStartWithTheInstanceAndWeighItsAnswer() {
    int len = 400;
    Batches b =
        new Batches(data.train().tokens(), 6, len, 0, null, tokenizer).tasks(rows(len), 1.0, 0);
    Batches.Batch batch = b.next(new SplitMix64(3));
    assertThat(b.next(new SplitMix64(3))).usingRecursiveComparison().isEqualTo(batch);
    for (int r = 0; r < batch.rows(); r++) {
      int o = r * len;
      assertThat(batch.inputs()[o]).isEqualTo(ZooTokenizer.END_OF_TEXT_ID);
      // The targets weighed as answer are one contiguous run right after "...is"/"says:".
      int first = -1;
      int last = -1;
      for (int t = 0; t < len; t++) {
        if (batch.weights()[o + t] == TaskRows.ANSWER_WEIGHT) {
          first = first < 0 ? t : first;
          last = t;
        }
      }
      assertThat(first).as("row " + r).isPositive();
      int[] answer = new int[last - first + 1];
      for (int t = first; t <= last; t++) {
        answer[t - first] = (int) batch.targets()[o + t];
      }
      String text = tokenizer.decode(answer);
      assertThat(text).startsWith(" ").endsWith("\n");
      int[] before = new int[first + 1];
      for (int t = 0; t <= first; t++) {
        before[t] = (int) batch.inputs()[o + t];
      }
      assertThat(tokenizer.decode(before)).contains("\nAnswer: ");
      for (int t = 0; t < first; t++) {
        assertThat(batch.weights()[o + t]).isEqualTo(TaskRows.CONTEXT_WEIGHT);
      }
      for (int t = last + 1; t < len; t++) {
        assertThat(batch.weights()[o + t]).isEqualTo(1f); // the text that fills the row
      }
    }
  }

  @Test
  void referencedVerseRowsAreReferenceThenVerse() {
    int len = 300;
    Batches b =
        new Batches(data.train().tokens(), 2, len, 0, null, tokenizer).tasks(rows(len), 0, 1.0);
    Batches.Batch batch = b.next(new SplitMix64(4));
    int[] row = Arrays.stream(Arrays.copyOf(batch.inputs(), len)).mapToInt(x -> (int) x).toArray();
    String[] lines = tokenizer.decode(row, true).split("\n");
    assertThat(lines.length).isGreaterThan(3);
    for (int i = 0; i < lines.length - 1; i++) { // the last line is cut by the row's end
      assertThat(lines[i]).matches("Tiny \\d+:\\d+ .+");
    }
    assertThat(batch.weights()).containsOnly(1f);
  }

  @Test
  void mixesThatDoNotAddUpAreRejected() {
    assertThatThrownBy(() -> config("x", 320, null, 0.8, 0.3, TrainConfig.LLAMA))
        .hasMessageContaining("--long-mix 0.8 --ref-mix 0.3 (expected: each >= 0, sum <= 1)");
    assertThatThrownBy(() -> config("x", 320, null, 0.1, 0, "gpt2"))
        .hasMessageContaining("--arch gpt2 (expected: llama or qwen2)");
    assertThatThrownBy(() -> rows(100)).hasMessageContaining("too short for long-context tasks");
  }

  @Test
  void continuedRunExtendsTheContextFromTheSameWeights() throws Exception {
    Path shortModel = dir.resolve("short");
    new Trainer(
            config("s", 64, null, 0, 0, TrainConfig.LLAMA),
            data,
            shortModel,
            dir.resolve("w1"),
            quiet(),
            "x")
        .run();
    Path longModel = dir.resolve("long");
    Path work = dir.resolve("w2");
    TrainConfig c = config("l", 320, shortModel, 0.5, 0.2, TrainConfig.LLAMA);
    assertThat(c.flags()).containsEntry("long-mix", "0.5").containsEntry("ref-mix", "0.2");
    Trainer.Result r = new Trainer(c, data, longModel, work, quiet(), "x").run();
    assertThat(r.validBitsPerByte()).isBetween(0.05, 10.0);
    // The starting point is the short model's weights under a longer max_position_embeddings.
    assertThat(Files.readAllBytes(work.resolve("init-context/model.safetensors")))
        .isEqualTo(Files.readAllBytes(shortModel.resolve("model.safetensors")));
    try (Checkpoint ckpt = Checkpoint.load(work.resolve("init-context"))) {
      assertThat(ckpt.config().maxPositionEmbeddings()).isEqualTo(320);
    }
    try (Checkpoint ckpt = Checkpoint.load(longModel)) {
      assertThat(ckpt.config().maxPositionEmbeddings()).isEqualTo(320);
    }
    assertThat(Files.readString(longModel.resolve("README.md"))).contains("continued from");
  }

  @Test
  void qwen2FamilyTrainsWithQkvBiases() throws Exception {
    Path out = dir.resolve("qwen");
    new Trainer(
            config("q", 64, null, 0, 0, TrainConfig.QWEN2),
            data,
            out,
            dir.resolve("w3"),
            quiet(),
            "x")
        .run();
    try (Checkpoint ckpt = Checkpoint.load(out)) {
      ModelConfig mc = ckpt.config();
      assertThat(mc.architecture()).isEqualTo(ModelConfig.QWEN2);
      assertThat(mc.attentionBias()).isTrue();
      assertThat(ckpt.tensorNames()).contains("model.layers.0.self_attn.q_proj.bias");
    }
    assertThat(Files.readString(out.resolve("README.md"))).contains("Qwen2-architecture");
  }
}
