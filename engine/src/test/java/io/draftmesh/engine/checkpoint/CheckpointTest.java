package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
  @TempDir Path dir;

  private static List<String> files(Path d) throws IOException {
    try (Stream<Path> s = Files.list(d)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static float[] floats(ByteBuffer b) {
    float[] out = new float[b.remaining() / 4];
    b.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  @Test
  void shardedCheckpointLoadsTheSameTensorsAsTheSingleFile() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyQwen2();
    Path single = dir.resolve("single");
    Path sharded = dir.resolve("sharded");
    RandomCheckpoint.write(single, config, 42, DType.BF16, 0);
    RandomCheckpoint.write(sharded, config, 42, DType.BF16, 40_000);

    assertThat(files(single)).contains("model.safetensors").doesNotContain(Checkpoint.INDEX_JSON);
    List<String> shardFiles =
        files(sharded).stream()
            .filter(n -> n.matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
            .toList();
    assertThat(shardFiles.size()).isGreaterThan(2);
    assertThat(files(sharded)).contains(Checkpoint.INDEX_JSON).doesNotContain("model.safetensors");

    try (Checkpoint a = Checkpoint.load(single);
        Checkpoint b = Checkpoint.load(sharded)) {
      a.requireTensors();
      b.requireTensors();
      assertThat(b.config()).isEqualTo(config);
      assertThat(b.tensorNames()).containsExactlyInAnyOrderElementsOf(a.tensorNames());
      assertThat(a.tensorNames()).containsAll(config.tensorShapes().keySet());
      for (String name : a.tensorNames()) {
        assertThat(b.shape(name)).isEqualTo(a.shape(name));
        ByteBuffer x = a.tensor(name);
        ByteBuffer y = b.tensor(name);
        assertThat(x.isDirect()).isTrue();
        assertThat(x.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
        assertThat(x.remaining()).isEqualTo(4 * a.info(name).numElements());
        assertThat(y.equals(x)).as("bytes of %s", name).isTrue();
        FloatBuffer into = FloatBuffer.allocate(x.remaining() / 4 + 1);
        into.put(-1f);
        b.tensor(name, into);
        assertThat(into.position()).isEqualTo(into.capacity());
        assertThat(Arrays.copyOfRange(into.array(), 1, into.capacity())).isEqualTo(floats(x));
      }
      String embed = "model.embed_tokens.weight";
      assertThatThrownBy(() -> a.tensor(embed, FloatBuffer.allocate(10)))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(
              "tensor " + embed + " has 32768 elements, destination has room for 10");
    }
  }

  @Test
  void randomWeightsLookLikeTheAdvertisedDistribution() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyLlama();
    RandomCheckpoint.write(dir, config, 7, DType.F32, 0);
    try (Checkpoint c = Checkpoint.load(dir)) {
      assertThat(c.generation().eosTokenIds()).containsExactly(RandomCheckpoint.EOS_ID);
      float[] w = floats(c.tensor("model.layers.0.mlp.up_proj.weight"));
      double sum = 0;
      double sq = 0;
      for (float v : w) {
        sum += v;
        sq += v * v;
      }
      double mean = sum / w.length;
      double std = Math.sqrt(sq / w.length - mean * mean);
      assertThat(mean).isBetween(-0.002, 0.002);
      assertThat(std).isBetween(0.019, 0.021);
      float[] norm = floats(c.tensor("model.norm.weight"));
      double normMean = 0;
      for (float v : norm) {
        normMean += v / norm.length;
      }
      assertThat(normMean).isBetween(0.97, 1.03);
      assertThat(norm).doesNotContain(1.0f);
      // Different tensors get different streams; the same seed gives the same values.
      assertThat(floats(c.tensor("model.layers.0.mlp.gate_proj.weight"))).isNotEqualTo(w);
      Path again = dir.resolve("again");
      RandomCheckpoint.write(again, config, 7, DType.F32, 0);
      try (Checkpoint d = Checkpoint.load(again)) {
        assertThat(floats(d.tensor("model.layers.0.mlp.up_proj.weight"))).isEqualTo(w);
      }
    }
  }

  @Test
  void requireTensorsNamesAMissingTensor() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyLlama();
    writeWithout(config, "model.layers.1.mlp.up_proj.weight");
    try (Checkpoint c = Checkpoint.load(dir)) {
      assertThatThrownBy(c::requireTensors)
          .isInstanceOf(CheckpointException.class)
          .hasMessageContaining("missing tensor model.layers.1.mlp.up_proj.weight")
          .hasMessageContaining("expected shape [176, 64] (intermediate_size=176, hidden_size=64)")
          .hasMessageContaining(dir.toString());
      assertThatThrownBy(() -> c.tensor("model.layers.1.mlp.up_proj.weight"))
          .isInstanceOf(CheckpointException.class)
          .hasMessageContaining(
              "checkpoint " + dir + ": no tensor named model.layers.1.mlp.up_proj.weight")
          .hasMessageContaining("model.safetensors");
    }
  }

  @Test
  void requireTensorsNamesAWrongShape() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyQwen2();
    Map<String, TensorData> tensors = materialize(config);
    tensors.put(
        "model.layers.0.self_attn.k_proj.weight", TensorData.of(new float[64 * 64], 64, 64));
    writeRaw(tensors);
    ModelConfig declared = config;
    Files.writeString(dir.resolve("config.json"), declared.toJson());
    try (Checkpoint c = Checkpoint.load(dir)) {
      assertThatThrownBy(c::requireTensors)
          .isInstanceOf(CheckpointException.class)
          .hasMessage(
              "model.safetensors: tensor model.layers.0.self_attn.k_proj.weight has shape [64, 64],"
                  + " expected [32, 64] (num_key_value_heads=2 * head_dim=16, hidden_size=64)");
    }
  }

  @Test
  void requireTensorsWantsBiasesForQwen2AndLmHeadWhenUntied() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyQwen2();
    Map<String, TensorData> tensors = materialize(config);
    tensors.remove("model.layers.1.self_attn.v_proj.bias");
    writeRaw(tensors);
    Files.writeString(dir.resolve("config.json"), config.toJson());
    try (Checkpoint c = Checkpoint.load(dir)) {
      assertThatThrownBy(c::requireTensors)
          .hasMessageContaining("missing tensor model.layers.1.self_attn.v_proj.bias")
          .hasMessageContaining("[32] (num_key_value_heads=2 * head_dim=16)");
    }
  }

  @Test
  void writerRefusesTensorsThatDoNotFitTheConfig() {
    ModelConfig config = RandomCheckpoint.tinyLlama();
    Map<String, TensorData> tensors = materialize(config);
    tensors.remove("lm_head.weight");
    assertThatThrownBy(() -> CheckpointWriter.write(dir, config, tensors))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("missing tensor lm_head.weight, expected shape [512, 64]");
    assertThat(dir.resolve("config.json")).doesNotExist();
  }

  @Test
  void indexNamingAMissingShardIsRejected() throws IOException {
    RandomCheckpoint.write(dir, RandomCheckpoint.tinyLlama(), 1, DType.F16, 50_000);
    Path lastShard;
    try (Stream<Path> s = Files.list(dir)) {
      lastShard =
          s.filter(p -> p.getFileName().toString().matches("model-\\d+-of-\\d+\\.safetensors"))
              .sorted()
              .reduce((a, b) -> b)
              .orElseThrow();
    }
    Files.delete(lastShard);
    assertThatThrownBy(() -> Checkpoint.load(dir))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining(Checkpoint.INDEX_JSON)
        .hasMessageContaining("to shard " + lastShard.getFileName() + ", which does not exist");
  }

  @Test
  void indexNamingATensorItsShardLacksIsRejected() throws IOException {
    RandomCheckpoint.write(dir, RandomCheckpoint.tinyLlama(), 1, DType.F32, 50_000);
    Path index = dir.resolve(Checkpoint.INDEX_JSON);
    String json = Files.readString(index);
    String moved = json.replaceFirst("(\"model.norm.weight\": \")model-\\d{5}", "$1model-00001");
    assertThat(moved).isNotEqualTo(json);
    Files.writeString(index, moved);
    assertThatThrownBy(() -> Checkpoint.load(dir))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining(Checkpoint.INDEX_JSON)
        .hasMessageContaining("maps model.norm.weight to shard model-00001-of-")
        .hasMessageContaining("which has no such tensor");

    Files.writeString(
        index, json.replaceFirst("model-00001-of-\\d{5}\\.safetensors", "../x.safetensors"));
    assertThatThrownBy(() -> Checkpoint.load(dir))
        .hasMessageContaining("\"../x.safetensors\", which is not a file name inside");
  }

  @Test
  void missingFilesAreNamed() throws IOException {
    assertThatThrownBy(() -> Checkpoint.load(dir))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("no config.json");
    Files.writeString(dir.resolve("config.json"), RandomCheckpoint.tinyLlama().toJson());
    assertThatThrownBy(() -> Checkpoint.load(dir))
        .hasMessageContaining("no model.safetensors and no model.safetensors.index.json");
  }

  @Test
  void rewritingWithADifferentLayoutRemovesStaleWeightFiles() throws IOException {
    ModelConfig config = RandomCheckpoint.tinyGqa();
    RandomCheckpoint.write(dir, config, 3, DType.F32, 100_000);
    assertThat(files(dir)).contains(Checkpoint.INDEX_JSON);
    RandomCheckpoint.write(dir, config, 3, DType.BF16, 0);
    assertThat(files(dir))
        .containsExactlyInAnyOrder(
            "config.json", "generation_config.json", "model.safetensors", "tokenizer.json");
    try (Checkpoint c = Checkpoint.load(dir)) {
      assertThat(c.config().ropeScaling()).isEqualTo(config.ropeScaling());
      assertThat(c.info("model.norm.weight").dtype()).isEqualTo("BF16");
      assertThat(c.tokenizerJson()).isEqualTo(dir.resolve("tokenizer.json"));
      c.requireTensors();
    }
  }

  private static Map<String, TensorData> materialize(ModelConfig config) {
    Map<String, TensorData> out = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
      long n = 1;
      for (long d : e.getValue()) {
        n *= d;
      }
      out.put(e.getKey(), TensorData.of(new float[(int) n], e.getValue()));
    }
    return out;
  }

  private void writeWithout(ModelConfig config, String name) throws IOException {
    Map<String, TensorData> tensors = materialize(config);
    tensors.remove(name);
    writeRaw(tensors);
    Files.writeString(dir.resolve("config.json"), config.toJson());
  }

  private void writeRaw(Map<String, TensorData> tensors) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter(DType.F32);
    tensors.forEach(w::add);
    w.write(dir.resolve("model.safetensors"));
  }
}
