package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.Provenance;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The router's pure parts: stop matching, the token stream, n-gram drafting, adaptive k. */
class StreamingUnitsTest {
  @TempDir static Path dir;
  static BpeTokenizer tok;

  @BeforeAll
  static void load() throws IOException {
    Path json = dir.resolve("tokenizer.json");
    RandomCheckpoint.writeTokenizer(json, 1024);
    tok = BpeTokenizer.load(json);
  }

  @Test
  void stopMatcherHoldsBackPossibleStopPrefixesAndCutsAtTheFirstMatch() {
    StopMatcher m = new StopMatcher(List.of("END", "\n\n"));
    assertThat(m.push("hello E")).isEqualTo("hello ");
    assertThat(m.push("N")).isEmpty();
    assertThat(m.push("Tity")).isEqualTo("ENTity"); // not a stop after all
    assertThat(m.push(" a\n")).isEqualTo(" a");
    assertThat(m.push("\nrest END more")).isEmpty();
    assertThat(m.stopped()).isTrue();
    assertThat(m.push("after")).isEmpty();
    assertThat(m.finish()).isEmpty();

    StopMatcher earliest = new StopMatcher(List.of("cd", "b"));
    assertThat(earliest.push("abcd")).isEqualTo("a");
    StopMatcher none = new StopMatcher(List.of("xyz"));
    assertThat(none.push("abcx")).isEqualTo("abc");
    assertThat(none.finish()).isEqualTo("x");
  }

  static TokenStream stream(List<GenerateChunk> out, List<String> stops, int max, int eos) {
    return new TokenStream(out::add, tok, stops, max, eos, false, 3, new RunStats());
  }

  static String text(List<GenerateChunk> chunks) {
    StringBuilder sb = new StringBuilder();
    chunks.forEach(c -> sb.append(c.getText()));
    return sb.toString();
  }

  static List<Integer> ids(List<GenerateChunk> chunks) {
    List<Integer> ids = new ArrayList<>();
    chunks.forEach(c -> ids.addAll(c.getTokenIdsList()));
    return ids;
  }

  @Test
  void tokensPastMaxTokensAreNeverStreamed() {
    List<GenerateChunk> out = new ArrayList<>();
    TokenStream s = stream(out, List.of(), 3, 0);
    int[] round = tok.encode("one two three four five", false);
    int accepted = 0;
    for (int id : round) {
      if (!s.accept(id, Provenance.PROVENANCE_DRAFT_ACCEPTED, 0f)) {
        break;
      }
      accepted++;
    }
    assertThat(accepted).isEqualTo(2); // the third token ends it (accept returns false)
    assertThat(s.accept(round[4], Provenance.PROVENANCE_TARGET, 0f)).isFalse();
    s.finish(FinishReason.FINISH_REASON_LENGTH);
    assertThat(ids(out)).containsExactly(round[0], round[1], round[2]);
    GenerateChunk last = out.get(out.size() - 1);
    assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
    assertThat(last.getUsage().getCompletionTokens()).isEqualTo(3);
    assertThat(last.getUsage().getPromptTokens()).isEqualTo(3);
    assertThat(text(out)).isEqualTo(tok.decode(new int[] {round[0], round[1], round[2]}, true));
  }

  @Test
  void eosEndsTheStreamWithoutBeingStreamed() {
    List<GenerateChunk> out = new ArrayList<>();
    TokenStream s = stream(out, List.of(), 100, 0);
    int[] a = tok.encode("a b", false);
    assertThat(s.accept(a[0], Provenance.PROVENANCE_TARGET, 0f)).isTrue();
    assertThat(s.accept(0, Provenance.PROVENANCE_DRAFT_ACCEPTED, 0f)).isFalse();
    assertThat(s.accept(a[1], Provenance.PROVENANCE_TARGET, 0f)).isFalse();
    s.finish(FinishReason.FINISH_REASON_LENGTH);
    assertThat(ids(out)).containsExactly(a[0]);
    assertThat(out.get(out.size() - 1).getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_EOS);
  }

  @Test
  void aStopSequenceSplitAcrossTokensIsNotStreamedNorAnythingAfterIt() {
    String text = "The quick brown fox jumps over the lazy dog";
    int[] ids = tok.encode(text, false);
    List<GenerateChunk> out = new ArrayList<>();
    TokenStream s = stream(out, List.of("own fox j"), 100, 0);
    int streamed = 0;
    for (int id : ids) {
      streamed++;
      if (!s.accept(id, Provenance.PROVENANCE_TARGET, 0f)) {
        break;
      }
      s.flush();
    }
    s.finish(FinishReason.FINISH_REASON_LENGTH);
    assertThat(text(out)).isEqualTo("The quick br");
    assertThat(out.get(out.size() - 1).getFinishReason())
        .isEqualTo(FinishReason.FINISH_REASON_STOP);
    // Ids up to the token that completed the stop sequence, none after.
    assertThat(ids(out)).hasSize(streamed).isEqualTo(ids(out).subList(0, streamed));
    assertThat(tok.decode(ids(out).stream().mapToInt(Integer::intValue).toArray(), true))
        .contains("own fox j");
    assertThat(streamed).isLessThan(ids.length);
  }

  @Test
  void multiByteCharactersSplitAcrossTokensStreamWhole() {
    // Single byte tokens (ids 2..257 are the bytes) for a 4-byte emoji and a 2-byte letter.
    byte[] bytes = "é🚀".getBytes(java.nio.charset.StandardCharsets.UTF_8);
    List<GenerateChunk> out = new ArrayList<>();
    TokenStream s = stream(out, List.of(), 100, 0);
    for (byte b : bytes) {
      s.accept(2 + (b & 0xFF), Provenance.PROVENANCE_TARGET, 0f);
      s.flush();
    }
    s.finish(FinishReason.FINISH_REASON_LENGTH);
    List<String> texts = out.stream().map(GenerateChunk::getText).toList();
    assertThat(texts).containsExactly("", "é", "", "", "", "🚀", "");
    assertThat(ids(out)).hasSize(bytes.length);
  }

  @Test
  void ngramDrafterProposesWhatFollowedTheLatestLongestMatch() {
    NgramDrafter d = new NgramDrafter(3, 1);
    int[] seq = {1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3};
    // Suffix [1,2,3] occurred at 5 (latest, followed by 7 8 5) and at 0 (followed by 9 9).
    assertThat(d.propose(seq, seq.length, 2)).containsExactly(7, 8);
    assertThat(d.propose(seq, seq.length, 10)).containsExactly(7, 8, 5, 1, 2, 3);
    // Only a 1-gram match: suffix [4] never seen, [..., 5] seen once.
    int[] other = {5, 6, 7, 5};
    assertThat(d.propose(other, other.length, 3)).containsExactly(6, 7, 5);
    assertThat(new NgramDrafter(3, 2).propose(other, other.length, 3)).isEmpty();
    assertThat(d.propose(new int[] {1, 2, 3}, 3, 4)).isEmpty();
    assertThat(d.propose(seq, seq.length, 0)).isEmpty();
    assertThatThrownBy(() -> new NgramDrafter(1, 2)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void adaptiveKGrowsOnFullAcceptanceAndShrinksOnRejection() {
    AdaptiveK k = new AdaptiveK(4, 9);
    k.observe(4, 4, 4);
    assertThat(k.k()).isEqualTo(6);
    k.observe(6, 6, 6);
    k.observe(8, 8, 8);
    assertThat(k.k()).isEqualTo(9);
    k.observe(9, 9, 2);
    assertThat(k.k()).isEqualTo(8);
    k.observe(8, 3, 3); // cut short by draft confidence, all accepted: unchanged
    assertThat(k.k()).isEqualTo(8);
    for (int i = 0; i < 20; i++) {
      k.observe(k.k(), k.k(), 0);
    }
    assertThat(k.k()).isEqualTo(1);
  }
}
