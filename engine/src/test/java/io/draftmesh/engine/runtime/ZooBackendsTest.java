package io.draftmesh.engine.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * On the bundled zoo pair (F16 on disk: the vector backend keeps F16, DJL widens to F32), greedy
 * generation is token-for-token the same on both backends over 64 tokens for every prompt.
 */
class ZooBackendsTest {
  static final Path MODELS = Path.of("..", "models");
  static final List<String> PROMPTS =
      List.of(
          "In the beginning",
          "The quick brown fox",
          "And it came to pass, when",
          "Once upon a time there was",
          "Q: What is the capital of France?\nA:",
          "Blessed are the",
          "He said unto them,",
          "It was a dark and stormy night;");

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"target", "draft"})
  void greedyOutputsAreIdenticalOnBothBackends(String model) {
    EngineConfig base = EngineConfig.defaults(MODELS.resolve(model)).withKvBudgetBytes(16L << 20);
    try (InferenceEngine djl = InferenceEngine.load(base.withBackend(Backend.DJL));
        InferenceEngine vector = InferenceEngine.load(base.withBackend(Backend.VECTOR))) {
      assertThat(vector.info().dtype()).isEqualTo("float16");
      for (String text : PROMPTS) {
        int[] prompt = djl.tokenizer().encode(text);
        int[] a = generate(djl, prompt);
        int[] b = generate(vector, prompt);
        assertThat(b).as("%s on %s", text, model).isEqualTo(a);
        assertThat(a).hasSize(64);
      }
    }
  }

  private static int[] generate(InferenceEngine engine, int[] prompt) {
    Sequence s = engine.open(prompt, SamplingParams.GREEDY, "zoo");
    try {
      int first = s.prefill(ResultOptions.NONE).join().tokenId();
      int[] rest = s.propose(63, 0f, ResultOptions.NONE).join().tokens();
      int[] out = new int[64];
      out[0] = first;
      System.arraycopy(rest, 0, out, 1, 63);
      return out;
    } finally {
      s.closeAsync().join();
    }
  }
}
