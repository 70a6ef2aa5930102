package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The committed models (repo {@code models/}) load through the serving runtime and generate. */
class ZooModelsTest {
  static final Path MODELS = Paths.get("..", "models");

  @BeforeAll
  static void djl() {
    Runtimes.configureDjl(0);
  }

  @ParameterizedTest
  @ValueSource(strings = {"target", "draft", "aligned"})
  void loadsAndGenerates(String name) throws Exception {
    Path dir = MODELS.resolve(name);
    assumeTrue(Files.isDirectory(dir), dir + " is not committed yet");
    try (Checkpoint ckpt = Checkpoint.load(dir)) {
      assertThat(ckpt.config().vocabSize()).isEqualTo(ZooTokenizer.DEFAULT_VOCAB_SIZE);
      assertThat(ckpt.config().bosTokenId()).isEqualTo(ZooTokenizer.END_OF_TEXT_ID);
    }
    assertThat(dir.resolve("README.md")).isRegularFile();
    try (InferenceEngine engine =
        InferenceEngine.load(EngineConfig.defaults(dir).withMaxContext(256))) {
      int[] text = engine.tokenizer().encode("And God said unto Moses,");
      int[] prompt = new int[text.length + 1];
      System.arraycopy(text, 0, prompt, 1, text.length);
      Sequence s = engine.open(prompt, SamplingParams.GREEDY, "zoo-test");
      int[] out;
      try {
        out = s.propose(24, 0f, ResultOptions.NONE).join().tokens();
      } finally {
        s.closeAsync().join();
      }
      assertThat(out).hasSize(24);
      String generated = engine.tokenizer().decode(out);
      // A trained model continues in English: mostly letters and spaces, several distinct tokens.
      long letters = generated.chars().filter(c -> Character.isLetter(c) || c == ' ').count();
      assertThat(letters).as(generated).isGreaterThan(generated.length() / 2);
      Set<Integer> distinct = new HashSet<>();
      for (int id : out) {
        distinct.add(id);
      }
      assertThat(distinct.size()).as(generated).isGreaterThan(4);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"target", "draft", "aligned"})
  void sharesOneTokenizer(String name) throws Exception {
    Path dir = MODELS.resolve(name);
    Path target = MODELS.resolve("target");
    assumeTrue(Files.isDirectory(dir) && Files.isDirectory(target), "models not committed yet");
    assertThat(Files.readAllBytes(dir.resolve("tokenizer.json")))
        .isEqualTo(Files.readAllBytes(target.resolve("tokenizer.json")));
  }

  @org.junit.jupiter.api.Test
  void committedWeightsFitTheBudget() throws Exception {
    assumeTrue(Files.isDirectory(MODELS), "models not committed yet");
    long bytes;
    try (Stream<Path> files = Files.walk(MODELS)) {
      bytes =
          files
              .filter(p -> p.getFileName().toString().endsWith(".safetensors"))
              .mapToLong(p -> p.toFile().length())
              .sum();
    }
    assertThat(bytes).isLessThanOrEqualTo(40_000_000L);
  }
}
