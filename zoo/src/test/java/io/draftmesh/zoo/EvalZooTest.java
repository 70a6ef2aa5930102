package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalZooTest {
  @TempDir Path dir;

  @Test
  void identicalDraftAndTargetAcceptEverythingAndTheTableIsPrinted() throws Exception {
    Runtimes.configureDjl(0);
    Corpus corpus = TinyCorpus.write(dir.resolve("corpus"), 150);
    Path tokenizerJson = ZooTokenizer.ensure(corpus, 384);
    Path models = dir.resolve("models");
    try (TextTokenizer tokenizer = TextTokenizer.load(tokenizerJson)) {
      Trainer.Data data = TrainCommand.data(corpus, tokenizerJson, tokenizer, false);
      TrainConfig c =
          new TrainConfig(
              "target",
              32,
              1,
              2,
              2,
              64,
              64,
              384,
              8,
              30,
              1e-2,
              0.1,
              3,
              0.0,
              1.0,
              5,
              30,
              8,
              1000,
              null,
              0,
              null,
              0,
              0,
              0,
              TrainConfig.LLAMA,
              0,
              0);
      PrintStream quiet =
          new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
      new Trainer(c, data, models.resolve("target"), dir.resolve("work"), quiet, "x").run();
    }
    copy(models.resolve("target"), models.resolve("draft"));

    ByteArrayOutputStream out = new ByteArrayOutputStream();
    EvalZoo.Report r =
        new EvalZoo(
                new EvalZoo.Options(models, corpus.dir(), 4, 12, 8, 6, 1, 2),
                new PrintStream(out, true, StandardCharsets.UTF_8))
            .run();

    assertThat(r.models()).extracting(EvalZoo.ModelStats::name).containsExactly("target", "draft");
    assertThat(r.models().get(0).bitsPerByte())
        .isEqualTo(r.models().get(1).bitsPerByte())
        .isBetween(0.05, 4.0);
    // The same weights on both sides: every draft token is what the target would choose.
    assertThat(r.speculation().greedyAlpha()).isEqualTo(1.0);
    assertThat(r.speculation().greedyMeanAccepted()).isEqualTo(4.0);
    assertThat(r.speculation().sampledAlpha()).isEqualTo(1.0);
    assertThat(r.speculation().proposed()).isPositive();
    assertThat(r.compliance()).hasSize(1);
    assertThat(r.compliance().get(0).complianceRate()).isBetween(0.0, 0.3);
    assertThat(out.toString(StandardCharsets.UTF_8))
        .contains("bits/byte", "greedy", "sampling T=1", "compliance", "ms/decode step");
  }

  private static void copy(Path from, Path to) throws Exception {
    Files.createDirectories(to);
    try (Stream<Path> files = Files.list(from)) {
      for (Path f : files.toList()) {
        Files.copy(f, to.resolve(f.getFileName()));
      }
    }
  }
}
