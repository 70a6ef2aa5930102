package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InstructionsTest {
  @TempDir static Path dir;
  static TextTokenizer tokenizer;
  static final Instructions.Example REPEAT =
      new Instructions.Example("repeat", "Repeat: the city", "the city");

  @BeforeAll
  static void setUp() throws Exception {
    Runtimes.configureDjl(0);
    Corpus corpus = TinyCorpus.write(dir.resolve("corpus"), 60);
    tokenizer = TextTokenizer.load(ZooTokenizer.ensure(corpus, 384));
  }

  @AfterAll
  static void tearDown() {
    tokenizer.close();
  }

  private static int[] reply(String text) {
    return tokenizer.encode(text);
  }

  @Test
  void judgesTheTemplate() {
    assertThat(Instructions.judge(REPEAT, reply("Answer: the city<|end|>"), tokenizer))
        .extracting(Instructions.Verdict::complies, Instructions.Verdict::correct)
        .containsExactly(true, true);
    assertThat(Instructions.judge(REPEAT, reply("Answer: the king<|end|>"), tokenizer))
        .extracting(Instructions.Verdict::complies, Instructions.Verdict::correct)
        .containsExactly(true, false);
    // Tokens after <|end|> are never looked at (generation stops there).
    assertThat(Instructions.judge(REPEAT, reply("Answer: x<|end|>trailing"), tokenizer).complies())
        .isTrue();
    for (String bad :
        List.of(
            "Answer: the city", // never ended
            "the city<|end|>", // no prefix
            "answer: the city<|end|>", // wrong case
            "Answer:  the city<|end|>", // double space
            "Answer: <|end|>", // empty
            "Answer: the<|endoftext|>city<|end|>", // another special token first
            " Answer: the city<|end|>")) {
      assertThat(Instructions.judge(REPEAT, reply(bad), tokenizer).complies()).as(bad).isFalse();
    }
  }

  @Test
  void encodedExamplesTrainOnTheReplyOnly() {
    Instructions.Encoded e = Instructions.encode(REPEAT, tokenizer);
    assertThat(e.ids()[0]).isEqualTo(ZooTokenizer.END_OF_TEXT_ID);
    assertThat(e.ids()[1]).isEqualTo(ZooTokenizer.USER_ID);
    assertThat(e.ids()[e.ids().length - 1]).isEqualTo(ZooTokenizer.END_ID);
    int assistant = -1;
    for (int i = 0; i < e.ids().length; i++) {
      if (e.ids()[i] == ZooTokenizer.ASSISTANT_ID) {
        assistant = i;
      }
    }
    for (int i = 0; i < e.ids().length; i++) {
      assertThat(e.trained()[i]).as("position " + i).isEqualTo(i > assistant);
    }
    int[] replyIds = Arrays.copyOfRange(e.ids(), assistant + 1, e.ids().length);
    assertThat(tokenizer.decode(replyIds)).isEqualTo("Answer: the city<|end|>");
    int[] prompt = Instructions.promptIds(REPEAT, tokenizer);
    assertThat(prompt).isEqualTo(Arrays.copyOf(e.ids(), assistant + 1));
  }

  @Test
  void generatedExamplesAreWellFormed() {
    SplitMix64 rng = new SplitMix64(9);
    List<String> tasks = new ArrayList<>();
    String unit = "And the LORD said unto Moses, Go in unto Pharaoh";
    for (int i = 0; i < 200; i++) {
      Instructions.Example e = Instructions.example(unit, rng);
      tasks.add(e.task());
      assertThat(e.answer()).isNotBlank();
      switch (e.task()) {
        case "repeat" -> assertThat(e.instruction()).isEqualTo("Repeat: " + e.answer());
        case "first-word" -> assertThat(e.instruction()).contains(": " + e.answer() + " ");
        case "last-word" -> assertThat(e.instruction()).endsWith(" " + e.answer());
        default -> assertThat(unit).contains(e.instruction().substring(19) + " " + e.answer());
      }
    }
    assertThat(tasks).containsAll(Instructions.TASKS);
  }

  @Test
  void evalSetCoversEveryTask() {
    List<Corpus.Prompt> prompts = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      prompts.add(
          new Corpus.Prompt(
              "kjv", "x " + i, "one two three four five six seven eight", " nine ten eleven"));
    }
    List<Instructions.Example> set = Instructions.evalSet(prompts);
    assertThat(set).hasSize(8);
    assertThat(set.stream().map(Instructions.Example::task)).containsAll(Instructions.TASKS);
    assertThat(set.get(0).answer()).isEqualTo("nine ten eleven");
    assertThat(set.get(2).answer()).isEqualTo("one");
    assertThat(set.get(3).answer()).isEqualTo("eight");
  }
}
