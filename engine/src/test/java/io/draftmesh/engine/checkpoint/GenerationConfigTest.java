package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerationConfigTest {
  @TempDir Path dir;
  private final ModelConfig model = RandomCheckpoint.tinyLlama();

  @Test
  void absentFileGivesHfDefaultsWithModelSpecialTokens() throws IOException {
    GenerationConfig g = GenerationConfig.load(dir.resolve("generation_config.json"), model);
    assertThat(g.doSample()).isFalse();
    assertThat(g.temperature()).isEqualTo(1.0);
    assertThat(g.topK()).isEqualTo(50);
    assertThat(g.topP()).isEqualTo(1.0);
    assertThat(g.maxNewTokens()).isEqualTo(GenerationConfig.DEFAULT_MAX_NEW_TOKENS);
    assertThat(g.eosTokenIds()).containsExactly(RandomCheckpoint.EOS_ID);
    assertThat(g.bosTokenId()).isEqualTo(RandomCheckpoint.BOS_ID);
  }

  @Test
  void parsesLlama3InstructStyleFile() {
    GenerationConfig g =
        GenerationConfig.parse(
            """
            {"bos_token_id": 1, "do_sample": true, "eos_token_id": [0, 5, 9],
             "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0"}
            """,
            "generation_config.json",
            model);
    assertThat(g.doSample()).isTrue();
    assertThat(g.temperature()).isEqualTo(0.6);
    assertThat(g.topP()).isEqualTo(0.9);
    assertThat(g.topK()).isEqualTo(50);
    assertThat(g.eosTokenIds()).containsExactly(0, 5, 9);
    assertThat(g.eosTokenId()).isZero();
    assertThat(GenerationConfig.parse(g.toJson(), "roundtrip", model)).isEqualTo(g);
  }

  @Test
  void rejectsOutOfRangeValuesNamingTheFile() {
    assertThatThrownBy(
            () -> GenerationConfig.parse("{\"top_p\": 1.5}", "generation_config.json", model))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("generation_config.json: top_p 1.5 (expected: 0 < top_p <= 1)");
    assertThatThrownBy(
            () -> GenerationConfig.parse("{\"top_k\": \"all\"}", "generation_config.json", model))
        .hasMessageContaining("generation_config.json: top_k must be an integer");
  }
}
