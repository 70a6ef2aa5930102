package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class KnowledgeTasksTest {
  static final List<Corpus.Doc> DOCS =
      List.of(
          new Corpus.Doc(
              Corpus.KJV,
              "Genesis 1",
              "In the beginning God created the heaven and the"
                  + " earth.\nAnd the earth was without form, and void; and darkness was upon the face"
                  + " of the deep.\nAnd God said, Let there be light: and there was light."),
          new Corpus.Doc(
              Corpus.FORTUNES,
              "fortunes/1",
              "A journey of a thousand miles begins" + " with a single step and a sore foot."));

  @Test
  void versesCarryTheirReferences() {
    List<KnowledgeTasks.Verse> v = KnowledgeTasks.verses(DOCS);
    assertThat(v).hasSize(3);
    assertThat(v.get(2).reference()).isEqualTo("Genesis 1:3");
    assertThat(KnowledgeTasks.referenced(v.get(2)))
        .isEqualTo("Genesis 1:3 And God said, Let there be light: and there was light.");
  }

  @Test
  void recallAsksForTheVerseOfAReference() {
    List<KnowledgeTasks.Example> set = KnowledgeTasks.evalSet("recall", DOCS, 6);
    assertThat(set).hasSize(6).isEqualTo(KnowledgeTasks.evalSet("recall", DOCS, 6));
    for (KnowledgeTasks.Example e : set) {
      int verse = Integer.parseInt(e.prompt().substring(e.prompt().indexOf(':') + 1));
      assertThat(e.prompt()).startsWith(ZooTokenizer.END_OF_TEXT + "Genesis 1:");
      assertThat(e.answer()).isEqualTo(" " + DOCS.get(0).text().split("\n")[verse - 1]);
    }
  }

  @Test
  void continuationsSplitAtHalfTheWords() {
    for (KnowledgeTasks.Example e : KnowledgeTasks.evalSet("fortune-continue", DOCS, 2)) {
      // 15 words: the first 7 are the cue.
      assertThat(e.prompt())
          .isEqualTo(ZooTokenizer.END_OF_TEXT + "A journey of a thousand miles begins");
      assertThat(e.answer()).isEqualTo(" with a single step and a sore foot.");
    }
    for (KnowledgeTasks.Example e : KnowledgeTasks.evalSet("verse-continue", DOCS, 3)) {
      String whole = e.prompt().substring(ZooTokenizer.END_OF_TEXT.length()) + e.answer();
      assertThat(DOCS.get(0).text().split("\n")).contains(whole);
    }
  }
}
