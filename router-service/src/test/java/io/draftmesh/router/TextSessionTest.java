package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.SessionRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Nudging's text exchange across two different tokenizers (the zoo's 4,096-token BPE and a
 * 512-token BPE trained on other text): after any sequence of pieces, split anywhere (inside words,
 * between the bytes of one token, around multi-byte characters), each session holds exactly its own
 * tokenizer's encoding of the concatenated text, which decodes back to it, and a sync feeds only
 * the tokens around the new boundary again, never the whole answer.
 */
class TextSessionTest {
  private static final int PROMPT = 7; // any prompt length: syncs never touch it
  private static BpeTokenizer zoo;
  private static BpeTokenizer other;

  @BeforeAll
  static void tokenizers() throws Exception {
    zoo = BpeTokenizer.load(ScriptedMesh.ZOO_TOKENIZER);
    other = BpeTokenizer.load(ScriptedMesh.otherTokenizer());
    assertThat(zoo.sha256()).isNotEqualTo(other.sha256());
  }

  /** A worker session's tokens, driven by the ops a TextSession emits. */
  private static final class Simulated {
    final List<Integer> tokens = new ArrayList<>(); // after the prompt
    int appended;

    void apply(List<SessionRequest.Builder> ops) {
      for (SessionRequest.Builder op : ops) {
        if (op.hasTruncate()) {
          int keep = op.getTruncate().getLength() - PROMPT;
          assertThat(keep).as("truncate into the prompt").isBetween(0, tokens.size() - 1);
          tokens.subList(keep, tokens.size()).clear();
        } else {
          assertThat(op.hasAppend()).isTrue();
          assertThat(op.getAppend().getTokenIdsCount()).isBetween(1, 8); // the worker's op limit
          tokens.addAll(op.getAppend().getTokenIdsList());
          appended += op.getAppend().getTokenIdsCount();
        }
      }
    }
  }

  private static final String[] ALPHABET = {
    "the", " the", "nudge", " answer", ":", " ", "  ", "\n", "é", "naïve", "日本", "語", "🙂", "x",
    "Answer", ".", "ab", "c", "ünï", "—", "42", " 7"
  };

  private static String randomPiece(Random rnd) {
    StringBuilder s = new StringBuilder();
    int n = 1 + rnd.nextInt(4);
    for (int i = 0; i < n; i++) {
      s.append(ALPHABET[rnd.nextInt(ALPHABET.length)]);
    }
    // Cut anywhere on a character boundary (never inside a surrogate pair): the two models'
    // pieces split words and tokens freely.
    String p = s.toString();
    int cut = 1 + rnd.nextInt(p.length());
    if (cut < p.length() && Character.isLowSurrogate(p.charAt(cut))) {
      cut++;
    }
    return p.substring(0, cut);
  }

  @Test
  void sessionsHoldTheirOwnEncodingOfTheConcatenatedPieces() {
    for (long seed = 1; seed <= 40; seed++) {
      Random rnd = new Random(seed);
      TextSession a = new TextSession(zoo, PROMPT, 8);
      TextSession b = new TextSession(other, PROMPT, 8);
      Simulated sa = new Simulated();
      Simulated sb = new Simulated();
      StringBuilder text = new StringBuilder();
      List<String> pieces = new ArrayList<>();
      int syncs = 0;
      for (int step = 0; step < 30; step++) {
        String piece = randomPiece(rnd);
        pieces.add(piece);
        text.append(piece);
        // Now and then a model generated past what the output kept (a Propose's surplus).
        if (rnd.nextInt(3) == 0) {
          List<Integer> surplus = List.of(5 + rnd.nextInt(200), 5 + rnd.nextInt(200));
          a.generated(surplus);
          sa.tokens.addAll(surplus);
        }
        sa.apply(a.syncTo(text.toString()));
        sb.apply(b.syncTo(text.toString()));
        syncs++;
        String t = text.toString();
        assertThat(String.join("", pieces)).isEqualTo(t);
        assertThat(sa.tokens).isEqualTo(boxed(zoo.encode(t, false)));
        assertThat(sb.tokens).isEqualTo(boxed(other.encode(t, false)));
        assertThat(zoo.decode(toArray(sa.tokens), false)).isEqualTo(t);
        assertThat(other.decode(toArray(sb.tokens), false)).isEqualTo(t);
        assertThat(a.tokens()).isEqualTo(toArray(sa.tokens));
        assertThat(a.length()).isEqualTo(PROMPT + sa.tokens.size());
      }
      // Each sync re-feeds only what its boundary changed: a few tokens, not the answer.
      assertThat(sb.appended).as("seed %d", seed).isLessThan(sb.tokens.size() + 6 * syncs);
      assertThat(sb.appended).isLessThan(sb.tokens.size() * 3);
    }
  }

  @Test
  void aTokenSplitByTheBoundaryIsTruncatedAndReappended() {
    TextSession s = new TextSession(zoo, PROMPT, 8);
    Simulated sim = new Simulated();
    sim.apply(s.syncTo("The beginning"));
    int before = sim.tokens.size();
    // One model wrote " beginn" + the other "ing": the same text, so nothing changes.
    sim.apply(s.syncTo("The beginning was"));
    assertThat(sim.tokens.subList(0, before)).isEqualTo(boxed(zoo.encode("The beginning", false)));
    // A boundary inside a word: "The begin" then "ning" — the canonical tokens replace the split.
    TextSession t = new TextSession(zoo, PROMPT, 8);
    Simulated tsim = new Simulated();
    tsim.apply(t.syncTo("The begin"));
    List<SessionRequest.Builder> ops = t.syncTo("The beginning");
    assertThat(ops.get(0).hasTruncate()).isTrue();
    assertThat(ops.get(0).getTruncate().getLength()).isGreaterThan(PROMPT); // "The" is kept
    tsim.apply(ops);
    assertThat(tsim.tokens).isEqualTo(boxed(zoo.encode("The beginning", false)));
    assertThat(t.refed()).isPositive();
    assertThat(t.syncTo("The beginning")).isEmpty(); // nothing to do
  }

  private static List<Integer> boxed(int[] a) {
    List<Integer> l = new ArrayList<>();
    for (int x : a) {
      l.add(x);
    }
    return l;
  }

  private static int[] toArray(List<Integer> l) {
    return l.stream().mapToInt(Integer::intValue).toArray();
  }
}
