package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fuzz targets for the router's tokenizer: loading any tokenizer.json either succeeds (and the
 * tokenizer then encodes and decodes) or fails with the IllegalArgumentException naming the file;
 * and on a real byte-level BPE tokenizer, every text encodes and decodes back to itself, and a text
 * marked literal (a chat message) never becomes a special token.
 *
 * <p>Under plain JUnit these run the committed inputs ({@code TokenizerFuzzTestInputs/<method>/});
 * {@code ./draftmesh fuzz tokenizer-json --minutes N} (JAZZER_FUZZ=1) fuzzes.
 */
class TokenizerFuzzTest {
  private static BpeTokenizer real;

  /** The test checkpoints' tokenizer: byte-level BPE over 512 ids with ChatML-style specials. */
  private static synchronized BpeTokenizer real() {
    if (real == null) {
      try {
        Path f = Files.createTempFile("fuzz-tokenizer", ".json");
        RandomCheckpoint.writeTokenizer(f, 512);
        real = BpeTokenizer.load(f);
        Files.delete(f);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return real;
  }

  @FuzzTest(maxDuration = "10m")
  void tokenizerJson(byte[] bytes) {
    BpeTokenizer t;
    try {
      t = BpeTokenizer.parse(bytes, "tokenizer.json");
    } catch (IllegalArgumentException refused) {
      assertThat(refused.getMessage()).startsWith("tokenizer.json");
      return;
    }
    assertThat(t.vocabSize()).isNotNegative();
    if (t.encodeUnsupported() == null) {
      int[] ids = t.encode("Hello, world! <|im_end|> 123", false);
      for (int id : ids) {
        assertThat(id).isBetween(0, Math.max(0, t.vocabSize() - 1));
      }
      t.decode(ids, false);
    }
  }

  @FuzzTest(maxDuration = "10m")
  void encodeDecode(byte[] bytes) {
    // Any UTF-16 text, lone surrogates aside (the gateway refuses those; here they would decode
    // to U+FFFD and not round-trip by design).
    String text = new String(bytes, StandardCharsets.UTF_8);
    BpeTokenizer t = real();
    assertThat(t.decode(t.encode(text, false), false)).isEqualTo(text);
    int[] literal = t.encode(text, new int[] {0, text.length()}, false);
    for (int id : literal) {
      assertThat(t.isSpecial(id)).as("special token %d inside literal text", id).isFalse();
    }
    assertThat(t.decode(literal, false)).isEqualTo(text);
  }
}
