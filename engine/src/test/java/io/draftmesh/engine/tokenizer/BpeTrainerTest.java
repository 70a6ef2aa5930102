package io.draftmesh.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import org.junit.jupiter.api.Test;

class BpeTrainerTest {

  private static List<String> mergeStrings(BpeTrainer.Result r) {
    List<String> out = new ArrayList<>();
    for (TokenizerJson.Merge m : r.merges()) {
      out.add(m.left() + " " + m.right());
    }
    return out;
  }

  @Test
  void learnsTheMostFrequentPairsWithDeterministicTies() {
    BpeTrainer.Result r = new BpeTrainer(300, List.of("<|endoftext|>")).train("low lower lowest");
    // (l,o) and (o,w) both occur 3 times: the smaller (left id, right id) wins; then "lo w";
    // then (Ġ,low) and (low,e) both occur twice: Ġ (a byte) has the smaller id.
    assertThat(mergeStrings(r)).containsExactly("l o", "lo w", "Ġ low", "Ġlow e");
    assertThat(r.vocab().get(0)).isEqualTo("<|endoftext|>");
    assertThat(r.vocab().get(1 + 'a')).isEqualTo("a");
    assertThat(r.vocab().get(1 + ' ')).isEqualTo("Ġ");
    assertThat(r.vocab().subList(257, r.vocab().size()))
        .containsExactly("lo", "low", "Ġlow", "Ġlowe");

    BpeTrainer.Result all =
        new BpeTrainer(300, List.of()).minFrequency(1).train("low lower lowest");
    assertThat(mergeStrings(all)).startsWith("l o", "lo w", "Ġ low", "Ġlow e", "s t");
  }

  @Test
  void incrementalCountsGiveTheSameMergesAsANaiveRescan() {
    String text = RandomCheckpoint.sampleText();
    BpeTrainer.Result fast = new BpeTrainer(256 + 300, List.of()).train(text);
    assertThat(fast.merges()).hasSize(300);
    assertThat(mergeStrings(fast)).containsExactlyElementsOf(naiveMerges(text, 300, 2));
    // With min frequency 1 the corpus is merged down to whole words: many ties at count 1.
    BpeTrainer.Result exhaustive =
        new BpeTrainer(256 + 5000, List.of()).minFrequency(1).train(text);
    List<String> naive = naiveMerges(text, 5000, 1);
    assertThat(naive.size()).isBetween(700, 4999);
    assertThat(mergeStrings(exhaustive)).containsExactlyElementsOf(naive);
  }

  @Test
  void padsWithValidSyntheticMergesToTheExactSize() {
    BpeTrainer.Result r =
        new BpeTrainer(3000, List.of("<a>", "<b>")).padToVocabSize(true).train("tiny corpus");
    assertThat(r.vocabSize()).isEqualTo(3000);
    assertThat(r.vocab()).doesNotHaveDuplicates();
    assertThat(r.vocab().subList(0, 2)).containsExactly("<a>", "<b>");
    for (TokenizerJson.Merge m : r.merges()) {
      assertThat(r.vocab()).contains(m.left(), m.right(), m.left() + m.right());
    }
  }

  @Test
  void splitsLikeGpt2() {
    Matcher m = BpeTrainer.GPT2_SPLIT.matcher("Hello world's  3.5 ünïcode\n\nend");
    List<String> pieces = new ArrayList<>();
    while (m.find()) {
      pieces.add(m.group());
    }
    assertThat(pieces)
        .containsExactly(
            "Hello", " world", "'s", " ", " 3", ".", "5", " ünïcode", "\n", "\n", "end");
  }

  @Test
  void rejectsAVocabTooSmallForTheBytes() {
    assertThatThrownBy(() -> new BpeTrainer(257, List.of("<s>", "</s>")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("vocabSize 257 (expected: >= 256 byte tokens + 2 special tokens)");
  }

  /** Reference trainer: recount every pair over every word before each merge. */
  private static List<String> naiveMerges(String text, int count, int minFrequency) {
    Map<String, Integer> wordFreq = new TreeMap<>();
    Matcher m = BpeTrainer.GPT2_SPLIT.matcher(text);
    while (m.find()) {
      wordFreq.merge(m.group(), 1, Integer::sum);
    }
    List<List<String>> words = new ArrayList<>();
    List<Integer> freqs = new ArrayList<>();
    for (Map.Entry<String, Integer> e : wordFreq.entrySet()) {
      List<String> symbols = new ArrayList<>();
      for (byte b : e.getKey().getBytes(StandardCharsets.UTF_8)) {
        symbols.add(String.valueOf(ByteLevel.toChar(b & 0xFF)));
      }
      words.add(symbols);
      freqs.add(e.getValue());
    }
    Map<String, Integer> ids = new HashMap<>();
    for (int b = 0; b < 256; b++) {
      ids.put(String.valueOf(ByteLevel.toChar(b)), b);
    }
    List<String> merges = new ArrayList<>();
    while (merges.size() < count) {
      Map<List<String>, Integer> pairs = new HashMap<>();
      for (int w = 0; w < words.size(); w++) {
        List<String> s = words.get(w);
        for (int i = 0; i + 1 < s.size(); i++) {
          pairs.merge(List.of(s.get(i), s.get(i + 1)), freqs.get(w), Integer::sum);
        }
      }
      List<String> best = null;
      int bestCount = 0;
      for (Map.Entry<List<String>, Integer> e : pairs.entrySet()) {
        List<String> p = e.getKey();
        int c = e.getValue();
        if (best == null
            || c > bestCount
            || (c == bestCount
                && (ids.get(p.get(0)) < ids.get(best.get(0))
                    || (ids.get(p.get(0)).equals(ids.get(best.get(0)))
                        && ids.get(p.get(1)) < ids.get(best.get(1)))))) {
          best = p;
          bestCount = c;
        }
      }
      if (best == null || bestCount < minFrequency) {
        break;
      }
      String joined = best.get(0) + best.get(1);
      ids.putIfAbsent(joined, ids.size());
      merges.add(best.get(0) + " " + best.get(1));
      for (List<String> s : words) {
        for (int i = 0; i + 1 < s.size(); i++) {
          if (s.get(i).equals(best.get(0)) && s.get(i + 1).equals(best.get(1))) {
            s.set(i, joined);
            s.remove(i + 1);
          }
        }
      }
    }
    return merges;
  }
}
