package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainCommandTest {
  @TempDir Path dir;

  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) throws Exception {
    PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    return TrainCommand.run(args, out, new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  @Test
  void presetsAreValidConfigs() throws Exception {
    TrainConfig target =
        TrainCommand.Options.parse(new String[] {"--preset", "target-short"}).trainConfig();
    TrainConfig draft =
        TrainCommand.Options.parse(new String[] {"--preset", "draft-short"}).trainConfig();
    long targetParams = Trainer.modelConfig(target).numParameters();
    long draftParams = Trainer.modelConfig(draft).numParameters();
    // The zoo issue asks for a draft with 10-20x fewer parameters than the target.
    assertThat(targetParams / (double) draftParams).isBetween(10.0, 20.0);
    // The draft learns from the committed target's distributions.
    assertThat(draft.teacher()).isEqualTo(Path.of("models", "target"));
    assertThat(draft.distill()).isEqualTo(1.0);
    assertThat(target.teacher()).isNull();
    assertThat(target.context()).isEqualTo(256);
    assertThat(target.vocab()).isEqualTo(ZooTokenizer.DEFAULT_VOCAB_SIZE);
  }

  @Test
  void secondStagePresetsContinueAtTwoThousandTokensWithTasks() throws Exception {
    TrainConfig shortTarget =
        TrainCommand.Options.parse(new String[] {"--preset", "target-short"}).trainConfig();
    Path init = dir.resolve("target");
    Files.createDirectories(init);
    Files.writeString(init.resolve("config.json"), Trainer.modelConfig(shortTarget).toJson());
    for (String preset : List.of("target", "draft")) {
      TrainConfig c =
          TrainCommand.Options.parse(new String[] {"--preset", preset, "--init", init.toString()})
              .trainConfig();
      assertThat(c.context()).isEqualTo(2048);
      assertThat(c.longMix()).isPositive();
      assertThat(c.refMix()).isPositive();
      assertThat(c.instructMix()).isZero();
      assertThat(c.arch()).isEqualTo(TrainConfig.LLAMA);
    }
    TrainConfig aligned =
        TrainCommand.Options.parse(
                new String[] {"--preset", "target-aligned", "--init", init.toString()})
            .trainConfig();
    assertThat(aligned.hidden()).isEqualTo(shortTarget.hidden());
    assertThat(aligned.instructMix()).isEqualTo(0.7);
    TrainConfig x =
        TrainCommand.Options.parse(new String[] {"--preset", "aligned-x"}).trainConfig();
    assertThat(x.arch()).isEqualTo(TrainConfig.QWEN2);
    assertThat(x.vocab()).isNotEqualTo(ZooTokenizer.DEFAULT_VOCAB_SIZE);
    assertThat(Trainer.modelConfig(x).attentionBias()).isTrue();
    assertThat(x.flags()).containsEntry("arch", "qwen2");
  }

  @Test
  void flagsOverridePresets() throws Exception {
    TrainConfig c =
        TrainCommand.Options.parse(
                new String[] {"--preset", "draft-short", "--steps", "7", "--lr", "0.01"})
            .trainConfig();
    assertThat(c.steps()).isEqualTo(7);
    assertThat(c.lr()).isEqualTo(0.01);
    assertThat(c.name()).isEqualTo("draft");
  }

  @Test
  void fineTuningTakesTheShapeOfTheInitialModel() throws Exception {
    TrainConfig draft =
        TrainCommand.Options.parse(new String[] {"--preset", "draft-short"}).trainConfig();
    Path init = dir.resolve("draft");
    Files.createDirectories(init);
    Files.writeString(init.resolve("config.json"), Trainer.modelConfig(draft).toJson());
    TrainConfig aligned =
        TrainCommand.Options.parse(new String[] {"--preset", "aligned", "--init", init.toString()})
            .trainConfig();
    assertThat(aligned.hidden()).isEqualTo(draft.hidden());
    assertThat(aligned.layers()).isEqualTo(draft.layers());
    assertThat(aligned.intermediate()).isEqualTo(draft.intermediate());
    assertThat(aligned.instructMix()).isPositive();
    assertThat(aligned.init()).isEqualTo(init);
  }

  @Test
  void badArgumentsExitWithUsage() throws Exception {
    assertThat(run("--preset", "target", "--bogus", "1")).isEqualTo(2);
    assertThat(err.toString()).contains("unknown flag --bogus", "usage:");
    err.reset();
    assertThat(run("--preset", "target-short", "--steps", "0")).isEqualTo(2);
    assertThat(err.toString()).contains("--steps 0 (expected: > 0)");
    err.reset();
    assertThat(run("--preset", "huge")).isEqualTo(2);
    assertThat(err.toString()).contains("--preset huge");
    err.reset();
    assertThat(run("--preset", "tiny", "--distill", "0.5")).isEqualTo(2);
    assertThat(err.toString()).contains("--distill 0.5 without --teacher");
    err.reset();
    assertThat(run("--preset", "draft-short", "--distill", "1.5")).isEqualTo(2);
    assertThat(err.toString()).contains("--distill 1.5 (expected: [0, 1])");
    err.reset();
    assertThat(run("--preset", "aligned", "--init", dir.resolve("missing").toString()))
        .isEqualTo(2);
    assertThat(err.toString()).contains("no config.json");
  }

  @Test
  void learningRateWarmsUpThenDecaysToTheFloor() {
    TrainConfig c = TrainerTest.tiny(100, 10, 0);
    assertThat(c.lrAt(0)).isCloseTo(c.lr() / 5, org.assertj.core.data.Offset.offset(1e-12));
    assertThat(c.lrAt(4)).isEqualTo(c.lr());
    assertThat(c.lrAt(52)).isBetween(c.lr() * 0.4, c.lr() * 0.7);
    assertThat(c.lrAt(99))
        .isCloseTo(c.lr() * c.minLrRatio(), org.assertj.core.data.Offset.offset(c.lr() * 0.01));
    for (int s = 5; s < 99; s++) {
      assertThat(c.lrAt(s + 1)).isLessThanOrEqualTo(c.lrAt(s));
    }
  }
}
