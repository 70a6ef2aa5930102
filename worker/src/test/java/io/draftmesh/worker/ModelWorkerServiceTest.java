package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.append;
import static io.draftmesh.worker.SessionStream.closeOp;
import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static io.draftmesh.worker.SessionStream.score;
import static io.draftmesh.worker.SessionStream.truncate;
import static io.draftmesh.worker.SessionStream.verify;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.grpc.Status;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Session contract over in-process gRPC against a real engine on a tiny random checkpoint. */
class ModelWorkerServiceTest {
  @TempDir static Path dir;
  static InProcessWorker worker;
  static InferenceEngine engine;
  static int vocab;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    worker =
        InProcessWorker.ready(
            WorkerConfig.Role.TARGET, () -> TinyModel.load(TinyModel.config(model)));
    engine = worker.engine();
    vocab = engine.vocabSize();
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  /** Whatever a test did, every session must end up closed and every KV block back in the pool. */
  @AfterEach
  void everythingFreed() throws InterruptedException {
    Leaks.awaitAllFree(engine);
  }

  @Test
  void modelInfoDescribesTheEngine() {
    ModelInfo info = worker.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance());
    assertThat(info.getRole()).isEqualTo("target");
    assertThat(info.getVocabSize()).isEqualTo(vocab);
    assertThat(info.getArchitecture()).isEqualTo("LlamaForCausalLM");
    assertThat(info.getMaxContext()).isEqualTo(TinyModel.MAX_CONTEXT);
    assertThat(info.getMaxTokensPerOp()).isEqualTo(TinyModel.MAX_TOKENS_PER_OP);
    assertThat(info.getMaxSessions()).isEqualTo(TinyModel.MAX_SESSIONS);
    assertThat(info.getKvBlockSize()).isEqualTo(TinyModel.BLOCK_SIZE);
    assertThat(info.getKvBlocksFree()).isEqualTo(info.getKvBlocksTotal()).isPositive();
    assertThat(info.getTokenizerHash()).hasSize(64);
    assertThat(info.getDtype()).isEqualTo("float32");
    assertThat(info.getKvDtype()).isEqualTo("float32");
    assertThat(info.getDevice()).startsWith("cpu");
    assertThat(info.getNumLayers()).isEqualTo(2);
    assertThat(info.getNumParameters()).isPositive();
  }

  @Test
  void fullLifecycleReportsLengthsAndFreesEveryBlock() throws Exception {
    int total = engine.info().kvBlocksTotal();
    try (SessionStream s = worker.session()) {
      SessionResponse opened = s.call(open(TinyModel.prompt(20, 1)));
      assertThat(opened.getOpened().getSessionId()).isNotEmpty();
      assertThat(opened.getLength()).isEqualTo(20);
      assertThat(opened.getKvBlocks()).isEqualTo(2); // 20 tokens fed, blocks of 16
      assertThat(opened.getOpened().getNext().getTokenId())
          .isEqualTo(opened.getOpened().getNext().getArgmaxTokenId());
      assertThat(engine.info().kvBlocksFree()).isEqualTo(total - 2);

      SessionResponse scored =
          s.call(
              SessionRequest.newBuilder()
                  .setScore(
                      Score.newBuilder()
                          .addAllTokenIds(List.of(5, 6, 7))
                          .setOptions(ResultOptions.newBuilder().setTopKProbs(4))));
      assertThat(scored.getScored().getPositionsList()).hasSize(4);
      assertThat(scored.getScored().getPositions(0).getTop().getTokenIds().size()).isEqualTo(16);
      assertThat(scored.getScored().getPositions(0).getTop().getProbs().size()).isEqualTo(16);
      assertThat(scored.getLength()).isEqualTo(23);
      assertThat(scored.getKvBlocks()).isEqualTo(2);

      SessionResponse proposed = s.call(propose(6));
      assertThat(proposed.getProposed().getTokenIdsList()).hasSize(6);
      assertThat(proposed.getProposed().getPositionsList()).hasSize(6);
      assertThat(proposed.getLength()).isEqualTo(29);
      assertBlocksCover(proposed);

      SessionResponse verified = s.call(verify(9, 10, 11));
      int accepted = verified.getVerified().getAccepted();
      assertThat(accepted).isBetween(0, 3);
      assertThat(verified.getVerified().getBonus()).isEqualTo(accepted == 3);
      assertThat(verified.getLength()).isEqualTo(29 + accepted + 1);
      assertBlocksCover(verified);

      SessionResponse truncated = s.call(truncate(12));
      assertThat(truncated.hasTruncated()).isTrue();
      assertThat(truncated.getLength()).isEqualTo(12);
      assertThat(truncated.getKvBlocks()).isEqualTo(1);

      SessionResponse appended = s.call(append(3, 4));
      assertThat(appended.hasAppended()).isTrue();
      assertThat(appended.getLength()).isEqualTo(14);

      SessionResponse rescored = s.call(score());
      assertThat(rescored.getScored().getPositionsList()).hasSize(1);
      assertThat(rescored.getKvBlocks()).isEqualTo(1);

      SessionResponse closed = s.call(closeOp());
      assertThat(closed.getClosed().getKvBlocksFreed()).isEqualTo(1);
      assertThat(closed.getKvBlocks()).isZero();
      assertThat(s.awaitEnd().getCode()).isEqualTo(Status.Code.OK);
    }
    assertThat(engine.info().kvBlocksFree()).isEqualTo(total);
    assertThat(engine.info().activeSessions()).isZero();
  }

  @Test
  void pipelinedRequestsAreAnsweredInOrder() throws Exception {
    try (SessionStream s = worker.session()) {
      s.send(open(TinyModel.prompt(10, 2)));
      s.send(propose(3));
      s.send(append(7));
      s.send(score(8, 9));
      s.send(truncate(5));
      s.send(closeOp());
      List<SessionResponse> all = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        all.add(s.next());
      }
      assertThat(all)
          .extracting(SessionResponse::getRequestId)
          .containsExactly(1L, 2L, 3L, 4L, 5L, 6L);
      assertThat(all).extracting(SessionResponse::getLength).containsExactly(10, 13, 14, 16, 5, 5);
      assertThat(s.awaitEnd().isOk()).isTrue();
    }
  }

  @Test
  void greedyVerifyOfItsOwnProposalAcceptsEverythingAndAddsABonus() throws Exception {
    int[] prompt = TinyModel.prompt(15, 3);
    List<Integer> drafted;
    int following;
    try (SessionStream draft = worker.session()) {
      draft.call(open(prompt));
      drafted = draft.call(propose(5)).getProposed().getTokenIdsList();
      following = draft.call(propose(1)).getProposed().getTokenIds(0);
      draft.call(closeOp());
    }
    try (SessionStream target = worker.session()) {
      target.call(open(prompt));
      SessionResponse v =
          target.call(
              SessionRequest.newBuilder()
                  .setVerify(
                      Verify.newBuilder()
                          .addAllDraftTokenIds(drafted)
                          .setOptions(ResultOptions.newBuilder().setTopKProbs(1))));
      assertThat(v.getVerified().getAccepted()).isEqualTo(5);
      assertThat(v.getVerified().getBonus()).isTrue();
      assertThat(v.getVerified().getNextTokenId()).isEqualTo(following);
      assertThat(v.getVerified().getPositionsList()).hasSize(6);
      assertThat(v.getLength()).isEqualTo(15 + 5 + 1);
      target.call(closeOp());
    }
  }

  /**
   * A tree verify with node_top_k answers, per node, the same top-k as scoring the node's path as a
   * chain in a session of its own: ids, and probabilities as float32 within 1e-5.
   */
  @Test
  void treeVerifyNodeTopIsEachNodesPathScoredAsAChain() throws Exception {
    int[] prompt = TinyModel.prompt(10, 4);
    int[] nodes = {5, 6, 7, 8, 9};
    int[] parents = {-1, -1, 0, 2, 1};
    int k = 5;
    Verified tree;
    try (SessionStream target = worker.session()) {
      target.call(open(prompt));
      tree =
          target
              .call(
                  SessionRequest.newBuilder()
                      .setVerify(
                          Verify.newBuilder()
                              .addAllDraftTokenIds(Arrays.stream(nodes).boxed().toList())
                              .addAllTreeParents(Arrays.stream(parents).boxed().toList())
                              .setOptions(ResultOptions.newBuilder().setNodeTopK(k))))
              .getVerified();
      target.call(closeOp());
    }
    assertThat(tree.getNodeTopList()).hasSize(nodes.length);
    for (int j = 0; j < nodes.length; j++) {
      List<Integer> path = new ArrayList<>();
      for (int n = j; n >= 0; n = parents[n]) {
        path.add(0, nodes[n]);
      }
      ProbDistribution expected;
      try (SessionStream chain = worker.session()) {
        chain.call(open(prompt));
        List<io.draftmesh.proto.v1.Position> scored =
            chain
                .call(
                    SessionRequest.newBuilder()
                        .setScore(
                            Score.newBuilder()
                                .addAllTokenIds(path)
                                .setOptions(ResultOptions.newBuilder().setTopKProbs(k))))
                .getScored()
                .getPositionsList();
        expected = scored.get(scored.size() - 1).getTop();
        chain.call(closeOp());
      }
      ProbDistribution got = tree.getNodeTop(j);
      assertThat(ProtoCodec.unpackInts(got.getTokenIds()))
          .as("node %d", j)
          .containsExactly(ProtoCodec.unpackInts(expected.getTokenIds()));
      float[] a = ProtoCodec.unpackFloats(got.getProbs());
      float[] b = ProtoCodec.unpackFloats(expected.getProbs());
      assertThat(a).hasSize(k);
      for (int i = 0; i < k; i++) {
        assertThat(Math.abs(a[i] - b[i])).isLessThan(1e-5f);
      }
    }
  }

  @Test
  void badNodeTopKIsInvalidArgumentNamingTheField() throws Exception {
    SessionRequest.Builder tooMany =
        SessionRequest.newBuilder()
            .setVerify(
                Verify.newBuilder()
                    .addDraftTokenIds(4)
                    .addTreeParents(-1)
                    .setOptions(ResultOptions.newBuilder().setNodeTopK(vocab + 1)));
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(
          s.fails(tooMany),
          "verify.options.node_top_k: " + (vocab + 1) + " (expected: 0 for none, or 1.." + vocab);
    }
    SessionRequest.Builder chain =
        SessionRequest.newBuilder()
            .setVerify(
                Verify.newBuilder()
                    .addDraftTokenIds(4)
                    .setOptions(ResultOptions.newBuilder().setNodeTopK(3)));
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(
          s.fails(chain), "verify.options.node_top_k: 3 (expected: 0; only a tree verify");
    }
    SessionRequest.Builder propose =
        SessionRequest.newBuilder()
            .setPropose(
                Propose.newBuilder().setK(1).setOptions(ResultOptions.newBuilder().setNodeTopK(3)));
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(propose), "propose.options.node_top_k: 3");
    }
  }

  @Test
  void halfCloseWithoutCloseFinishesQueuedWorkThenClosesTheSession() throws Exception {
    try (SessionStream s = worker.session()) {
      s.send(open(TinyModel.prompt(30, 4)));
      s.send(propose(4));
      s.halfClose();
      assertThat(s.next().hasOpened()).isTrue();
      assertThat(s.next().getProposed().getTokenIdsCount()).isEqualTo(4);
      assertThat(s.awaitEnd().isOk()).isTrue();
    }
  }

  @Test
  void tokenOutsideVocabularyIsInvalidArgumentNamingTheField() throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(open(1, vocab, 2));
      assertInvalid(st, "open.prompt_ids[1]: " + vocab);
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(append(4, -1)), "append.token_ids[1]: -1");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(verify(vocab + 5)), "verify.draft_token_ids[0]");
    }
  }

  @Test
  void proposeKOutsideOneToMaxTokensPerOp() throws Exception {
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(propose(0)), "propose.k: 0 (expected: 1..16)");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(propose(17)), "propose.k: 17");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(
          s.fails(
              SessionRequest.newBuilder()
                  .setPropose(Propose.newBuilder().setK(2).setMinTokenProb(1.5f))),
          "propose.min_token_prob");
    }
  }

  @Test
  void firstRequestMustBeOpenAndOnlyOnce() throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(propose(2));
      assertThat(st.getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertThat(st.getDescription()).contains("first request: propose").contains("expected: open");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      Status st = s.fails(open(4, 5));
      assertThat(st.getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
      assertThat(st.getDescription()).contains("open: the session is already open");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2, 3));
      assertInvalid(s.fails(SessionRequest.newBuilder()), "op: not set");
    }
  }

  @Test
  void promptLongerThanContext() throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(open(TinyModel.prompt(TinyModel.MAX_CONTEXT + 1, 5)));
      assertInvalid(st, "open.prompt_ids: 129 tokens (expected: 1..128)");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(TinyModel.prompt(TinyModel.MAX_CONTEXT - 2, 5)));
      assertInvalid(s.fails(propose(3)), "max context 128");
    }
  }

  @Test
  void badSamplingParams() throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(open(SamplingParams.newBuilder().setTemperature(-0.5f).build(), 1, 2));
      assertInvalid(st, "sampling.temperature: -0.5");
    }
    try (SessionStream s = worker.session()) {
      Status st =
          s.fails(open(SamplingParams.newBuilder().setTemperature(1f).setTopP(1.5f).build(), 1, 2));
      assertInvalid(st, "sampling.top_p: 1.5");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(1, 2));
      Status st =
          s.fails(
              SessionRequest.newBuilder()
                  .setScore(
                      Score.newBuilder()
                          .setOptions(ResultOptions.newBuilder().setTopKProbs(vocab + 1))));
      assertInvalid(st, "score.options.top_k_probs: " + (vocab + 1));
    }
  }

  @Test
  void malformedDraftDistributions() throws Exception {
    SamplingParams sampling = SamplingParams.newBuilder().setTemperature(1f).setSeed(3).build();
    try (SessionStream s = worker.session()) {
      s.call(open(sampling, 1, 2, 3));
      Status st =
          s.fails(
              verifyWith(
                  ProbDistribution.newBuilder()
                      .setProbs(com.google.protobuf.ByteString.copyFrom(new byte[7]))
                      .build()));
      assertInvalid(st, "verify.draft_distributions[0].probs: 7 bytes");
    }
    try (SessionStream s = worker.session()) {
      s.call(open(sampling, 1, 2, 3));
      Status st =
          s.fails(
              verifyWith(
                  ProbDistribution.newBuilder()
                      .setTokenIds(ProtoCodec.packInts(new int[] {4, vocab}))
                      .setProbs(ProtoCodec.packFloats(new float[] {0.5f, 0.5f}))
                      .build()));
      assertInvalid(st, "verify.draft_distributions[0].token_ids[1]: " + vocab);
    }
    try (SessionStream s = worker.session()) {
      s.call(open(sampling, 1, 2, 3));
      // A sampling session needs one distribution per draft token.
      assertInvalid(s.fails(verify(4)), "verify.draft_distributions: 0 given");
    }
  }

  @Test
  void moreSessionsThanConfiguredIsResourceExhausted() throws Exception {
    List<SessionStream> open = new ArrayList<>();
    try {
      for (int i = 0; i < TinyModel.MAX_SESSIONS; i++) {
        SessionStream s = worker.session();
        open.add(s);
        s.call(open(1, 2, 3));
      }
      try (SessionStream extra = worker.session()) {
        Status st = extra.fails(open(1, 2, 3));
        assertThat(st.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
        assertThat(st.getDescription()).contains("sessions");
      }
      assertThat(engine.info().activeSessions()).isEqualTo(TinyModel.MAX_SESSIONS);
    } finally {
      open.forEach(SessionStream::close);
    }
  }

  @Test
  void messagesNeverLeakInternals() {
    Status st = Statuses.toStatus(new IllegalStateException("secret detail"));
    assertThat(st.getCode()).isEqualTo(Status.Code.INTERNAL);
    assertThat(st.getDescription()).doesNotContain("secret");
  }

  private static SessionRequest.Builder verifyWith(ProbDistribution d) {
    return SessionRequest.newBuilder()
        .setVerify(Verify.newBuilder().addDraftTokenIds(4).addDraftDistributions(d));
  }

  private static void assertInvalid(Status st, String descriptionPart) {
    assertThat(st.getCode()).as(st.toString()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    assertThat(st.getDescription()).contains(descriptionPart);
  }

  /** KV covers every fed token: all but at most the last (which may be unfed). */
  private static void assertBlocksCover(SessionResponse r) {
    int len = r.getLength();
    int bs = TinyModel.BLOCK_SIZE;
    assertThat(r.getKvBlocks()).isBetween((len - 1 + bs - 1) / bs, (len + bs - 1) / bs);
  }
}
