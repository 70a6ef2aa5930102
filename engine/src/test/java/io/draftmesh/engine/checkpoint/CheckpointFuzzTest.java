package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;

/**
 * Fuzz targets for the checkpoint readers: whatever bytes a safetensors file or a config.json
 * holds, the reader either accepts them (and then every tensor it names can be read, inside the
 * file) or refuses them with a {@link CheckpointException} naming the file. Any other exception, a
 * hang or an allocation the file's size does not justify is a bug.
 *
 * <p>Under plain JUnit these run the committed inputs ({@code CheckpointFuzzTestInputs/<method>/})
 * in milliseconds; {@code ./draftmesh fuzz safetensors --minutes N} (JAZZER_FUZZ=1) fuzzes.
 */
class CheckpointFuzzTest {
  private static Path file;

  private static synchronized Path file() {
    try {
      if (file == null) {
        file = Files.createTempFile("fuzz", ".safetensors");
      }
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @AfterAll
  static void cleanUp() throws IOException {
    if (file != null) {
      Files.deleteIfExists(file);
    }
  }

  @FuzzTest(maxDuration = "10m")
  void safetensors(byte[] bytes) throws IOException {
    Path f = file();
    Files.write(f, bytes);
    SafetensorsFile st;
    try {
      st = SafetensorsFile.open(f);
    } catch (CheckpointException refused) {
      assertThat(refused.getMessage()).startsWith(f.toString());
      return;
    }
    try (st) {
      for (String name : st.names()) {
        TensorInfo info = st.info(name);
        assertThat(info.byteLength()).isBetween(0L, (long) bytes.length);
        ByteBuffer raw = st.raw(name);
        assertThat((long) raw.remaining()).isEqualTo(info.byteLength());
        if (java.util.Set.of("F32", "F16", "BF16").contains(info.dtype())) {
          assertThat((long) st.readFloat32(name).remaining()).isEqualTo(info.numElements() * 4);
        }
      }
    }
  }

  @FuzzTest(maxDuration = "10m")
  void configJson(byte[] bytes) {
    String text = new String(bytes, java.nio.charset.StandardCharsets.UTF_8);
    ModelConfig c;
    try {
      c = ModelConfig.parse(text, "config.json");
    } catch (CheckpointException refused) {
      assertThat(refused.getMessage()).startsWith("config.json");
      return;
    }
    // Accepted: the shapes the engine would allocate from are positive and consistent.
    assertThat(c.vocabSize()).isPositive();
    assertThat(c.hiddenSize()).isPositive();
    assertThat(c.numLayers()).isPositive();
    assertThat(c.numHeads()).isPositive();
    assertThat(c.numKvHeads()).isPositive();
    assertThat(c.numHeads() % c.numKvHeads()).isZero();
    assertThat(c.headDim()).isPositive();
  }
}
