package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CorpusTest {
  @TempDir Path dir;

  @Test
  void extractsKjvChaptersWithVerseReferencesStripped() {
    String bible =
        "\nGenesis 1\n\n"
            + "  1 In the beginning God created the heaven and the earth.\n"
            + "  2 And the earth was without form, and void; and darkness was upon the face of\n"
            + "the deep. And the Spirit of God moved upon the face of the waters.\n"
            + "\n1 Samuel 2\n\n"
            + "  1 And Hannah prayed, and said,\n"
            + "  10 My heart rejoiceth in the LORD.\n";
    List<Corpus.Doc> docs = Corpus.extractKjv(bible);
    assertThat(docs)
        .containsExactly(
            new Corpus.Doc(
                "kjv",
                "Genesis 1",
                "In the beginning God created the heaven and the earth.\n"
                    + "And the earth was without form, and void; and darkness was upon the face of"
                    + " the deep. And the Spirit of God moved upon the face of the waters."),
            new Corpus.Doc(
                "kjv",
                "1 Samuel 2",
                "And Hannah prayed, and said,\nMy heart rejoiceth in the LORD."));
  }

  @Test
  void rejectsTextOutsideAVerse() {
    assertThatThrownBy(() -> Corpus.extractKjv("Genesis 1\nstray text\n"))
        .hasMessageContaining("stray text");
  }

  @Test
  void extractsFortunesSkippingIndexesSymlinksAndOffensiveDirectory() throws Exception {
    Path f = dir.resolve("fortunes");
    Files.createDirectories(f.resolve("off"));
    Files.writeString(
        f.resolve("wisdom"),
        "Be wise.\n%\nA bell\u0007 rings.   \n  -- Anon\n%\n%\nLast one.\n",
        StandardCharsets.UTF_8);
    Files.write(f.resolve("wisdom.dat"), new byte[] {0, 1, 2, (byte) 0xFF});
    Files.createSymbolicLink(f.resolve("wisdom.u8"), f.resolve("wisdom"));
    Files.createSymbolicLink(f.resolve("alias"), f.resolve("wisdom"));
    Files.writeString(f.resolve("off").resolve("rude"), "Rude.\n%\n");
    List<Corpus.Doc> docs = Corpus.extractFortunes(f);
    assertThat(docs)
        .containsExactly(
            new Corpus.Doc("fortunes", "wisdom/0", "Be wise."),
            new Corpus.Doc("fortunes", "wisdom/1", "A bell rings.\n  -- Anon"),
            new Corpus.Doc("fortunes", "wisdom/2", "Last one."));
  }

  @Test
  void splitIsFixedByContentAndWrittenWithPrompts() throws Exception {
    Corpus a = TinyCorpus.write(dir.resolve("a"), 300);
    List<Corpus.Doc> reversed = new java.util.ArrayList<>(TinyCorpus.docs(300));
    java.util.Collections.reverse(reversed);
    Corpus b = Corpus.write(dir.resolve("b"), reversed);
    assertThat(a.valid()).isNotEmpty();
    assertThat(a.valid()).containsExactlyInAnyOrderElementsOf(b.valid());
    assertThat(a.train()).doesNotContainAnyElementsOf(a.valid());
    double share = (double) a.valid().size() / (a.valid().size() + a.train().size());
    assertThat(share).isBetween(0.005, 0.08);
    for (Corpus.Doc d : a.valid()) {
      assertThat(Corpus.isValidation(d.text())).isTrue();
    }
    assertThat(a.prompts()).isNotEmpty();
    for (Corpus.Prompt p : a.prompts()) {
      assertThat(p.prompt().split("\\s+")).hasSize(Corpus.PROMPT_WORDS);
      assertThat(a.valid().stream().anyMatch(d -> d.text().contains(p.prompt() + p.reference())))
          .as(p.id())
          .isTrue();
    }
    Corpus reloaded = Corpus.load(dir.resolve("a"));
    assertThat(reloaded.train()).isEqualTo(a.train());
    assertThat(reloaded.prompts()).isEqualTo(a.prompts());
    assertThat(Files.readString(dir.resolve("a/manifest.json"))).contains("\"format\": 3");
  }

  @Test
  void duplicatesAreDropped() throws Exception {
    Corpus.Doc d = new Corpus.Doc("fortunes", "x/0", "Same text.");
    Corpus c =
        Corpus.write(
            dir.resolve("dup"), List.of(d, new Corpus.Doc("fortunes", "y/0", "Same text.")));
    assertThat(c.train().size() + c.valid().size()).isEqualTo(1);
  }

  @Test
  void unitsAreVersesAndPlainProseFortunes() {
    assertThat(Corpus.units(new Corpus.Doc("kjv", "G 1", "a b\nc d")))
        .containsExactly("a b", "c d");
    assertThat(Corpus.units(new Corpus.Doc("fortunes", "f/0", "Plain words\nwrapped here.")))
        .hasSize(1);
    assertThat(Corpus.units(new Corpus.Doc("fortunes", "f/1", "Quote.\n\t\t-- Someone"))).isEmpty();
    assertThat(Corpus.units(new Corpus.Doc("fortunes", "f/2", "/--\\ |__| \\__/ ++ ** ##")))
        .isEmpty();
  }
}
