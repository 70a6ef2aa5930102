package io.draftmesh.zoo;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A small synthetic corpus in the shape of the real one, for fast tests. */
final class TinyCorpus {
  private static final String[] SUBJECTS = {
    "And the LORD", "The king", "A wise man", "The people", "My son", "The fool", "Thy servant"
  };
  private static final String[] VERBS = {"said unto", "spake to", "went up to", "blessed", "saw"};
  private static final String[] OBJECTS = {
    "the children of Israel", "his brethren", "the city", "all the congregation", "the prophet"
  };
  private static final String[] ENDINGS = {
    ", saying, Fear not.", " in that day.", ", and it was so.", " upon the mountain.", "."
  };

  private TinyCorpus() {}

  /** About {@code chapters} KJV-like chapters and as many fortunes, deterministic. */
  static List<Corpus.Doc> docs(int chapters) {
    SplitMix64 rng = new SplitMix64(42);
    List<Corpus.Doc> docs = new ArrayList<>();
    for (int c = 0; c < chapters; c++) {
      StringBuilder text = new StringBuilder();
      int verses = 8 + rng.nextInt(8);
      for (int v = 0; v < verses; v++) {
        if (v > 0) {
          text.append('\n');
        }
        text.append(SUBJECTS[rng.nextInt(SUBJECTS.length)])
            .append(' ')
            .append(VERBS[rng.nextInt(VERBS.length)])
            .append(' ')
            .append(OBJECTS[rng.nextInt(OBJECTS.length)])
            .append(ENDINGS[rng.nextInt(ENDINGS.length)]);
      }
      docs.add(new Corpus.Doc(Corpus.KJV, "Tiny " + (c + 1), text.toString()));
      docs.add(
          new Corpus.Doc(
              Corpus.FORTUNES,
              "tiny/" + c,
              "A fortune number "
                  + c
                  + " says: "
                  + SUBJECTS[rng.nextInt(SUBJECTS.length)].toLowerCase()
                  + " "
                  + VERBS[rng.nextInt(VERBS.length)]
                  + " "
                  + OBJECTS[rng.nextInt(OBJECTS.length)]
                  + " and laughs about it all day long."));
    }
    return docs;
  }

  /** Writes the tiny corpus (split, prompts, manifest) into {@code dir}. */
  static Corpus write(Path dir, int chapters) throws IOException {
    return Corpus.write(dir, docs(chapters));
  }
}
