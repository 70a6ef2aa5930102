package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.GenerationConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.checkpoint.SafetensorsFile;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
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
    data = TrainCommand.data(corpus, tokenizerJson, tokenizer, true);
  }

  @AfterAll
  static void tearDown() {
    tokenizer.close();
  }

  static TrainConfig tiny(int steps, int evalEvery, double instructMix) {
    return tiny(steps, evalEvery, instructMix, null, 0);
  }

  static TrainConfig tiny(
      int steps, int evalEvery, double instructMix, Path teacher, double distill) {
    return new TrainConfig(
        "tiny",
        32,
        1,
        2,
        2,
        64,
        32,
        384,
        8,
        steps,
        1e-2,
        0.1,
        5,
        0.01,
        1.0,
        7,
        evalEvery,
        16,
        1000,
        null,
        instructMix,
        teacher,
        distill,
        0,
        0,
        TrainConfig.LLAMA,
        0,
        0);
  }

  private static PrintStream quiet() {
    return new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
  }

  @Test
  void reducesLossOnTinyCorpusWithFlatMemoryAndWritesTheModel() throws Exception {
    Path out = dir.resolve("out");
    Trainer t =
        new Trainer(
            tiny(60, 30, 0), data, out, dir.resolve("work"), quiet(), "./draftmesh train x");
    Trainer.Result r = t.run();

    double first = r.trainCurve().get(0).value();
    assertThat(first).isCloseTo(Math.log(384), within(0.5)); // uniform at initialization
    assertThat(r.trainLoss()).isLessThan(0.6 * first);
    assertThat(r.validCurve()).hasSize(2);
    assertThat(r.validCurve().get(1).value()).isLessThan(r.validCurve().get(0).value());
    assertThat(r.validBitsPerByte()).isLessThan(0.6 * Trainer.bitsPerByte(first, 3.0));
    // Only weights, their gradients and the optimizer's moments survive a step.
    assertThat(t.liveArrays()).isPositive().isEqualTo(t.firstLiveArrays());

    for (String f :
        List.of(
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "tokenizer.json",
            "loss-curve.png",
            "README.md",
            "training.json")) {
      assertThat(out.resolve(f)).isRegularFile();
    }
    assertThat(Files.readString(out.resolve("README.md")))
        .contains("bits/byte", "./draftmesh train x", "tokens seen", "loss-curve.png");
    try (Checkpoint ckpt = Checkpoint.load(out)) {
      assertThat(ckpt.info("model.embed_tokens.weight").dtype()).isEqualTo("F16");
      assertThat(ckpt.config().vocabSize()).isEqualTo(384);
      assertThat(ckpt.generation().eosTokenIds()).containsExactly(ZooTokenizer.END_OF_TEXT_ID);
    }
  }

  @Test
  void savedCheckpointReloadsThroughTheServingLoaderWithIdenticalLogits() throws Exception {
    TrainConfig c = tiny(10, 100, 0);
    Path init = dir.resolve("reload-init");
    RandomCheckpoint.write(init, Trainer.modelConfig(c), 3, DType.F32, 0);
    long[] tokens = new long[2 * 32];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = data.valid().tokens()[i];
    }
    try (NDManager base = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(init);
        LlamaModel model = LlamaModel.load(ckpt, base, 32)) {
      // A few real updates, so the weights differ from anything on disk.
      for (NDArray p : model.parameters()) {
        p.setRequiresGradient(true);
      }
      try (AdamW opt = new AdamW(model.parameters(), base, 0.9, 0.95, 1e-8, 0.1);
          NDManager batches = base.newSubManager()) {
        Batches b = new Batches(data.train().tokens(), 4, 32, 0, null, tokenizer);
        SplitMix64 rng = new SplitMix64(1);
        for (int s = 0; s < 3; s++) {
          Trainer.trainStep(model, null, 0, batches, b.next(rng));
          opt.step(1e-2, 1.0);
        }
      }
      float[] before = logits(model, base, tokens);
      Path saved = dir.resolve("reload-saved");
      GenerationConfig gen = GenerationConfig.defaults(model.config());
      Trainer.save(model, saved, DType.F32, gen, tokenizerJson, Map.of());
      try (NDManager other = NDManager.newBaseManager();
          Checkpoint reloaded = Checkpoint.load(saved);
          LlamaModel served = LlamaModel.load(reloaded, other, 32)) {
        assertThat(logits(served, other, tokens)).containsExactly(before);
      }
      Path half = dir.resolve("reload-f16");
      Trainer.save(model, half, DType.F16, gen, tokenizerJson, Map.of());
      try (NDManager other = NDManager.newBaseManager();
          Checkpoint reloaded = Checkpoint.load(half);
          LlamaModel served = LlamaModel.load(reloaded, other, 32)) {
        float[] after = logits(served, other, tokens);
        for (int i = 0; i < after.length; i++) {
          assertThat(after[i]).isCloseTo(before[i], within(0.02f));
        }
      }
    }
  }

  private static float[] logits(LlamaModel model, NDManager manager, long[] tokens) {
    try (NDManager m = manager.newSubManager();
        GradMode noGrad = GradMode.disabled()) {
      noGrad.suppressNotUsedWarning();
      NDArray x = m.create(tokens, new Shape(2, 32));
      return model.forwardFull(x).toFloatArray();
    }
  }

  @Test
  void resumedRunEqualsUninterruptedRun() throws Exception {
    TrainConfig c = tiny(16, 100, 0.5);
    Path straight = dir.resolve("resume-a");
    new Trainer(c, data, null, straight, quiet(), "x").run();

    Path interrupted = dir.resolve("resume-b");
    AtomicInteger steps = new AtomicInteger();
    new Trainer(c, data, null, interrupted, quiet(), "x")
        .stopWhen(() -> steps.incrementAndGet() == 7)
        .run();
    assertThat(Files.readString(interrupted.resolve("state/state.json"))).contains("\"step\": 7");
    new Trainer(c, data, null, interrupted, quiet(), "x").resume(true).run();

    try (SafetensorsFile a = SafetensorsFile.open(straight.resolve("state/state.safetensors"));
        SafetensorsFile b = SafetensorsFile.open(interrupted.resolve("state/state.safetensors"))) {
      assertThat(b.names()).isEqualTo(a.names());
      for (String name : a.names()) {
        float[] x = floats(a, name);
        float[] y = floats(b, name);
        for (int i = 0; i < x.length; i++) {
          assertThat(y[i]).as(name + "[" + i + "]").isCloseTo(x[i], within(1e-5f));
        }
      }
    }
    assertThatThrownBy(
            () ->
                new Trainer(tiny(16, 100, 0.4), data, null, interrupted, quiet(), "x")
                    .resume(true)
                    .run())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("another config");
    // A re-planned step count is accepted (the schedule follows it from the saved step on), but
    // not one the state is already past.
    assertThatThrownBy(
            () ->
                new Trainer(tiny(10, 100, 0.5), data, null, interrupted, quiet(), "x")
                    .resume(true)
                    .run())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("is at step 16 (expected: <= --steps 10)");
    new Trainer(tiny(18, 100, 0.5), data, null, interrupted, quiet(), "x").resume(true).run();
    assertThat(Files.readString(interrupted.resolve("state/state.json"))).contains("\"step\": 18");
  }

  private static float[] floats(SafetensorsFile f, String name) throws Exception {
    FloatBuffer fb = f.readFloat32(name).duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[] out = new float[fb.remaining()];
    fb.get(out);
    return out;
  }

  @Test
  void distillationPullsTheStudentTowardsTheTeacher() throws Exception {
    // A teacher that disagrees with the text: random weights with a sharpened output (final norm
    // ×30), so its next-token distributions are peaked and unrelated to the corpus.
    TrainConfig c = tiny(30, 100, 0);
    Path teacherDir = dir.resolve("distill-teacher");
    Path random = dir.resolve("distill-random");
    RandomCheckpoint.write(random, Trainer.modelConfig(c), 11, DType.F32, 0);
    try (NDManager m = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(random);
        LlamaModel teacher = LlamaModel.load(ckpt, m, 32)) {
      NDArray finalNorm = teacher.parameters().get(1); // embed, final norm, layers... (tied)
      assertThat(finalNorm.getShape()).isEqualTo(new Shape(32));
      finalNorm.muli(30f);
      GenerationConfig gen = GenerationConfig.defaults(teacher.config());
      Trainer.save(teacher, teacherDir, DType.F32, gen, tokenizerJson, Map.of());
    }

    Path plainOut = dir.resolve("distill-plain");
    Trainer.Result plain =
        new Trainer(c, data, plainOut, dir.resolve("distill-pw"), quiet(), "x").run();
    Path distilledOut = dir.resolve("distill-student");
    Trainer t =
        new Trainer(
            tiny(30, 100, 0, teacherDir, 1.0),
            data,
            distilledOut,
            dir.resolve("distill-sw"),
            quiet(),
            "x");
    Trainer.Result r = t.run();

    // The same seed, batches and steps: only the targets differ. The student that learned from
    // the teacher ends far closer to it on held-out text than the one that learned the text.
    double klPlain = klFromTeacher(teacherDir, plainOut);
    double klDistilled = klFromTeacher(teacherDir, distilledOut);
    double klUntrained = klFromTeacher(teacherDir, dir.resolve("distill-sw/init"));
    assertThat(klDistilled).isLessThan(0.5 * klPlain).isLessThan(0.5 * klUntrained);
    // The teacher's weights are frozen: nothing of it survives a step.
    assertThat(t.liveArrays()).isEqualTo(t.firstLiveArrays());
    // The reported train loss stays the text's next-token NLL: a run that ignores the text does
    // not lower it the way the plain run does.
    assertThat(r.trainLoss()).isGreaterThan(plain.trainLoss() + 0.5);
    assertThat(Files.readString(distilledOut.resolve("README.md"))).contains("distilled from");
  }

  /** Mean KL(teacher ‖ student) per token over held-out windows, in nats. */
  private static double klFromTeacher(Path teacherDir, Path studentDir) throws Exception {
    long[] tokens = new long[2 * 32];
    for (int i = 0; i < tokens.length; i++) {
      tokens[i] = data.valid().tokens()[i];
    }
    try (NDManager m = NDManager.newBaseManager();
        Checkpoint tc = Checkpoint.load(teacherDir);
        Checkpoint sc = Checkpoint.load(studentDir);
        LlamaModel teacher = LlamaModel.load(tc, m, 32);
        LlamaModel student = LlamaModel.load(sc, m, 32);
        GradMode noGrad = GradMode.disabled()) {
      noGrad.suppressNotUsedWarning();
      NDArray x = m.create(tokens, new Shape(2, 32));
      NDArray logP = teacher.forwardFull(x).logSoftmax(2);
      NDArray logQ = student.forwardFull(x).logSoftmax(2);
      return logP.exp().mul(logP.sub(logQ)).sum(new int[] {2}).mean().getFloat();
    }
  }

  @Test
  void instructionBatchesTrainOnRepliesOnly() {
    Batches b = new Batches(data.train().tokens(), 4, 32, 1.0, data.units(), tokenizer);
    Batches.Batch batch = b.next(new SplitMix64(3));
    int trained = 0;
    for (int i = 0; i < batch.weights().length; i++) {
      if (batch.weights()[i] > 0) {
        trained++;
        // A reply token is never a user/assistant marker and never predicts one.
        assertThat(batch.targets()[i])
            .isNotIn((long) ZooTokenizer.USER_ID, (long) ZooTokenizer.ASSISTANT_ID);
      }
      if (batch.targets()[i] == ZooTokenizer.END_ID) {
        assertThat(batch.weights()[i]).isEqualTo(1f);
      }
      if (batch.targets()[i] == ZooTokenizer.ASSISTANT_ID) {
        assertThat(batch.weights()[i]).isEqualTo(0f);
      }
    }
    assertThat(trained).isBetween(1, batch.weights().length - 1);
  }
}
