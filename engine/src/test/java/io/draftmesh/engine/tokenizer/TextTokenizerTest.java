package io.draftmesh.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextTokenizerTest {
  @TempDir static Path dir;
  static Path json;
  static TextTokenizer tok;

  @BeforeAll
  static void train() throws IOException {
    json = dir.resolve("tokenizer.json");
    RandomCheckpoint.writeTokenizer(json, 1024);
    tok = TextTokenizer.load(json);
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  /** Random text mixing ASCII, Latin-1, combining marks, CJK, emoji, whitespace and controls. */
  private static String randomText(SplittableRandom r, int codePoints) {
    int[][] ranges = {
      {0x20, 0x7E},
      {0x20, 0x7E},
      {0x20, 0x7E},
      {0x00, 0x1F},
      {0xA0, 0xFF},
      {0x0300, 0x036F},
      {0x0400, 0x04FF},
      {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3},
      {0x1F300, 0x1FAFF},
      {0x10000, 0x10FFFF},
      {0xE000, 0xFFFD}
    };
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < codePoints; i++) {
      int[] range = ranges[r.nextInt(ranges.length)];
      int cp = r.nextInt(range[0], range[1] + 1);
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 'x';
      }
      sb.appendCodePoint(cp);
    }
    return sb.toString();
  }

  @Test
  void vocabAndSpecialTokensAreAsTrained() {
    assertThat(tok.vocabSize()).isEqualTo(1024);
    assertThat(tok.tokenId(RandomCheckpoint.EOS_TOKEN)).hasValue(RandomCheckpoint.EOS_ID);
    assertThat(tok.tokenId(RandomCheckpoint.BOS_TOKEN)).hasValue(RandomCheckpoint.BOS_ID);
    assertThat(tok.tokenId("<|nope|>")).isEmpty();
    assertThat(tok.isSpecial(0)).isTrue();
    assertThat(tok.isSpecial(2)).isFalse();
    assertThat(tok.tokenBytes(2 + 0x41)).containsExactly('A');
    assertThat(tok.tokenBytes(2 + 0xE2)).containsExactly((byte) 0xE2);
    assertThatThrownBy(() -> tok.tokenBytes(1024)).hasMessageContaining("token id 1024");
  }

  @Test
  void roundTripsArbitraryUtf8Losslessly() {
    SplittableRandom r = new SplittableRandom(123);
    for (int i = 0; i < 300; i++) {
      String text = randomText(r, 1 + r.nextInt(120));
      int[] ids = tok.encode(text);
      assertThat(tok.decode(ids)).as("text #%d", i).isEqualTo(text);
      assertThat(tok.bytes(ids))
          .as("bytes #%d", i)
          .isEqualTo(text.getBytes(StandardCharsets.UTF_8));
    }
    String fixed = "naïve café — 東京 👩‍👩‍👧 e\u0301 \u0000 tab\tend\r\n";
    assertThat(tok.decode(tok.encode(fixed))).isEqualTo(fixed);
  }

  @Test
  void tokenBytesConcatenateToTheUtf8OfTheText() {
    String text = RandomCheckpoint.sampleText() + " 🎉 漢字 ё";
    int[] ids = tok.encode(text);
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (int id : ids) {
      out.writeBytes(tok.tokenBytes(id));
    }
    assertThat(out.toByteArray()).isEqualTo(text.getBytes(StandardCharsets.UTF_8));
    // Merges were learned from the text, so it compresses well below one token per byte.
    assertThat(ids.length).isLessThan(text.length() / 2);
  }

  @Test
  void longInputsAreNotTruncated() throws IOException {
    StringBuilder sb = new StringBuilder();
    while (sb.length() < 40_000) {
      sb.append(RandomCheckpoint.sampleText());
    }
    String text = sb.toString();
    int[] ids = tok.encode(text);
    assertThat(ids.length).isGreaterThan(5000);
    assertThat(tok.decode(ids)).isEqualTo(text);
    // Why the options matter: DJL's defaults silently cut the same text to 512 tokens.
    try (HuggingFaceTokenizer defaults = HuggingFaceTokenizer.newInstance(json)) {
      assertThat(defaults.encode(text).getIds()).hasSize(512);
    }
  }

  @Test
  void specialTokensOnlyWhenAskedAndKeptByDecode() {
    int[] plain = tok.encode("Hello");
    int[] withBos = tok.encode("Hello", true);
    assertThat(withBos).hasSize(plain.length + 1);
    assertThat(withBos[0]).isEqualTo(RandomCheckpoint.BOS_ID);
    assertThat(plain[0]).isNotEqualTo(RandomCheckpoint.BOS_ID);
    assertThat(tok.decode(new int[] {0})).isEqualTo("<|endoftext|>");
    assertThat(tok.decode(withBos, true)).isEqualTo("Hello");
    assertThat(tok.encode("a<|endoftext|>b")).contains(RandomCheckpoint.EOS_ID);
  }

  @Test
  void sha256IsTheHashOfTheFileBytes() throws Exception {
    String expected =
        HexFormat.of()
            .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(json)));
    assertThat(tok.sha256()).isEqualTo(expected).hasSize(64);
    // Same vocab size, same tokenizer: drafts and targets generated separately agree.
    Path other = dir.resolve("other.json");
    RandomCheckpoint.writeTokenizer(other, 1024);
    try (TextTokenizer again = TextTokenizer.load(other)) {
      assertThat(again.sha256()).isEqualTo(tok.sha256());
    }
  }

  @Test
  void sentencePieceStyleTokensMapToTheirBytes() throws IOException {
    StringBuilder vocab = new StringBuilder("\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int b = 0; b < 256; b++) {
      vocab.append(String.format(",\"<0x%02X>\":%d", b, 3 + b));
    }
    vocab.append(",\"\u2581\":259,\"h\":260,\"i\":261,\"\u2581h\":262,\"\u2581hi\":263");
    String sp =
        """
        {"version":"1.0","truncation":null,"padding":null,
         "added_tokens":[
          {"id":0,"content":"<unk>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
          {"id":1,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
          {"id":2,"content":"</s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
         "normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\u2581"},
           {"type":"Replace","pattern":{"String":" "},"content":"\u2581"}]},
         "pre_tokenizer":null,"post_processor":null,
         "decoder":{"type":"Sequence","decoders":[
           {"type":"Replace","pattern":{"String":"\u2581"},"content":" "},
           {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},
         "model":{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,
           "end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,
           "vocab":{VOCAB},"merges":["\u2581 h","\u2581h i"]}}
        """
            .replace("VOCAB", vocab);
    Path p = dir.resolve("sp.json");
    Files.writeString(p, sp);
    try (TextTokenizer t = TextTokenizer.load(p)) {
      int[] ids = t.encode("hi\n");
      assertThat(ids).containsExactly(263, 3 + '\n');
      assertThat(t.bytes(ids)).isEqualTo(" hi\n".getBytes(StandardCharsets.UTF_8));
      assertThat(t.decode(ids)).isEqualTo("hi\n");
    }
  }

  @Test
  void rejectsFilesTheLibraryCannotLoad() throws IOException {
    Path bad = dir.resolve("bad.json");
    Files.writeString(bad, "{\"model\": {\"type\": \"Nope\"}}");
    assertThatThrownBy(() -> TextTokenizer.load(bad))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("bad.json");
  }
}
