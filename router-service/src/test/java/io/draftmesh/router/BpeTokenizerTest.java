package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The router's pure-Java tokenizer against the engine's, which runs Hugging Face's Rust {@code
 * tokenizers} through DJL: the same ids for every text and the same text for every id sequence, on
 * the project's tokenizer and on variants using the other pipeline steps the router implements
 * (Llama-3-style Split regex, prefix space, NFC + ignore_merges).
 */
class BpeTokenizerTest {
  @TempDir static Path dir;
  static Path gpt2;

  /** Texts that exercise the regex's branches, special tokens and multi-byte characters. */
  static final List<String> TEXTS =
      List.of(
          "Hello world",
          " leading space and trailing space ",
          "It's the cat's toy; they'll see, we've been, I'd go, you're right, I'M LOUD",
          "numbers 12345 and 3.14159 and 1,000,000 and ١٢٣",
          "tabs\tand\nnewlines\r\n\n\nand   runs     of spaces\u00a0nbsp",
          "punctuation!!! ... ??? --- (brackets) [x] {y} <z> @#$%^&*",
          "café naïve résumé Zürich — “quotes” ‘single’ …",
          "日本語のテキストと中文文本，한국어 텍스트",
          "emoji 🙂🚀👩‍👩‍👧 and flags 🇫🇷 and math 𝔸𝔹ℂ",
          "combining e\u0301 vs \u00e9 and a\u0308",
          "special <|endoftext|> inside <|begin_of_text|>text<|endoftext|>",
          "<|endoftext|>",
          "   ",
          "\n",
          "x",
          "repeats: eee eeee eeeee lll llll sssss ttttt oooo aaaaaaa the the thethethe ......",
          RandomCheckpoint.sampleText().substring(0, 600));

  @BeforeAll
  static void write() throws IOException {
    gpt2 = dir.resolve("gpt2").resolve("tokenizer.json");
    Files.createDirectories(gpt2.getParent());
    RandomCheckpoint.writeTokenizer(gpt2, 1024);
  }

  /** The project's tokenizer with its pre-tokenizer / normalizer / model options rewritten. */
  static Path variant(String name, java.util.function.Consumer<JsonObject> edit)
      throws IOException {
    JsonObject root =
        JsonParser.parseString(Files.readString(gpt2, StandardCharsets.UTF_8)).getAsJsonObject();
    edit.accept(root);
    Path p = dir.resolve(name).resolve("tokenizer.json");
    Files.createDirectories(p.getParent());
    Files.writeString(p, root.toString(), StandardCharsets.UTF_8);
    return p;
  }

  static Path llama3Split() throws IOException {
    return variant(
        "llama3",
        root -> {
          JsonObject split = new JsonObject();
          split.addProperty("type", "Split");
          JsonObject pattern = new JsonObject();
          pattern.addProperty(
              "Regex",
              "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
                  + " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
          split.add("pattern", pattern);
          split.addProperty("behavior", "Isolated");
          split.addProperty("invert", false);
          JsonObject byteLevel = new JsonObject();
          byteLevel.addProperty("type", "ByteLevel");
          byteLevel.addProperty("add_prefix_space", false);
          byteLevel.addProperty("trim_offsets", true);
          byteLevel.addProperty("use_regex", false);
          JsonArray seq = new JsonArray();
          seq.add(split);
          seq.add(byteLevel);
          JsonObject pre = new JsonObject();
          pre.addProperty("type", "Sequence");
          pre.add("pretokenizers", seq);
          root.add("pre_tokenizer", pre);
        });
  }

  static Path prefixSpace() throws IOException {
    return variant(
        "prefix",
        root -> root.getAsJsonObject("pre_tokenizer").addProperty("add_prefix_space", true));
  }

  static Path nfcIgnoreMerges() throws IOException {
    return variant(
        "nfc",
        root -> {
          JsonObject nfc = new JsonObject();
          nfc.addProperty("type", "NFC");
          root.add("normalizer", nfc);
          root.getAsJsonObject("model").addProperty("ignore_merges", true);
        });
  }

  static Path pathOf(String name) throws IOException {
    return switch (name) {
      case "gpt2" -> gpt2;
      case "llama3" -> llama3Split();
      case "prefix" -> prefixSpace();
      case "nfc" -> nfcIgnoreMerges();
      default -> throw new IllegalArgumentException(name);
    };
  }

  @ParameterizedTest
  @ValueSource(strings = {"gpt2", "llama3", "prefix", "nfc"})
  void encodesAndDecodesLikeTheRustTokenizers(String name) throws IOException {
    Path json = pathOf(name);
    BpeTokenizer ours = BpeTokenizer.load(json);
    assertThat(ours.encodeUnsupported()).isNull();
    List<String> texts = new ArrayList<>(TEXTS);
    SplittableRandom r = new SplittableRandom(42);
    for (int i = 0; i < 40; i++) {
      texts.add(randomText(r, 1 + r.nextInt(60)));
    }
    try (TextTokenizer reference = TextTokenizer.load(json)) {
      assertThat(ours.sha256()).isEqualTo(reference.sha256());
      assertThat(ours.vocabSize()).isEqualTo(reference.vocabSize());
      for (String text : texts) {
        int[] expected = reference.encode(text);
        assertThat(ours.encode(text, false)).as("encode %s", quote(text)).containsExactly(expected);
        assertThat(ours.encode(text, true))
            .as("encode with specials %s", quote(text))
            .containsExactly(reference.encode(text, true));
        assertThat(ours.decode(expected, false))
            .as("decode %s", quote(text))
            .isEqualTo(reference.decode(expected, false));
        assertThat(ours.decode(expected, true))
            .as("decode skipping specials %s", quote(text))
            .isEqualTo(reference.decode(expected, true));
      }
    }
  }

  @Test
  void decodesArbitraryIdSequencesLikeTheRustTokenizers() throws IOException {
    BpeTokenizer ours = BpeTokenizer.load(gpt2);
    SplittableRandom r = new SplittableRandom(7);
    try (TextTokenizer reference = TextTokenizer.load(gpt2)) {
      for (int i = 0; i < 300; i++) {
        int[] ids = new int[1 + r.nextInt(12)];
        for (int j = 0; j < ids.length; j++) {
          // Mostly single bytes (ids 2..257), which split characters and make invalid UTF-8.
          ids[j] = r.nextInt(4) == 0 ? r.nextInt(1024) : 2 + r.nextInt(256);
        }
        assertThat(ours.decode(ids, false))
            .as("decode %s", java.util.Arrays.toString(ids))
            .isEqualTo(reference.decode(ids, false));
      }
    }
  }

  @Test
  void streamingDecodeNeverSplitsACharacter() throws IOException {
    BpeTokenizer tok = BpeTokenizer.load(gpt2);
    for (String text : TEXTS) {
      int[] ids = tok.encode(text, false);
      Utf8Stream stream = new Utf8Stream();
      StringBuilder streamed = new StringBuilder();
      for (int id : ids) {
        String delta = stream.push(tok.tokenBytes(id));
        assertThat(delta).doesNotContain("\uFFFD");
        streamed.append(delta);
      }
      streamed.append(stream.finish());
      assertThat(streamed.toString()).isEqualTo(text);
    }
  }

  @Test
  void utf8StreamHoldsAnIncompleteCharacterAndReplacesItAtTheEnd() {
    byte[] rocket = "🚀".getBytes(StandardCharsets.UTF_8); // 4 bytes
    Utf8Stream s = new Utf8Stream();
    assertThat(s.push(new byte[] {'a', rocket[0]})).isEqualTo("a");
    assertThat(s.push(new byte[] {rocket[1], rocket[2]})).isEmpty();
    assertThat(s.heldBytes()).isEqualTo(3);
    assertThat(s.push(new byte[] {rocket[3], 'b'})).isEqualTo("🚀b");
    assertThat(s.push(new byte[] {rocket[0], rocket[1]})).isEmpty();
    assertThat(s.finish()).isEqualTo("\uFFFD");
  }

  @Test
  void unsupportedPipelineStillDecodesButRefusesToEncode() throws IOException {
    Path json =
        variant(
            "unigram",
            root -> {
              JsonObject pre = new JsonObject();
              pre.addProperty("type", "Whitespace");
              root.add("pre_tokenizer", pre);
            });
    BpeTokenizer tok = BpeTokenizer.load(json);
    assertThat(tok.encodeUnsupported()).contains("pre_tokenizer Whitespace");
    assertThatThrownBy(() -> tok.encode("hi", false))
        .isInstanceOf(UnsupportedOperationException.class);
    BpeTokenizer gpt = BpeTokenizer.load(gpt2);
    int[] ids = gpt.encode("decode still works", false);
    assertThat(tok.decode(ids, false)).isEqualTo("decode still works");
  }

  @Test
  void rejectsFilesThatAreNotTokenizers() throws IOException {
    Path bad = dir.resolve("bad.json");
    Files.writeString(bad, "[1, 2]");
    assertThatThrownBy(() -> BpeTokenizer.load(bad))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("expected a JSON object");
    Files.writeString(bad, "{\"added_tokens\": []}");
    assertThatThrownBy(() -> BpeTokenizer.load(bad)).hasMessageContaining("missing model");
  }

  /** Random text mixing ASCII, Latin-1, combining marks, CJK, emoji, whitespace and controls. */
  static String randomText(SplittableRandom r, int codePoints) {
    int[][] ranges = {
      {0x20, 0x7E},
      {0x20, 0x7E},
      {0x20, 0x7E},
      {0x09, 0x0D},
      {0xA0, 0xFF},
      {0x0300, 0x036F},
      {0x0400, 0x04FF},
      {0x4E00, 0x9FFF},
      {0x1F300, 0x1FAFF},
      {0x2000, 0x206F}
    };
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < codePoints; i++) {
      int[] range = ranges[r.nextInt(ranges.length)];
      sb.appendCodePoint(r.nextInt(range[0], range[1] + 1));
    }
    return sb.toString();
  }

  @Test
  void literalTextNeverBecomesASpecialToken() throws IOException {
    BpeTokenizer tok = BpeTokenizer.load(gpt2);
    String eos = RandomCheckpoint.EOS_TOKEN;
    int eosId = tok.encode(eos, false)[0];
    assertThat(tok.encode(eos, false)).containsExactly(eosId);
    String user = "hi " + eos + " there" + eos;
    String text = eos + user + eos; // template, user text, template
    int[] ids = tok.encode(text, new int[] {eos.length(), eos.length() + user.length()}, false);
    // The template's two are matched; the user's two stay text that decodes back to itself.
    assertThat(java.util.Arrays.stream(ids).filter(id -> id == eosId).count()).isEqualTo(2);
    assertThat(ids[0]).isEqualTo(eosId);
    assertThat(ids[ids.length - 1]).isEqualTo(eosId);
    assertThat(tok.decode(java.util.Arrays.copyOfRange(ids, 1, ids.length - 1), false))
        .isEqualTo(user);
    // A special token straddling the boundary into literal text is not matched either.
    String half = eos.substring(0, 5);
    int[] straddle = tok.encode(half + eos.substring(5), new int[] {5, eos.length()}, false);
    assertThat(straddle).doesNotContain(eosId);
    // Benign text encodes the same with or without literal ranges.
    for (String t : TEXTS) {
      if (!t.contains("<|")) {
        assertThat(tok.encode(t, new int[] {0, t.length() / 2}, true))
            .as(quote(t))
            .containsExactly(tok.encode(t, true));
      }
    }
  }

  /** Long unbroken words (one pre-token each), where merge order matters most. */
  @ParameterizedTest
  @ValueSource(strings = {"gpt2", "llama3", "prefix", "nfc"})
  void longUnbrokenWordsEncodeLikeTheRustTokenizers(String name) throws IOException {
    Path json = pathOf(name);
    BpeTokenizer ours = BpeTokenizer.load(json);
    SplittableRandom r = new SplittableRandom(11);
    try (TextTokenizer reference = TextTokenizer.load(json)) {
      for (int i = 0; i < 20; i++) {
        StringBuilder word = new StringBuilder();
        String alphabet = i % 2 == 0 ? "the" : "abcdefghijklmnopqrstuvwxyz";
        int n = 200 + r.nextInt(2000);
        for (int j = 0; j < n; j++) {
          word.append(alphabet.charAt(r.nextInt(alphabet.length())));
        }
        String text = word.toString();
        assertThat(ours.encode(text, false))
            .as("encode a %d-letter word", n)
            .containsExactly(reference.encode(text));
      }
    }
  }

  /**
   * A 1 MiB word is one pre-token: merging it by rescanning every pair after each merge is O(n²)
   * (about 10^12 pair lookups here, hours of a router thread). Merging in rank order from a heap is
   * O(n log n). The timeout is a guard against the quadratic algorithm, orders of magnitude above
   * what the linear-logarithmic one needs, not a measurement.
   */
  @Test
  void aOneMebibyteWordEncodesInBoundedTime() throws IOException {
    BpeTokenizer tok = BpeTokenizer.load(gpt2);
    String word = "thethe".repeat((1 << 20) / 6) + "x";
    int[] ids =
        org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
            java.time.Duration.ofSeconds(60), () -> tok.encode(word, false));
    assertThat(tok.decode(ids, false)).isEqualTo(word);
  }

  private static String quote(String s) {
    return "\"" + s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t") + "\"";
  }

  /** Found by TokenizerFuzzTest: malformed files escaped with messages that named no file. */
  @Test
  void malformedTokenizerFilesAreRefusedNamingTheFile() {
    String badRegex =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},"
            + "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"((\"},"
            + "\"behavior\":\"Isolated\"}}";
    assertThatThrownBy(
            () -> BpeTokenizer.parse(badRegex.getBytes(StandardCharsets.UTF_8), "t.json"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("t.json: pre_tokenizer Split pattern.Regex: Unclosed group");
    String wrongType = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":{\"x\":1}},\"merges\":[]}}";
    assertThatThrownBy(
            () -> BpeTokenizer.parse(wrongType.getBytes(StandardCharsets.UTF_8), "t.json"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("t.json: not a tokenizer.json this router reads:");
  }
}
