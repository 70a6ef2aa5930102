package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {
  @TempDir Path dir;

  /** meta-llama/Llama-3.2-1B config.json. */
  static final String LLAMA_3_2_1B =
      """
      {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": false,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "head_dim": 64,
        "hidden_act": "silu",
        "hidden_size": 2048,
        "initializer_range": 0.02,
        "intermediate_size": 8192,
        "max_position_embeddings": 131072,
        "mlp_bias": false,
        "model_type": "llama",
        "num_attention_heads": 32,
        "num_hidden_layers": 16,
        "num_key_value_heads": 8,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
          "factor": 32.0,
          "high_freq_factor": 4.0,
          "low_freq_factor": 1.0,
          "original_max_position_embeddings": 8192,
          "rope_type": "llama3"
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0",
        "use_cache": true,
        "vocab_size": 128256
      }
      """;

  /** Qwen/Qwen2.5-0.5B config.json. */
  static final String QWEN2_5_0_5B =
      """
      {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "hidden_act": "silu",
        "hidden_size": 896,
        "initializer_range": 0.02,
        "intermediate_size": 4864,
        "max_position_embeddings": 32768,
        "max_window_layers": 24,
        "model_type": "qwen2",
        "num_attention_heads": 14,
        "num_hidden_layers": 24,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": true,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
        "use_cache": true,
        "use_mrope": false,
        "use_sliding_window": false,
        "vocab_size": 151936
      }
      """;

  /** mistralai/Mistral-7B-v0.1 config.json. */
  static final String MISTRAL_7B =
      """
      {
        "architectures": ["MistralForCausalLM"],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "initializer_range": 0.02,
        "intermediate_size": 14336,
        "max_position_embeddings": 32768,
        "model_type": "mistral",
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0,
        "sliding_window": 4096,
        "tie_word_embeddings": false,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.34.0.dev0",
        "use_cache": true,
        "vocab_size": 32000
      }
      """;

  private ModelConfig parse(String json) throws IOException {
    Path p = dir.resolve("config.json");
    Files.writeString(p, json);
    return ModelConfig.parse(p);
  }

  @Test
  void parsesLlama32() throws IOException {
    ModelConfig c = parse(LLAMA_3_2_1B);
    assertThat(c.architecture()).isEqualTo(ModelConfig.LLAMA);
    assertThat(c.vocabSize()).isEqualTo(128256);
    assertThat(c.hiddenSize()).isEqualTo(2048);
    assertThat(c.intermediateSize()).isEqualTo(8192);
    assertThat(c.numLayers()).isEqualTo(16);
    assertThat(c.numHeads()).isEqualTo(32);
    assertThat(c.numKvHeads()).isEqualTo(8);
    assertThat(c.headDim()).isEqualTo(64);
    assertThat(c.ropeTheta()).isEqualTo(500000.0);
    assertThat(c.ropeScaling())
        .isEqualTo(new ModelConfig.RopeScaling("llama3", 32.0, 1.0, 4.0, 8192));
    assertThat(c.rmsNormEps()).isEqualTo(1e-5);
    assertThat(c.maxPositionEmbeddings()).isEqualTo(131072);
    assertThat(c.tieWordEmbeddings()).isTrue();
    assertThat(c.attentionBias()).isFalse();
    assertThat(c.bosTokenId()).isEqualTo(128000);
    assertThat(c.eosTokenId()).isEqualTo(128001);
    // Published size of Llama-3.2-1B: 1,235,814,400 parameters.
    assertThat(c.numParameters()).isEqualTo(1_235_814_400L);
  }

  @Test
  void parsesQwen25() throws IOException {
    ModelConfig c = parse(QWEN2_5_0_5B);
    assertThat(c.architecture()).isEqualTo(ModelConfig.QWEN2);
    assertThat(c.attentionBias()).isTrue();
    assertThat(c.numHeads()).isEqualTo(14);
    assertThat(c.numKvHeads()).isEqualTo(2);
    assertThat(c.headDim()).isEqualTo(64);
    assertThat(c.ropeScaling()).isNull();
    assertThat(c.rmsNormEps()).isEqualTo(1e-6);
    assertThat(c.ropeTheta()).isEqualTo(1_000_000.0);
    assertThat(c.eosTokenId()).isEqualTo(151643);
    // Published size of Qwen2.5-0.5B: 494,032,768 parameters (q/k/v biases included).
    assertThat(c.numParameters()).isEqualTo(494_032_768L);
    assertThat(c.tensorShapes()).containsKey("model.layers.23.self_attn.k_proj.bias");
    assertThat(c.tensorShapes().get("model.layers.0.self_attn.k_proj.bias")).containsExactly(128);
  }

  @Test
  void parsesMistral7b() throws IOException {
    ModelConfig c = parse(MISTRAL_7B);
    assertThat(c.architecture()).isEqualTo(ModelConfig.MISTRAL);
    assertThat(c.headDim()).isEqualTo(128);
    assertThat(c.numKvHeads()).isEqualTo(8);
    assertThat(c.tieWordEmbeddings()).isFalse();
    assertThat(c.attentionBias()).isFalse();
    assertThat(c.bosTokenId()).isEqualTo(1);
    assertThat(c.eosTokenId()).isEqualTo(2);
    // Published size of Mistral-7B-v0.1: 7,241,732,096 parameters.
    assertThat(c.numParameters()).isEqualTo(7_241_732_096L);
    assertThat(c.tensorShapes()).containsKey("lm_head.weight");
    assertThat(c.tensorShapes().get("model.layers.0.self_attn.k_proj.weight"))
        .containsExactly(1024, 4096);
  }

  @Test
  void appliesDefaultsAndAcceptsEosLists() throws IOException {
    ModelConfig c =
        parse(
            """
            {"architectures": ["LlamaForCausalLM"], "vocab_size": 100, "hidden_size": 64,
             "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
             "eos_token_id": [7, 8, 9]}
            """);
    assertThat(c.numKvHeads()).isEqualTo(4);
    assertThat(c.headDim()).isEqualTo(16);
    assertThat(c.eosTokenId()).isEqualTo(7);
    assertThat(c.bosTokenId()).isEqualTo(1);
    assertThat(c.ropeTheta()).isEqualTo(10000.0);
    assertThat(c.rmsNormEps()).isEqualTo(1e-6);
    assertThat(c.ropeScaling()).isNull();
    ModelConfig noEos =
        parse(
            """
            {"model_type": "qwen2", "vocab_size": 100, "hidden_size": 64,
             "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
             "rope_scaling": {"type": "default"}}
            """);
    assertThat(noEos.architecture()).isEqualTo(ModelConfig.QWEN2);
    assertThat(noEos.eosTokenId()).isEqualTo(-1);
    assertThat(noEos.ropeScaling()).isNull();
  }

  @Test
  void rejectsHeadsThatDoNotDivideHidden() {
    assertThatThrownBy(
            () ->
                parse(
                    """
                    {"architectures": ["LlamaForCausalLM"], "vocab_size": 100,
                     "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                     "num_attention_heads": 7}
                    """))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("config.json: num_attention_heads 7 does not divide hidden_size 64");
  }

  @Test
  void rejectsUnknownArchitectureListingSupportedOnes() {
    assertThatThrownBy(() -> parse("{\"architectures\": [\"GPT2LMHeadModel\"], \"vocab_size\": 1}"))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("config.json: architecture \"GPT2LMHeadModel\" is not supported")
        .hasMessageContaining("LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM");
  }

  @Test
  void rejectsBadFieldsNamingThem() {
    String base =
        "\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 100, \"hidden_size\": 64,"
            + " \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4";
    assertThatThrownBy(() -> parse("{" + base + ", \"num_key_value_heads\": 3}"))
        .hasMessageContaining(
            "config.json: num_key_value_heads 3 does not divide num_attention_heads 4");
    assertThatThrownBy(
            () ->
                parse(
                    "{" + base + ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}"))
        .hasMessageContaining("config.json: rope_scaling.rope_type \"yarn\" is not supported");
    assertThatThrownBy(
            () ->
                parse(
                    "{"
                        + base
                        + ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}"))
        .hasMessageContaining("config.json: rope_scaling: missing required field low_freq_factor");
    assertThatThrownBy(() -> parse("{" + base + ", \"hidden_act\": \"gelu\"}"))
        .hasMessageContaining("config.json: hidden_act \"gelu\" (expected: \"silu\")");
    assertThatThrownBy(() -> parse("{" + base + ", \"attention_bias\": true}"))
        .hasMessageContaining("config.json: attention_bias true is not supported");
    assertThatThrownBy(() -> parse("{" + base + ", \"rms_norm_eps\": \"small\"}"))
        .hasMessageContaining("config.json: rms_norm_eps must be a number, found \"small\"");
    assertThatThrownBy(() -> parse("{" + base.replace("\"vocab_size\": 100, ", "") + "}"))
        .hasMessageContaining("config.json: missing required field vocab_size");
    assertThatThrownBy(() -> parse("{" + base + ", \"vocab_size\": 10.5}"))
        .hasMessageContaining("config.json: vocab_size must be an integer, found 10.5");
    assertThatThrownBy(() -> parse("{" + base + ", \"eos_token_id\": 100}"))
        .hasMessageContaining("config.json: eos_token_id 100 (expected: -1 or 0..99)");
    assertThatThrownBy(() -> parse("{" + base + ",}"))
        .hasMessageContaining("config.json: not valid JSON");
  }

  @Test
  void toJsonRoundTripsEveryPreset() throws IOException {
    for (ModelConfig c :
        List.of(
            RandomCheckpoint.tinyLlama(),
            RandomCheckpoint.tinyQwen2(),
            RandomCheckpoint.tinyGqa(),
            RandomCheckpoint.llama110M(),
            parse(LLAMA_3_2_1B),
            parse(MISTRAL_7B))) {
      String json = c.toJson(DType.BF16);
      assertThat(json)
          .contains("\"torch_dtype\": \"bfloat16\"")
          .contains("\"model_type\": \"" + c.modelType() + "\"");
      assertThat(ModelConfig.parse(json, "roundtrip")).isEqualTo(c);
    }
  }

  @Test
  void presetsHaveTheAdvertisedShapes() {
    assertThat(RandomCheckpoint.llama110M().numParameters()).isEqualTo(109_529_856L);
    assertThat(RandomCheckpoint.tinyQwen2().attentionBias()).isTrue();
    assertThat(RandomCheckpoint.tinyGqa().groupSize()).isEqualTo(4);
  }

  @Test
  void llama3InverseFrequenciesMatchTheFormula() throws IOException {
    ModelConfig c = parse(LLAMA_3_2_1B);
    double[] inv = ModelConfig.RopeScaling.inverseFrequencies(c);
    assertThat(inv).hasSize(32);
    // Independent form: with r = original_max * freq / (2 pi) (periods per original context),
    // r >= high keeps freq, r <= low divides it by factor, and in between blends linearly in r.
    double factor = 32;
    double low = 1;
    double high = 4;
    double original = 8192;
    int bands = 0;
    for (int i = 0; i < 32; i++) {
      double freq = Math.exp(-Math.log(500000.0) * i / 32.0);
      double r = original * freq / (2 * Math.PI);
      double expected;
      if (r > high) {
        expected = freq;
        bands |= 1;
      } else if (r < low) {
        expected = freq / factor;
        bands |= 2;
      } else {
        double t = (r - low) / (high - low);
        expected = freq * (t + (1 - t) / factor);
        bands |= 4;
      }
      assertThat(inv[i]).as("inv_freq[%d]", i).isCloseTo(expected, within(expected * 1e-12));
    }
    assertThat(bands).as("all three bands exercised").isEqualTo(7);
    // Reference values (Python, float64, transformers' formula).
    assertThat(inv[0]).isEqualTo(1.0);
    assertThat(inv[10]).isCloseTo(0.016560440080994446, within(1e-15));
    assertThat(inv[16]).isCloseTo(0.00042955679655936815, within(1e-17));
    assertThat(inv[17]).isCloseTo(9.70828780262767e-05, within(1e-18));
    assertThat(inv[18]).isCloseTo(1.9461638184831125e-05, within(1e-19));
    assertThat(inv[31]).isCloseTo(9.418306725434909e-08, within(1e-21));
  }

  @Test
  void plainRopeHasNoScaling() {
    ModelConfig c = RandomCheckpoint.tinyLlama();
    double[] inv = ModelConfig.RopeScaling.inverseFrequencies(c);
    assertThat(inv).hasSize(8);
    for (int i = 0; i < 8; i++) {
      assertThat(inv[i]).isCloseTo(Math.pow(10000.0, -i / 8.0), within(1e-15));
    }
  }

  @Test
  void constructorValidatesFields() {
    assertThatThrownBy(
            () ->
                new ModelConfig(
                    ModelConfig.LLAMA,
                    10,
                    64,
                    128,
                    1,
                    4,
                    4,
                    16,
                    1e4,
                    null,
                    1e-5,
                    64,
                    false,
                    true,
                    -1,
                    -1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("attentionBias true for LlamaForCausalLM");
    assertThatThrownBy(
            () ->
                new ModelConfig(
                    ModelConfig.LLAMA,
                    10,
                    64,
                    128,
                    1,
                    4,
                    4,
                    15,
                    1e4,
                    null,
                    1e-5,
                    64,
                    false,
                    false,
                    -1,
                    -1))
        .hasMessageContaining("head_dim 15");
  }
}
