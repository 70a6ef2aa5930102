package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.router.TestMesh.Result;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Greedy speculative decoding is lossless: on 20 prompts (text and ids), the router's output with a
 * draft worker (k = 1, 4, 8 and adaptive) and with the n-gram drafter is token for token the
 * target's autoregressive output. Two drafts make acceptance non-trivial both ways: the target's
 * own checkpoint (α ≈ 1: long accepted runs, bonus tokens, adaptive k growing) and an unrelated one
 * (α low: corrections almost every round, the draft rolled back every round); a third draft, the
 * target with one MLP swapped, accepts part of most rounds (rolled back mid-round).
 */
class GreedyLosslessIT {
  static final int TOKENS = 24;
  static TestMesh mesh;
  static List<GenerateRequest> prompts;

  @BeforeAll
  static void start() {
    mesh = TestMesh.get();
    prompts = new ArrayList<>();
    String[] sentences = RandomCheckpoint.sampleText().split("(?<=[.!?])\\s+");
    for (int i = 0; prompts.size() < 12 && i < sentences.length; i += 3) {
      if (sentences[i].length() > 10) {
        prompts.add(GenerateRequest.newBuilder().setText(sentences[i]).build());
      }
    }
    for (int p = 0; p < 8; p++) {
      TokenIds.Builder ids = TokenIds.newBuilder();
      int n = 1 + p * 7 % 40;
      for (int i = 0; i < n; i++) {
        ids.addIds(2 + (i * 37 + p * 101) % 500);
      }
      prompts.add(GenerateRequest.newBuilder().setTokenIds(ids).build());
    }
    assertThat(prompts).hasSizeGreaterThanOrEqualTo(20);
  }

  static GenerateRequest with(GenerateRequest prompt, Strategy strategy, String draft) {
    GenerateRequest.Builder b =
        prompt.toBuilder()
            .setStrategy(strategy)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(TOKENS));
    if (draft != null) {
      b.setDraft(draft);
    }
    return b.build();
  }

  @Test
  void autoregressiveThroughTheRouterIsTheTargetsOwnGreedyDecoding() {
    // The baseline itself, checked against a raw session on the target worker.
    ManagedChannel ch =
        Grpc.newChannelBuilder(
                "localhost:" + mesh.workers.get("target").port(),
                InsecureChannelCredentials.create())
            .build();
    try {
      for (GenerateRequest prompt : prompts.subList(0, 3)) {
        Result r = mesh.generate(with(prompt, Strategy.STRATEGY_AUTOREGRESSIVE, null));
        int[] ids =
            prompt.hasText()
                ? mesh.tokenizer.encode(prompt.getText(), false)
                : prompt.getTokenIds().getIdsList().stream().mapToInt(Integer::intValue).toArray();
        WorkerSession s = WorkerSession.start(ch, "target", "raw");
        List<Integer> expected = new ArrayList<>();
        Open.Builder open = Open.newBuilder();
        for (int id : ids) {
          open.addPromptIds(id);
        }
        SessionResponse opened =
            s.call(SessionRequest.newBuilder().setOpen(open), Duration.ofSeconds(10), "open");
        expected.add(opened.getOpened().getNext().getTokenId());
        // Propose starts from the prompt's pending prediction: the same first token again.
        List<Integer> generated = new ArrayList<>();
        while (generated.size() < TOKENS) {
          SessionResponse proposed =
              s.call(
                  SessionRequest.newBuilder()
                      .setPropose(Propose.newBuilder().setK(TestMesh.MAX_TOKENS_PER_OP)),
                  Duration.ofSeconds(10),
                  "propose");
          generated.addAll(proposed.getProposed().getTokenIdsList());
        }
        assertThat(generated.get(0)).isEqualTo(expected.get(0));
        expected.addAll(generated.subList(1, TOKENS));
        s.close();
        assertThat(r.ids()).isEqualTo(expected);
        assertThat(r.provenance()).containsOnly(Provenance.PROVENANCE_TARGET_VALUE);
        assertThat(r.last().getFinishReason()).isEqualTo(FinishReason.FINISH_REASON_LENGTH);
        assertThat(r.last().getUsage().getCompletionTokens()).isEqualTo(TOKENS);
        assertThat(r.last().getUsage().getPromptTokens()).isEqualTo(ids.length);
        assertThat(r.text()).isEqualTo(mesh.tokenizer.decode(toArray(r.ids()), true));
      }
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void speculativeEqualsAutoregressiveForEveryKAndBothDrafts() {
    long acceptedSame = 0;
    long draftedSame = 0;
    long acceptedOther = 0;
    long draftedOther = 0;
    int bonusRoundsSame = 0;
    int cutShort = 0;
    long acceptedMixed = 0;
    long draftedMixed = 0;
    for (GenerateRequest prompt : prompts) {
      List<Integer> expected =
          mesh.generate(with(prompt, Strategy.STRATEGY_AUTOREGRESSIVE, null)).ids();
      assertThat(expected).hasSize(TOKENS);
      for (String draft : List.of("same", "draft", "mixed")) {
        for (int k : draft.equals("mixed") ? new int[] {4, 0} : new int[] {1, 4, 8, 0, -1}) {
          GenerateRequest.Builder req =
              with(prompt, Strategy.STRATEGY_SPECULATIVE, draft).toBuilder();
          req.setSpeculative(
              switch (k) {
                case 0 -> SpeculativeOptions.newBuilder().setK(2).setAdaptive(true).setMaxK(12);
                // Confidence-based early stop: the draft's top-1 probabilities of a random
                // model are around 1/512, so this threshold cuts some rounds short.
                case -1 -> SpeculativeOptions.newBuilder().setK(8).setMinDraftTokenProb(0.0045f);
                default -> SpeculativeOptions.newBuilder().setK(k);
              });
          Result r = mesh.generate(req.build());
          String what =
              "draft "
                  + draft
                  + ", k "
                  + (k == 0 ? "adaptive" : k < 0 ? "8 min-prob" : k)
                  + ", "
                  + prompt;
          assertThat(r.ids()).as(what).isEqualTo(expected);
          GenerationStats st = r.last().getStats();
          assertThat(st.getFallback()).as(what).isFalse();
          assertThat(st.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECULATIVE);
          assertThat(st.getRounds()).as(what).isPositive();
          long fromDraft =
              r.provenance().stream()
                  .filter(p -> p == Provenance.PROVENANCE_DRAFT_ACCEPTED_VALUE)
                  .count();
          assertThat(fromDraft).as(what).isLessThanOrEqualTo(st.getAccepted());
          if (draft.equals("same")) {
            acceptedSame += st.getAccepted();
            draftedSame += st.getDrafted();
            if (k == -1 && st.getDrafted() < 8 * st.getRounds() - 8) {
              cutShort++;
            }
            if (k == 8 && st.getAccepted() == st.getDrafted()) {
              // Every round fully accepted: each emitted its drafts plus a bonus token.
              bonusRoundsSame++;
            }
          } else if (draft.equals("draft")) {
            acceptedOther += st.getAccepted();
            draftedOther += st.getDrafted();
          } else {
            acceptedMixed += st.getAccepted();
            draftedMixed += st.getDrafted();
          }
        }
      }
    }
    double alphaSame = (double) acceptedSame / draftedSame;
    double alphaOther = (double) acceptedOther / draftedOther;
    double alphaMixed = (double) acceptedMixed / draftedMixed;
    System.out.printf(
        "greedy: alpha(same) = %.3f, alpha(other) = %.3f, alpha(mixed) = %.3f,"
            + " min-prob runs cut short: %d%n",
        alphaSame, alphaOther, alphaMixed, cutShort);
    assertThat(alphaSame).isGreaterThan(0.95);
    assertThat(alphaOther).isLessThan(0.5);
    assertThat(alphaMixed)
        .as("partial acceptance: drafts rolled back mid-round")
        .isBetween(0.1, 0.9);
    assertThat(bonusRoundsSame).isPositive();
    assertThat(cutShort).isPositive();
    mesh.assertAllSessionsClosed();
  }

  @Test
  void ngramDrafterEqualsAutoregressive() {
    long accepted = 0;
    for (GenerateRequest prompt : prompts) {
      List<Integer> expected =
          mesh.generate(with(prompt, Strategy.STRATEGY_AUTOREGRESSIVE, null)).ids();
      for (NgramOptions opts :
          List.of(
              NgramOptions.getDefaultInstance(),
              NgramOptions.newBuilder().setN(2).setMinN(2).setMaxMatch(8).build())) {
        Result r =
            mesh.generate(
                with(prompt, Strategy.STRATEGY_NGRAM, null).toBuilder().setNgram(opts).build());
        assertThat(r.ids()).as("ngram %s, %s", opts, prompt).isEqualTo(expected);
        GenerationStats st = r.last().getStats();
        assertThat(st.getStrategy()).isEqualTo(Strategy.STRATEGY_NGRAM);
        assertThat(st.getDraftCalls()).isZero();
        accepted += st.getAccepted();
        assertThat(
                r.provenance().stream()
                    .filter(p -> p == Provenance.PROVENANCE_NGRAM_ACCEPTED_VALUE)
                    .count())
            .isEqualTo(Math.min(st.getAccepted(), TOKENS));
      }
    }
    // Greedy output of a random model repeats itself, so prompt lookup must find matches.
    assertThat(accepted).isPositive();
  }

  static int[] toArray(List<Integer> ids) {
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }
}
