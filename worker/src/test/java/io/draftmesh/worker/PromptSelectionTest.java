package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.compaction.DraftAttentionProbe;
import io.draftmesh.engine.compaction.SpecPcPolicy;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.SelectPromptTokensRequest;
import io.draftmesh.proto.v1.SelectPromptTokensResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code SelectPromptTokens}: SpecPC's draft side on a real (in-process) worker. */
class PromptSelectionTest {
  @TempDir static Path dir;
  static InProcessWorker worker;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    worker =
        InProcessWorker.ready(
            WorkerConfig.Role.DRAFT, () -> TinyModel.load(TinyModel.config(model)));
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  static SelectPromptTokensRequest request(int length, int budget) {
    SelectPromptTokensRequest.Builder b =
        SelectPromptTokensRequest.newBuilder()
            .setBudgetTokens(budget)
            .setWindow(8)
            .setKernel(4)
            .setNeighborTokens(3)
            .setLookaheadTokens(2)
            .setStartingLayer(8);
    for (int id : TinyModel.prompt(length, 4)) {
      b.addPromptIds(id);
    }
    return b.build();
  }

  @Test
  void keepsTheBudgetChosenFromTheModelsOwnAttention() {
    SelectPromptTokensRequest req = request(100, 24);
    SelectPromptTokensResponse r = worker.blocking().selectPromptTokens(req);
    assertThat(r.getRanModel()).isTrue();
    assertThat(r.getStartingLayer()).isZero(); // the tiny model has no layer 8
    assertThat(r.getLookaheadTokenIdsCount()).isEqualTo(2);
    // The same probe and policy run directly on the worker's model give the same indices.
    int[] prompt = req.getPromptIdsList().stream().mapToInt(Integer::intValue).toArray();
    DraftAttentionProbe.Result read =
        DraftAttentionProbe.run(worker.engine().model(), prompt, 8, 2);
    SpecPcPolicy p = new SpecPcPolicy(8, 4, 3, 8);
    assertThat(r.getKeptIndicesList())
        .containsExactlyElementsOf(
            IntStream.of(p.select(p.scores(read.prefill(), read.steps()), 24)).boxed().toList());
    // No KV of the engine's pool was used or leaked, no session opened.
    ModelInfo info = worker.blocking().getModelInfo(GetModelInfoRequest.getDefaultInstance());
    assertThat(info.getKvBlocksFree()).isEqualTo(info.getKvBlocksTotal());
    assertThat(info.getActiveSessions()).isZero();
  }

  @Test
  void aBudgetCoveringThePromptKeepsAllWithoutRunningTheModel() {
    SelectPromptTokensResponse r = worker.blocking().selectPromptTokens(request(20, 20));
    assertThat(r.getRanModel()).isFalse();
    assertThat(r.getKeptIndicesList())
        .containsExactlyElementsOf(IntStream.range(0, 20).boxed().toList());
  }

  @Test
  void badFieldsAreInvalidArgumentNamingThem() {
    assertInvalid(b -> b.setBudgetTokens(4), "budget_tokens: 4 (expected: >= window 8)");
    assertInvalid(b -> b.setWindow(0), "window: 0");
    assertInvalid(b -> b.setKernel(0), "kernel: 0");
    assertInvalid(b -> b.setNeighborTokens(0), "neighbor_tokens: 0");
    assertInvalid(b -> b.setStartingLayer(-1), "starting_layer: -1");
    assertInvalid(b -> b.setLookaheadTokens(0), "lookahead_tokens: 0");
    assertInvalid(b -> b.setPromptIds(3, 99_999), "prompt_ids[3]: 99999");
    assertInvalid(b -> b.clearPromptIds(), "prompt_ids: 0 tokens");
    assertInvalid(
        b -> b.addAllPromptIds(IntStream.range(0, 200).boxed().toList()), "prompt_ids: 300 tokens");
  }

  private static void assertInvalid(
      UnaryOperator<SelectPromptTokensRequest.Builder> change, String message) {
    SelectPromptTokensRequest r = change.apply(request(100, 24).toBuilder()).build();
    assertThatThrownBy(() -> worker.blocking().selectPromptTokens(r))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
              assertThat(e.getStatus().getDescription()).contains(message);
            });
  }
}
