package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.SwitchEvent;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.IntToDoubleFunction;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * NUDGING, ENTROPY_SWITCH and LEAD_IN through the real router over deterministic scripted workers
 * ({@link ScriptedWorker}, {@link ScriptedText}): take-over points, spans, stop conditions,
 * cross-tokenizer exchange with multi-byte text, and helpers that stall or fail.
 */
class CollaborationTest {
  static final String FOX = "The quick brown fox jumps over the lazy dog";

  /** How long a test waits for the workers to see a finished request's sessions close. */
  private static final Duration ENDED = Duration.ofSeconds(10);

  private static BpeTokenizer zoo;
  private static BpeTokenizer other;
  private static int zooEnd; // <|end|>: the aligned reply's end
  private static int otherEos;

  @BeforeAll
  static void tokenizers() throws Exception {
    zoo = BpeTokenizer.load(ScriptedMesh.ZOO_TOKENIZER);
    other = BpeTokenizer.load(ScriptedMesh.otherTokenizer());
    zooEnd = zoo.encode("<|end|>", false)[0];
    otherEos = 0;
    assertThat(zoo.isSpecial(zooEnd)).isTrue();
    assertThat(other.isSpecial(otherEos)).isTrue();
  }

  private static IntToDoubleFunction flat(double h) {
    return at -> h;
  }

  private static ScriptedWorker base(String text, Set<Integer> unsure, int faultAfter)
      throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info("base", ScriptedMesh.ZOO_TOKENIZER, zoo.vocabSize(), 0, 12_000_000),
        new ScriptedText(zoo, text, unsure, true, 0, flat(1)),
        faultAfter,
        false);
  }

  private static ScriptedWorker aligned(
      BpeTokenizer tok, String text, int end, int faultAfter, boolean fail) throws Exception {
    java.nio.file.Path file =
        tok == zoo ? ScriptedMesh.ZOO_TOKENIZER : ScriptedMesh.otherTokenizer();
    return new ScriptedWorker(
        ScriptedWorker.info("aligned", file, tok.vocabSize(), end, 1_000_000),
        new ScriptedText(tok, text, Set.of(), false, end, flat(2)),
        faultAfter,
        fail);
  }

  private static GenerateRequest.Builder nudging(float gamma, int chunk) {
    return GenerateRequest.newBuilder()
        .setText("Question: name a pangram\nAnswer:")
        .setStrategy(Strategy.STRATEGY_NUDGING)
        .setNudging(
            NudgingOptions.newBuilder()
                .setAlignedPrompt("<|endoftext|><|user|>name a pangram<|assistant|>")
                .setGamma(gamma)
                .setChunkTokens(chunk))
        .setSampling(Sampling.newBuilder().setMaxTokens(200));
  }

  /** Consecutive tokens of one provenance, with their text: who wrote which part. */
  record Span(Provenance by, String text) {
    @Override
    public String toString() {
      return by.name().replace("PROVENANCE_", "") + ":" + text;
    }
  }

  static List<Span> spans(List<GenerateChunk> chunks, BpeTokenizer tok) {
    List<Span> spans = new ArrayList<>();
    Provenance cur = null;
    List<Integer> ids = new ArrayList<>();
    for (GenerateChunk c : chunks) {
      for (int i = 0; i < c.getTokenIdsCount(); i++) {
        if (c.getProvenance(i) != cur && cur != null) {
          spans.add(new Span(cur, tok.decode(ids.stream().mapToInt(x -> x).toArray(), true)));
          ids.clear();
        }
        cur = c.getProvenance(i);
        ids.add(c.getTokenIds(i));
      }
    }
    if (cur != null) {
      spans.add(new Span(cur, tok.decode(ids.stream().mapToInt(x -> x).toArray(), true)));
    }
    return spans;
  }

  private static String decoded(ScriptedWorker.SessionLog s, BpeTokenizer tok) {
    return tok.decode(s.output().stream().mapToInt(x -> x).toArray(), true);
  }

  @Test
  void baseTakesOverWhereSureAndHandsBackBeforeItsFirstUnsureToken() throws Exception {
    // The base is unsure at " fox" (a word start) and inside "jumps" (after " ju").
    Set<Integer> unsure = Set.of(ScriptedText.offsetOf(FOX, " fox"), FOX.indexOf("mps"));
    try (ScriptedWorker b = base(FOX, unsure, -1);
        ScriptedWorker a = aligned(zoo, FOX, zooEnd, -1, false);
        ScriptedMesh mesh = new ScriptedMesh(b, a, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks = mesh.chunks(nudging(0.4f, 4).build());
      assertThat(ScriptedMesh.text(chunks)).isEqualTo(FOX);
      assertThat(spans(chunks, zoo))
          .extracting(Span::toString)
          .containsExactly(
              "ALIGNED_NUDGE:The", // the first word is always the aligned model's
              "BASE: quick brown", // sure at " quick"; hands back before " fox"
              "ALIGNED_NUDGE: fox",
              "BASE: ju", // takes over at " jumps" (its " ju" starts the word), unsure at "mps"
              "ALIGNED_NUDGE:mps", // a boundary inside a word: each side re-tokenizes
              "BASE: over the lazy dog",
              "ALIGNED_NUDGE:"); // its <|end|>, streamed as the aligned model alone would
      GenerateChunk last = ScriptedMesh.last(chunks);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_EOS);
      GenerationStats st = last.getStats();
      assertThat(st.getStrategy()).isEqualTo(Strategy.STRATEGY_NUDGING);
      assertThat(st.getNudgingRounds()).isEqualTo(4); // the 4th saw the aligned model's end
      assertThat(st.getSmallTokens() + st.getLargeTokens())
          .isEqualTo(last.getUsage().getCompletionTokens());
      assertThat(st.getSmallTokens())
          .isEqualTo(
              zoo.encode("The", false).length
                  + zoo.encode(" fox", false).length
                  + zoo.encode("mps", false).length
                  + 1);
      assertThat(st.getGamma()).isEqualTo(0.4f);
      assertThat(st.getSwitches()).isEqualTo(6);
      assertThat(st.getFallback()).isFalse();
      List<SwitchEvent> events = new ArrayList<>();
      chunks.forEach(c -> events.addAll(c.getSwitchesList()));
      assertThat(events).hasSize(7);
      List<Integer> ids = new ArrayList<>();
      chunks.forEach(c -> ids.addAll(c.getTokenIdsList()));
      assertThat(ids.get(ids.size() - 1)).isEqualTo(zooEnd);
      assertThat(events.get(0).getAtToken()).isZero();
      // Both sessions ended on text that starts with the answer, in their own tokens.
      assertThat(b.awaitSessionsEnded(ENDED) && a.awaitSessionsEnded(ENDED)).isTrue();
      assertThat(decoded(b.sessions.get(0), zoo)).startsWith(FOX);
      assertThat(decoded(a.sessions.get(0), zoo)).startsWith(FOX);
    }
  }

  @Test
  void crossTokenizerNudgingWritesMultiByteTextExactly() throws Exception {
    String text = "Café naïve — 日本語 is fine 🙂 ok. Ünïcode ends";
    Set<Integer> unsure =
        Set.of(
            ScriptedText.offsetOf(text, " is"),
            ScriptedText.offsetOf(text, "本"),
            ScriptedText.offsetOf(text, "🙂"),
            ScriptedText.offsetOf(text, " Ünï"));
    for (int chunk : new int[] {2, 3, 5, 16}) {
      try (ScriptedWorker b = base(text, unsure, -1);
          ScriptedWorker a = aligned(other, text, otherEos, -1, false);
          ScriptedMesh mesh = new ScriptedMesh(b, a, Duration.ofSeconds(5))) {
        List<GenerateChunk> chunks = mesh.chunks(nudging(0.4f, chunk).build());
        assertThat(ScriptedMesh.text(chunks)).as("chunk %d", chunk).isEqualTo(text);
        GenerateChunk last = ScriptedMesh.last(chunks);
        assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_EOS);
        List<Span> spans = spans(chunks, zoo);
        assertThat(String.join("", spans.stream().map(Span::text).toList())).isEqualTo(text);
        assertThat(spans)
            .extracting(Span::by)
            .contains(Provenance.PROVENANCE_BASE, Provenance.PROVENANCE_ALIGNED_NUDGE);
        // The aligned session holds the answer in the other tokenizer's tokens.
        assertThat(decoded(a.sessions.get(0), other)).startsWith(text);
        // The base last synced before the final aligned span, if the answer ended on one.
        Span end = spans.get(spans.size() - 1);
        int synced =
            text.length()
                - (end.by() == Provenance.PROVENANCE_ALIGNED_NUDGE ? end.text().length() : 0);
        assertThat(decoded(b.sessions.get(0), zoo)).startsWith(text.substring(0, synced));
        // Output ids are the base tokenizer's and decode to the text byte for byte.
        List<Integer> ids = new ArrayList<>();
        chunks.forEach(c -> ids.addAll(c.getTokenIdsList()));
        byte[] bytes =
            zoo.decode(ids.stream().mapToInt(x -> x).toArray(), true)
                .getBytes(StandardCharsets.UTF_8);
        assertThat(bytes).isEqualTo(text.getBytes(StandardCharsets.UTF_8));
      }
    }
  }

  @Test
  void theSameNudgeFourTimesInARowStops() throws Exception {
    int again = zoo.encode(" again", false)[0];
    ScriptedWorker.Model repeats =
        out ->
            Position.newBuilder()
                .setTokenId(again)
                .setArgmaxTokenId(again)
                .setArgmaxProb(0.9f)
                .setTokenProb(0.9f)
                .build();
    int x = zoo.encode("X", false)[0];
    ScriptedWorker.Model unsure =
        out ->
            Position.newBuilder()
                .setTokenId(x)
                .setArgmaxTokenId(x)
                .setArgmaxProb(0.1f)
                .setTokenProb(0.1f)
                .build();
    ModelInfoPair p = new ModelInfoPair();
    try (ScriptedWorker b = new ScriptedWorker(p.base, unsure, -1, false);
        ScriptedWorker a = new ScriptedWorker(p.aligned, repeats, -1, false);
        ScriptedMesh mesh = new ScriptedMesh(b, a, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks = mesh.chunks(nudging(0.4f, 4).build());
      GenerateChunk last = ScriptedMesh.last(chunks);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_STOP);
      // Each chunk is " again" x4; no take-over, so all words but the last: " again" x3. The
      // fourth identical nudge is not written.
      assertThat(ScriptedMesh.text(chunks)).isEqualTo(" again again again".repeat(3));
      assertThat(last.getStats().getNudgingRounds()).isEqualTo(4);
      assertThat(last.getStats().getLargeTokens()).isZero();
    }
  }

  /** ModelInfos for hand-written models on the zoo tokenizer. */
  private static final class ModelInfoPair {
    final io.draftmesh.proto.v1.ModelInfo base;
    final io.draftmesh.proto.v1.ModelInfo aligned;

    ModelInfoPair() throws Exception {
      base = ScriptedWorker.info("base", ScriptedMesh.ZOO_TOKENIZER, zoo.vocabSize(), 0, 12);
      aligned = ScriptedWorker.info("aligned", ScriptedMesh.ZOO_TOKENIZER, zoo.vocabSize(), 0, 1);
    }
  }

  @Test
  void maxTokensEndsNudgingMidPiece() throws Exception {
    try (ScriptedWorker b = base(FOX, Set.of(15), -1);
        ScriptedWorker a = aligned(zoo, FOX, zooEnd, -1, false);
        ScriptedMesh mesh = new ScriptedMesh(b, a, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks =
          mesh.chunks(nudging(0.4f, 4).setSampling(Sampling.newBuilder().setMaxTokens(3)).build());
      GenerateChunk last = ScriptedMesh.last(chunks);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
      assertThat(last.getUsage().getCompletionTokens()).isEqualTo(3);
      assertThat(FOX).startsWith(ScriptedMesh.text(chunks));
      assertThat(b.awaitSessionsEnded(ENDED) && a.awaitSessionsEnded(ENDED)).isTrue();
    }
  }

  @Test
  void alignedModelThatStallsOrFailsLeavesTheBaseAloneWithNothingLostOrRepeated() throws Exception {
    Set<Integer> unsure = Set.of(ScriptedText.offsetOf(FOX, " fox"), FOX.indexOf("mps"));
    for (boolean fail : new boolean[] {false, true}) {
      try (ScriptedWorker b = base(FOX, unsure, -1);
          ScriptedWorker a = aligned(zoo, FOX, zooEnd, 1, fail); // answers one Propose only
          ScriptedMesh mesh = new ScriptedMesh(b, a, Duration.ofMillis(300))) {
        List<GenerateChunk> chunks = mesh.chunks(nudging(0.4f, 4).build());
        // Round 1 as usual ("The" + " quick brown"); then the base alone, which writes its X
        // where it is unsure: exactly the streamed text plus the base's own continuation.
        assertThat(ScriptedMesh.text(chunks))
            .as(fail ? "failing" : "stalling")
            .isEqualTo("The quick brownX fox juXmps over the lazy dog");
        GenerationStats st = ScriptedMesh.last(chunks).getStats();
        assertThat(st.getFallback()).isTrue();
        assertThat(st.getFallbackReason()).contains("aligned").doesNotContain("localhost");
        assertThat(spans(chunks, zoo).get(0).toString()).isEqualTo("ALIGNED_NUDGE:The");
        assertThat(a.awaitSessionsEnded(ENDED) && b.awaitSessionsEnded(ENDED)).isTrue();
      }
    }
  }

  // ---- ENTROPY_SWITCH and LEAD_IN ----

  private static final String STORY =
      "In the beginning the text is easy. Then a hard part comes, with rare words like"
          + " quixotic zephyrs. After that it is easy again until the end.";

  /** The small model is lost (4 bits) inside the hard part; the large model never is. */
  private static IntToDoubleFunction smallEntropy() {
    int from = STORY.indexOf("Then a hard");
    int to = STORY.indexOf(" After");
    return at -> at >= from && at < to ? 4.0 : 0.3;
  }

  private static ScriptedWorker switching(
      String id, IntToDoubleFunction h, long params, int faultAfter) throws Exception {
    return new ScriptedWorker(
        ScriptedWorker.info(id, ScriptedMesh.ZOO_TOKENIZER, zoo.vocabSize(), 0, params),
        new ScriptedText(zoo, STORY, Set.of(), false, 0, h),
        faultAfter,
        true);
  }

  @Test
  void entropySwitchHandsTheHardPartToTheLargeModel() throws Exception {
    try (ScriptedWorker large = switching("large", flat(0.5), 10_000_000, -1);
        ScriptedWorker small = switching("small", smallEntropy(), 1_000_000, -1);
        ScriptedMesh mesh = new ScriptedMesh(large, small, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks =
          mesh.chunks(
              GenerateRequest.newBuilder()
                  .setText("Tell a story.")
                  .setStrategy(Strategy.STRATEGY_ENTROPY_SWITCH)
                  .setEntropySwitch(
                      EntropySwitchOptions.newBuilder().setTau(1.0f).setWindow(3).setMinRun(3))
                  .setSampling(Sampling.newBuilder().setMaxTokens(400))
                  .build());
      assertThat(ScriptedMesh.text(chunks)).isEqualTo(STORY);
      GenerateChunk last = ScriptedMesh.last(chunks);
      assertThat(last.getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_EOS);
      List<Span> spans = spans(chunks, zoo);
      // The small model writes the easy parts. Inside the hard part the large model takes over
      // once 3 lost tokens lifted the mean; its own low entropies hand back after its minimum
      // run of 3, the small model is lost again, and so on: large spans only in the hard part.
      int hard = STORY.indexOf("Then a hard");
      int easy = STORY.indexOf(" After");
      assertThat(spans.get(0).by()).isEqualTo(Provenance.PROVENANCE_SMALL_SPAN);
      assertThat(spans.get(0).text().length()).isBetween(hard, hard + 20);
      int at0 = 0;
      for (Span s : spans) {
        if (s.by() == Provenance.PROVENANCE_LARGE_SPAN) {
          assertThat(at0).isBetween(hard, easy);
          assertThat(zoo.encode(s.text(), false).length).isGreaterThanOrEqualTo(3);
        }
        at0 += s.text().length();
      }
      assertThat(spans.get(spans.size() - 1).by()).isEqualTo(Provenance.PROVENANCE_SMALL_SPAN);
      assertThat(spans.get(spans.size() - 1).text()).endsWith("until the end.");
      assertThat(spans).extracting(Span::by).contains(Provenance.PROVENANCE_LARGE_SPAN);
      // Same answer as the reference simulation of the rule over the scripted entropies.
      EntropySwitchRule rule = new EntropySwitchRule(1.0f, 3, 3);
      StringBuilder expected = new StringBuilder();
      int at = 0;
      for (GenerateChunk c : chunks) {
        for (int i = 0; i < c.getTokenIdsCount(); i++) {
          expected.append(rule.large() ? 'L' : 'S');
          double h = rule.large() ? 0.5 : smallEntropy().applyAsDouble(at);
          assertThat(c.getEntropyBits(i)).isEqualTo((float) h);
          rule.observe("", (float) h);
          at += zoo.tokenBytes(c.getTokenIds(i)).length;
        }
      }
      StringBuilder got = new StringBuilder();
      chunks.forEach(
          c ->
              c.getProvenanceList()
                  .forEach(p -> got.append(p == Provenance.PROVENANCE_LARGE_SPAN ? 'L' : 'S')));
      assertThat(got.toString()).isEqualTo(expected.toString());
      GenerationStats st = last.getStats();
      assertThat(st.getSwitches()).isEqualTo(spans.size() - 1);
      assertThat(st.getLargeTokens() + st.getSmallTokens())
          .isEqualTo(last.getUsage().getCompletionTokens());
      float fl = (float) st.getLargeTokens() / (st.getLargeTokens() + st.getSmallTokens());
      assertThat(st.getLargeShare()).isEqualTo(fl);
      assertThat(st.getParameterWeightedCost())
          .isCloseTo(fl + (1 - fl) * 0.1f, org.assertj.core.data.Offset.offset(1e-6f));
      assertThat(st.getTau()).isEqualTo(1.0f);
      assertThat(st.getWindow()).isEqualTo(3);
      // The incoming model caught up with the other's span in one Append per switch.
      ScriptedWorker.SessionLog l = large.sessions.get(0);
      long toLarge = spans.stream().filter(s -> s.by() == Provenance.PROVENANCE_LARGE_SPAN).count();
      assertThat(l.appends).isEqualTo((int) toLarge);
      assertThat(small.sessions.get(0).appends).isEqualTo((int) toLarge);
      assertThat(decoded(l, zoo)).startsWith(STORY.substring(0, hard));
      assertThat(decoded(small.sessions.get(0), zoo)).startsWith(STORY);
    }
  }

  @Test
  void smallModelThatFailsLeavesTheLargeOneAlone() throws Exception {
    for (int faultAfter : new int[] {0, 3}) {
      try (ScriptedWorker large = switching("large", flat(0.5), 10_000_000, -1);
          ScriptedWorker small = switching("small", smallEntropy(), 1_000_000, faultAfter);
          ScriptedMesh mesh = new ScriptedMesh(large, small, Duration.ofMillis(300))) {
        List<GenerateChunk> chunks =
            mesh.chunks(
                GenerateRequest.newBuilder()
                    .setText("Tell a story.")
                    .setStrategy(Strategy.STRATEGY_ENTROPY_SWITCH)
                    .setSampling(Sampling.newBuilder().setMaxTokens(400))
                    .build());
        assertThat(ScriptedMesh.text(chunks)).as("fault after %d", faultAfter).isEqualTo(STORY);
        GenerationStats st = ScriptedMesh.last(chunks).getStats();
        assertThat(st.getFallback()).isTrue();
        assertThat(st.getSmallTokens() > 0).isEqualTo(faultAfter > 0);
        assertThat(st.getTau()).isEqualTo(EntropySwitchRule.DEFAULT_TAU);
      }
    }
  }

  @Test
  void leadInGivesEachSentencesFirstTokensToTheLargeModel() throws Exception {
    try (ScriptedWorker large = switching("large", flat(0.5), 10_000_000, -1);
        ScriptedWorker small = switching("small", flat(0.5), 1_000_000, -1);
        ScriptedMesh mesh = new ScriptedMesh(large, small, Duration.ofSeconds(5))) {
      List<GenerateChunk> chunks =
          mesh.chunks(
              GenerateRequest.newBuilder()
                  .setText("Tell a story.")
                  .setStrategy(Strategy.STRATEGY_LEAD_IN)
                  .setLeadIn(LeadInOptions.newBuilder().setN(2))
                  .setSampling(Sampling.newBuilder().setMaxTokens(400))
                  .build());
      assertThat(ScriptedMesh.text(chunks)).isEqualTo(STORY);
      List<Span> spans = spans(chunks, zoo);
      // Three sentences: L (2 tokens) S, L S, L S.
      assertThat(spans).hasSize(6);
      for (int i = 0; i < spans.size(); i++) {
        Span s = spans.get(i);
        assertThat(s.by())
            .isEqualTo(
                i % 2 == 0 ? Provenance.PROVENANCE_LARGE_SPAN : Provenance.PROVENANCE_SMALL_SPAN);
        if (i % 2 == 0) {
          assertThat(zoo.encode(s.text(), false)).hasSize(2);
        } else {
          assertThat(s.text().strip()).endsWith(".");
        }
      }
      assertThat(spans.get(2).text()).startsWith(" Then");
    }
  }

  // ---- bad parameters ----

  @Test
  void badParametersAreInvalidArgumentNamingTheField() throws Exception {
    try (ScriptedWorker large = switching("large", flat(0.5), 10, -1);
        ScriptedWorker small = switching("small", flat(0.5), 1, -1);
        ScriptedMesh mesh = new ScriptedMesh(large, small, Duration.ofSeconds(5))) {
      GenerateRequest ok = nudging(0.4f, 4).build();
      for (float g : new float[] {1f, -0.1f, 1.5f, Float.NaN}) {
        expectInvalid(
            mesh,
            ok.toBuilder().setNudging(ok.getNudging().toBuilder().setGamma(g)),
            "nudging.gamma: " + g);
      }
      expectInvalid(
          mesh,
          ok.toBuilder().setNudging(ok.getNudging().toBuilder().setChunkTokens(-1)),
          "nudging.chunk_tokens: -1");
      expectInvalid(
          mesh,
          ok.toBuilder().setNudging(NudgingOptions.getDefaultInstance()),
          "nudging.aligned_prompt: empty");
      GenerateRequest ead =
          GenerateRequest.newBuilder()
              .setText("x")
              .setStrategy(Strategy.STRATEGY_ENTROPY_SWITCH)
              .build();
      expectInvalid(
          mesh,
          ead.toBuilder().setEntropySwitch(EntropySwitchOptions.newBuilder().setWindow(0)),
          "entropy_switch.window: 0");
      expectInvalid(
          mesh,
          ead.toBuilder().setEntropySwitch(EntropySwitchOptions.newBuilder().setTau(-0.5f)),
          "entropy_switch.tau: -0.5");
      expectInvalid(
          mesh,
          ead.toBuilder().setEntropySwitch(EntropySwitchOptions.newBuilder().setMinRun(0)),
          "entropy_switch.min_run: 0");
      expectInvalid(
          mesh,
          ead.toBuilder()
              .setStrategy(Strategy.STRATEGY_LEAD_IN)
              .setLeadIn(LeadInOptions.newBuilder().setN(-2)),
          "lead_in.n: -2");
      // An unknown pool is NOT_FOUND, as for every strategy (router.proto), naming the field.
      assertThatThrownBy(() -> mesh.chunks(ead.toBuilder().setDraft("nope").build()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND);
                assertThat(e.getStatus().getDescription()).startsWith("draft: nope");
              });
      assertThatThrownBy(() -> mesh.chunks(ok.toBuilder().setDraft("nope").build()))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
      // An enum number no strategy has.
      expectInvalid(mesh, ead.toBuilder().setStrategyValue(99), "strategy: 99");
    }
  }

  private static void expectInvalid(ScriptedMesh mesh, GenerateRequest.Builder r, String start) {
    assertThatThrownBy(() -> mesh.chunks(r.build()))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).startsWith(start).contains("expected");
            });
  }
}
