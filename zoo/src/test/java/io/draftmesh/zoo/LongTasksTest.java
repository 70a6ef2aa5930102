package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class LongTasksTest {
  @TempDir static Path dir;
  static Corpus corpus;
  static TextTokenizer tokenizer;
  static LongTasks train;
  static LongTasks heldOut;

  @BeforeAll
  static void setUp() throws Exception {
    corpus = TinyCorpus.write(dir.resolve("corpus"), 150);
    tokenizer = TextTokenizer.load(ZooTokenizer.ensure(corpus, 384));
    train = new LongTasks(corpus.train(), tokenizer);
    heldOut = new LongTasks(corpus.valid(), tokenizer);
  }

  @AfterAll
  static void tearDown() {
    tokenizer.close();
  }

  @ParameterizedTest
  @ValueSource(strings = {"passkey", "word", "multikey", "multivalue", "vartrack", "verse"})
  void deterministicPerSeedAndDifferentAcrossSeeds(String task) {
    LongTasks.Instance a = train.generate(task, 400, Double.NaN, new SplitMix64(11));
    LongTasks.Instance b = train.generate(task, 400, Double.NaN, new SplitMix64(11));
    LongTasks.Instance c = train.generate(task, 400, Double.NaN, new SplitMix64(12));
    assertThat(a).isEqualTo(b);
    assertThat(c.prompt()).isNotEqualTo(a.prompt());
  }

  @ParameterizedTest
  @ValueSource(strings = {"passkey", "word", "multikey", "multivalue", "vartrack", "verse"})
  void promptsFitTheirLengthAndEndInTheQuestion(String task) {
    SplitMix64 rng = new SplitMix64(3);
    for (int len : List.of(300, 700, 1000)) {
      LongTasks.Instance inst = train.generate(task, len, Double.NaN, rng);
      int tokens = tokenizer.encode(inst.prompt()).length;
      assertThat(tokens).as(task + " at " + len).isLessThanOrEqualTo(len);
      if (!task.equals("verse")) { // a chapter may be shorter than the prompt
        assertThat(tokens).as(task + " at " + len).isGreaterThan(len - 60);
      }
      assertThat(inst.prompt()).startsWith(ZooTokenizer.END_OF_TEXT).contains("\nQuestion: ");
      assertThat(inst.prompt()).doesNotEndWith(" ");
      assertThat(inst.answer()).startsWith(" ").doesNotContain("\n");
      assertThat(inst.values()).isNotEmpty();
    }
  }

  @Test
  void singleNeedleIsStatedExactlyOnceAtItsDepth() {
    SplitMix64 rng = new SplitMix64(5);
    for (String task : List.of("passkey", "word")) {
      for (double depth : new double[] {0, 0.25, 0.5, 0.75, 1}) {
        LongTasks.Instance inst = train.generate(task, 600, depth, rng);
        String key = inst.values().get(0);
        assertThat(occurrences(inst.prompt(), key)).as(inst.prompt()).isEqualTo(1);
        if (task.equals("passkey")) {
          assertThat(key).matches("[1-9][0-9]{4,6}");
        }
        assertThat(inst.depthPercent()).isEqualTo((int) Math.round(100 * depth));
        // The statement's line sits at the requested fraction of the haystack's lines.
        String[] lines = haystackLines(inst.prompt());
        int at = -1;
        for (int i = 0; i < lines.length; i++) {
          if (lines[i].contains(key)) {
            at = i;
          }
        }
        assertThat((double) at / (lines.length - 1))
            .isCloseTo(depth, org.assertj.core.api.Assertions.within(0.06));
      }
    }
  }

  @Test
  void multiTasksStateEveryAnswerOnceAndAskForTheRightOnes() {
    SplitMix64 rng = new SplitMix64(8);
    for (int i = 0; i < 10; i++) {
      LongTasks.Instance mk = train.generate("multikey", 500, Double.NaN, rng);
      assertThat(occurrences(mk.prompt(), "The pass key for ")).isEqualTo(LongTasks.MULTI_KEYS + 1);
      assertThat(occurrences(mk.prompt(), mk.values().get(0))).isEqualTo(1);
      String asked = mk.prompt().substring(mk.prompt().lastIndexOf("The pass key for "));
      assertThat(mk.prompt()).contains(asked.replace(" is", " is " + mk.values().get(0) + "."));

      LongTasks.Instance mv = train.generate("multivalue", 500, Double.NaN, rng);
      assertThat(mv.values()).hasSize(LongTasks.MULTI_VALUES);
      int last = -1;
      for (String v : mv.values()) {
        assertThat(occurrences(mv.prompt(), v)).isEqualTo(1);
        int at = mv.prompt().indexOf(v);
        assertThat(at).as("values in order of appearance").isGreaterThan(last);
        last = at;
      }
      assertThat(mv.answer()).isEqualTo(" " + String.join(", ", mv.values()));

      LongTasks.Instance vt = train.generate("vartrack", 500, Double.NaN, rng);
      assertThat(vt.values()).hasSize(LongTasks.CHAIN_HOPS);
      for (String name : vt.values()) {
        assertThat(occurrences(vt.prompt(), "VAR " + name + " = ")).isEqualTo(1);
      }
      // Follow the chain from the asked value: it reaches exactly the expected names, in order.
      String value = vt.prompt().replaceAll("(?s).*assigned the value (\\d+)\\?.*", "$1");
      List<String> bound = new ArrayList<>();
      String current = value;
      for (String line : vt.prompt().split("\n")) {
        if (line.startsWith("VAR ") && line.endsWith(" = " + current + ".")) {
          String name = line.substring(4, line.indexOf(" = "));
          bound.add(name);
          current = "VAR " + name;
        }
      }
      assertThat(bound).isEqualTo(vt.values());
    }
  }

  @Test
  void verseLookupAsksForAVerseOfTheGivenChapter() {
    StringBuilder chapter = new StringBuilder();
    for (int v = 1; v <= 30; v++) {
      chapter.append(v > 1 ? "\n" : "").append("The king went up to city number ").append(1000 + v);
      chapter.append(" and ").append(v % 2 == 0 ? "blessed it." : "was glad.");
    }
    LongTasks tasks =
        new LongTasks(List.of(new Corpus.Doc(Corpus.KJV, "Tiny 1", chapter.toString())), tokenizer);
    SplitMix64 rng = new SplitMix64(9);
    for (int i = 0; i < 10; i++) {
      LongTasks.Instance inst = tasks.generate("verse", 300, Double.NaN, rng);
      int n =
          Integer.parseInt(inst.prompt().replaceAll("(?s).*What does verse (\\d+) say\\?.*", "$1"));
      String line = n + inst.answer() + "\n";
      assertThat(inst.prompt()).containsAnyOf("\n" + line, ZooTokenizer.END_OF_TEXT + line);
      assertThat(occurrences(inst.prompt(), inst.answer().strip())).isEqualTo(1);
      assertThat(tokenizer.encode(inst.prompt()).length).isLessThanOrEqualTo(300);
      assertThat(inst.fillerIds()).hasSize(1);
    }
  }

  @Test
  void trainAndHeldOutInstancesNeverShareFillerOrAKey() {
    Set<String> trainIds = new HashSet<>();
    for (Corpus.Doc d : corpus.train()) {
      trainIds.add(d.id());
    }
    List<LongTasks.Instance> held = new ArrayList<>(heldOut.evalGrid(2));
    held.addAll(heldOut.evalSet("multikey", 512, 5));
    List<LongTasks.Instance> trained = new ArrayList<>();
    SplitMix64 rng = new SplitMix64(1);
    for (int i = 0; i < 60; i++) {
      trained.add(train.generate(LongTasks.TASKS.get(i % 6), 512, Double.NaN, rng));
    }
    Set<String> heldIds = LongTasks.fillerIds(held);
    assertThat(heldIds).isNotEmpty().doesNotContainAnyElementsOf(trainIds);
    assertThat(LongTasks.fillerIds(trained)).isSubsetOf(trainIds);
    Set<String> pairs = new HashSet<>();
    for (LongTasks.Instance t : trained) {
      for (String id : t.fillerIds()) {
        pairs.add(id + "|" + t.values());
      }
    }
    for (LongTasks.Instance h : held) {
      for (String id : h.fillerIds()) {
        assertThat(pairs).doesNotContain(id + "|" + h.values());
      }
    }
  }

  @Test
  void heldOutSetsAreFixed() {
    assertThat(heldOut.evalGrid(2)).isEqualTo(heldOut.evalGrid(2));
    assertThat(heldOut.evalGrid(2))
        .hasSize(LongTasks.GRID_LENGTHS.size() * LongTasks.GRID_DEPTHS.size() * 2);
    assertThat(heldOut.evalSet("multikey", 1024, 3))
        .isEqualTo(heldOut.evalSet("multikey", 1024, 3));
    for (LongTasks.Instance i : heldOut.evalGrid(1)) {
      assertThat(tokenizer.encode(i.prompt()).length + LongTasks.ANSWER_ROOM)
          .isLessThanOrEqualTo(LongTasks.GRID_LENGTHS.get(LongTasks.GRID_LENGTHS.size() - 1));
    }
  }

  @Test
  void badRequestsNameWhatWasExpected() {
    assertThatThrownBy(() -> train.generate("nope", 500, 0, new SplitMix64(1)))
        .hasMessageContaining("task nope (expected: one of passkey");
    assertThatThrownBy(() -> train.generate("multikey", 20, 0, new SplitMix64(1)))
        .hasMessageContaining("too short");
  }

  private static int occurrences(String text, String needle) {
    int n = 0;
    for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
      n++;
    }
    return n;
  }

  /** The haystack's lines: after end-of-text, before the blank line that precedes the question. */
  private static String[] haystackLines(String prompt) {
    String body =
        prompt.substring(ZooTokenizer.END_OF_TEXT.length(), prompt.lastIndexOf("\n\nQuestion: "));
    return body.split("\n");
  }
}
