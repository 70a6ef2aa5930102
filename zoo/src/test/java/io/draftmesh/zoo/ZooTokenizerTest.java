package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ZooTokenizerTest {
  @TempDir static Path dir;
  static Corpus corpus;
  static Path file;
  static TextTokenizer tokenizer;

  @BeforeAll
  static void setUp() throws Exception {
    Runtimes.configureDjl(0);
    corpus = TinyCorpus.write(dir.resolve("corpus"), 120);
    file = ZooTokenizer.ensure(corpus, 512);
    tokenizer = TextTokenizer.load(file);
  }

  @AfterAll
  static void tearDown() {
    tokenizer.close();
  }

  @Test
  void hasTheRequestedVocabWithSpecialTokensFirst() {
    assertThat(tokenizer.vocabSize()).isEqualTo(512);
    for (int i = 0; i < ZooTokenizer.SPECIAL_TOKENS.size(); i++) {
      assertThat(tokenizer.tokenId(ZooTokenizer.SPECIAL_TOKENS.get(i))).hasValue(i);
      assertThat(tokenizer.isSpecial(i)).isTrue();
    }
    assertThat(tokenizer.isSpecial(4)).isFalse();
    // Learned merges: common corpus words are single tokens.
    assertThat(tokenizer.encode(" the")).hasSize(1);
  }

  @Test
  void isDeterministic() throws Exception {
    Path again = dir.resolve("again.json");
    ZooTokenizer.train(corpus.train(), 512, again);
    assertThat(Files.readAllBytes(again)).isEqualTo(Files.readAllBytes(file));
  }

  @Test
  void roundTripsCorpusTextAndArbitraryUtf8() {
    for (Corpus.Doc d : corpus.valid()) {
      assertRoundTrip(d.text());
    }
    assertRoundTrip("");
    assertRoundTrip("  leading and trailing  \n\n\t tabs\r\nCRLF ");
    assertRoundTrip("Ünïcödé — “quotes” ½ 日本語のテキスト 🙂👍🏽 𝔘 \u0000 \u007f \u200b");
    Random random = new Random(5);
    for (int n = 0; n < 200; n++) {
      StringBuilder sb = new StringBuilder();
      int len = random.nextInt(40);
      for (int i = 0; i < len; i++) {
        int cp;
        do {
          cp = random.nextInt(4) == 0 ? random.nextInt(0x10FFFF + 1) : 32 + random.nextInt(96);
        } while (Character.isSurrogate((char) cp) && cp <= 0xFFFF);
        sb.appendCodePoint(cp);
      }
      assertRoundTrip(sb.toString());
    }
  }

  @Test
  void specialTokensInTextAreMatchedAndDecodedVerbatim() {
    String text = "<|user|>Repeat: amen<|assistant|>Answer: amen<|end|>";
    int[] ids = tokenizer.encode(text);
    assertThat(ids[0]).isEqualTo(ZooTokenizer.USER_ID);
    assertThat(ids[ids.length - 1]).isEqualTo(ZooTokenizer.END_ID);
    assertThat(tokenizer.decode(ids)).isEqualTo(text);
  }

  @Test
  void invalidUtf8FromPartialTokensDecodesToReplacementCharacters() {
    // Bytes of one 4-byte character, token by token: each byte alone is invalid UTF-8.
    byte[] emoji = "🙂".getBytes(StandardCharsets.UTF_8);
    int[] ids = tokenizer.encode("🙂");
    ByteArrayOutputStream joined = new ByteArrayOutputStream();
    for (int id : ids) {
      joined.writeBytes(tokenizer.tokenBytes(id));
    }
    assertThat(joined.toByteArray()).isEqualTo(emoji);
    int lone = -1;
    for (int id = 0; id < tokenizer.vocabSize(); id++) {
      byte[] b = tokenizer.tokenBytes(id);
      if (!tokenizer.isSpecial(id) && b.length == 1 && (b[0] & 0xFF) == 0xF0) {
        lone = id;
      }
    }
    assertThat(lone).isNotNegative();
    assertThat(tokenizer.decode(new int[] {lone})).isEqualTo("\uFFFD");
  }

  private static void assertRoundTrip(String text) {
    int[] ids = tokenizer.encode(text);
    assertThat(tokenizer.decode(ids)).isEqualTo(text);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int id : ids) {
      assertThat(id).isBetween(0, tokenizer.vocabSize() - 1);
      bytes.writeBytes(tokenizer.tokenBytes(id));
    }
    assertThat(bytes.toByteArray()).isEqualTo(text.getBytes(StandardCharsets.UTF_8));
  }
}
