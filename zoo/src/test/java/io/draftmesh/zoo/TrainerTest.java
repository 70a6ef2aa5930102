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
        instructMix);
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
          Trainer.trainStep(model, batches, b.next(rng));
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
    new Trainer(c, data, null, interrupted, quiet(), "x").stopAfter(7).run();
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
                new Trainer(tiny(17, 100, 0.5), data, null, interrupted, quiet(), "x")
                    .resume(true)
                    .run())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("another config");
  }

  private static float[] floats(SafetensorsFile f, String name) throws Exception {
    FloatBuffer fb = f.readFloat32(name).duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[] out = new float[fb.remaining()];
    fb.get(out);
    return out;
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
