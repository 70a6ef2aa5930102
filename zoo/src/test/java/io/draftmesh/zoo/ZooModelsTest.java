package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.Position;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The committed models (repo {@code models/}) load through the serving runtime and generate. */
class ZooModelsTest {
  /** The committed models; {@code -Dzoo.models=DIR} checks another directory laid out alike. */
  static final Path MODELS = Paths.get(System.getProperty("zoo.models", "../models"));

  @BeforeAll
  static void djl() {
    Runtimes.configureDjl(0);
  }

  /** Prompt length of the long-context check: a 2k prompt plus the tokens scored after it. */
  static final int LONG_PROMPT = 2000;

  static final int SCORED = 8;

  /**
   * Largest difference allowed between a probability from the paged, chunked serving path and from
   * the cache-free forward. Both compute in fp32; they differ only in summation order (the
   * attention over 2k keys is split into chunks and blocks), which moves logits by ~1e-5.
   */
  static final float PROB_TOLERANCE = 1e-4f;

  @ParameterizedTest
  @ValueSource(strings = {"target", "draft", "aligned", "target-aligned", "aligned-x"})
  void loadsAndGenerates(String name) throws Exception {
    Path dir = MODELS.resolve(name);
    assumeTrue(Files.isDirectory(dir), dir + " is not committed yet");
    try (Checkpoint ckpt = Checkpoint.load(dir)) {
      if (!name.equals("aligned-x")) {
        assertThat(ckpt.config().vocabSize()).isEqualTo(ZooTokenizer.DEFAULT_VOCAB_SIZE);
      }
      assertThat(ckpt.config().bosTokenId()).isEqualTo(ZooTokenizer.END_OF_TEXT_ID);
      // The card states the context config.json declares.
      assertThat(Files.readString(dir.resolve("README.md")))
          .contains("| context | " + ckpt.config().maxPositionEmbeddings() + " tokens");
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
      // aligned-x saw ~0.2M text tokens from scratch (30% of its 655k, the rest instructions):
      // its greedy text falls into a 4-token loop ("and the LORD,"). Its job is the template,
      // which eval zoo measures. The other models must not loop that tightly.
      assertThat(distinct.size()).as(generated).isGreaterThan(name.equals("aligned-x") ? 2 : 4);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"target", "draft", "aligned", "target-aligned"})
  void sharesOneTokenizer(String name) throws Exception {
    Path dir = MODELS.resolve(name);
    Path target = MODELS.resolve("target");
    assumeTrue(Files.isDirectory(dir) && Files.isDirectory(target), "models not committed yet");
    assertThat(Files.readAllBytes(dir.resolve("tokenizer.json")))
        .isEqualTo(Files.readAllBytes(target.resolve("tokenizer.json")));
  }

  @ParameterizedTest
  @ValueSource(strings = {"target", "draft"})
  void longContextPairDeclaresTwoThousandPositions(String name) throws Exception {
    try (Checkpoint ckpt = Checkpoint.load(MODELS.resolve(name))) {
      assertThat(ckpt.config().maxPositionEmbeddings()).isGreaterThanOrEqualTo(2048);
    }
  }

  /**
   * A 2k-token prompt through the serving engine — paged KV in blocks of 16, prefill chunked at 512
   * tokens, then a score of 8 more tokens on the cache — gives the cache-free full forward's
   * next-token distributions.
   */
  @ParameterizedTest
  @ValueSource(strings = {"target", "draft"})
  void twoThousandTokenPromptThroughPagedKvMatchesTheCacheFreeForward(String name)
      throws Exception {
    Path dir = MODELS.resolve(name);
    int[] ids;
    try (TextTokenizer tokenizer = TextTokenizer.load(dir.resolve("tokenizer.json"))) {
      String text = Files.readString(MODELS.resolve("README.md"));
      StringBuilder sb = new StringBuilder();
      while (tokenizer.encode(sb.toString()).length < LONG_PROMPT + SCORED) {
        sb.append(text);
      }
      int[] all = tokenizer.encode(sb.toString());
      ids = new int[LONG_PROMPT + SCORED];
      ids[0] = ZooTokenizer.END_OF_TEXT_ID;
      System.arraycopy(all, 0, ids, 1, ids.length - 1);
    }
    float[][] served = new float[SCORED + 1][];
    EngineConfig config =
        EngineConfig.defaults(dir).withMaxContext(2048).withKvBlockSize(16).withMaxBatchTokens(512);
    try (InferenceEngine engine = InferenceEngine.load(config)) {
      Sequence s =
          engine.open(
              Arrays.copyOf(ids, LONG_PROMPT), new SamplingParams(1f, 0, 0f, 0f, 1), "zoo-2k");
      try {
        served[0] = s.prefill(new ResultOptions(0, true)).join().full().toDense();
        List<Position> next =
            s.score(
                    Arrays.copyOfRange(ids, LONG_PROMPT, LONG_PROMPT + SCORED),
                    new ResultOptions(0, true))
                .join();
        assertThat(next).hasSize(SCORED + 1);
        for (int i = 0; i < SCORED; i++) {
          // score returns the prediction after the last token, then after each scored id.
          served[i + 1] = next.get(i + 1).full().toDense();
        }
      } finally {
        s.closeAsync().join();
      }
    }
    try (NDManager manager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(dir);
        LlamaModel model = LlamaModel.load(ckpt, manager, 2048);
        GradMode off = GradMode.disabled()) {
      off.suppressNotUsedWarning();
      long[] input = Arrays.stream(ids).asLongStream().toArray();
      NDArray probs =
          model.forwardFull(manager.create(input, new Shape(1, input.length))).softmax(2);
      for (int i = 0; i <= SCORED; i++) {
        int at = LONG_PROMPT - 1 + i; // the position whose prediction served[i] is
        float[] reference = probs.get(0, at).toFloatArray();
        float worst = 0;
        for (int v = 0; v < reference.length; v++) {
          worst = Math.max(worst, Math.abs(reference[v] - served[i][v]));
        }
        assertThat(worst).as(name + " position " + at).isLessThanOrEqualTo(PROB_TOLERANCE);
      }
    }
  }

  /** aligned-x is another family: Qwen2 with its own tokenizer; the same text round-trips. */
  @org.junit.jupiter.api.Test
  void alignedXHasItsOwnFamilyAndTokenizer() throws Exception {
    Path x = MODELS.resolve("aligned-x");
    Path target = MODELS.resolve("target");
    assumeTrue(Files.isDirectory(x), x + " is not committed yet");
    try (Checkpoint cx = Checkpoint.load(x);
        Checkpoint ct = Checkpoint.load(target);
        TextTokenizer tx = TextTokenizer.load(x.resolve("tokenizer.json"));
        TextTokenizer tt = TextTokenizer.load(target.resolve("tokenizer.json"))) {
      assertThat(cx.config().architecture()).isEqualTo(ModelConfig.QWEN2);
      assertThat(cx.config().attentionBias()).isTrue();
      assertThat(cx.config().vocabSize()).isEqualTo(tx.vocabSize()).isNotEqualTo(tt.vocabSize());
      assertThat(tx.sha256()).isNotEqualTo(tt.sha256());
      String text = "And God said, Let there be light: and there was light. Answer: 48213 ü";
      assertThat(tx.decode(tx.encode(text))).isEqualTo(text);
      assertThat(tt.decode(tt.encode(text))).isEqualTo(text);
      assertThat(tx.encode(text)).isNotEqualTo(tt.encode(text));
      // The special tokens keep their ids, so the template and stop ids are the same.
      assertThat(tx.tokenId(ZooTokenizer.END)).hasValue(ZooTokenizer.END_ID);
    }
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
    // 80 MB: two 12.2M-parameter models in F16 (target, target-aligned: 24.4 MB each) plus three
    // ~1M ones; the zoo v2 issue raised the budget from 40 MB for the large aligned model.
    assertThat(bytes).isLessThanOrEqualTo(80_000_000L);
  }
}
