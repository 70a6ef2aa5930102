package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.closeOp;
import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.KvCompacted;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.Status;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Open.compression over in-process gRPC: what the session keeps, reports and frees; bad fields. */
class KvCompressionSessionTest {
  @TempDir static Path dir;
  static InProcessWorker worker;
  static InferenceEngine engine;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    worker =
        InProcessWorker.ready(
            WorkerConfig.Role.TARGET, () -> TinyModel.load(TinyModel.config(model)));
    engine = worker.engine();
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  @AfterEach
  void everythingFreed() throws InterruptedException {
    Leaks.awaitAllFree(engine);
  }

  static SessionRequest.Builder compressed(int[] prompt, KvCompression c) {
    SessionRequest.Builder r = open(prompt);
    r.getOpenBuilder().setCompression(c);
    return r;
  }

  @Test
  void snapKvKeepsTheBudgetFreesTheRestAndDecodesOn() throws Exception {
    int total = engine.info().kvBlocksTotal();
    try (SessionStream s = worker.session()) {
      SessionResponse r =
          s.call(
              compressed(
                  TinyModel.prompt(100, 2),
                  KvCompression.newBuilder()
                      .setMethod("snapkv")
                      .setBudget(24)
                      .setWindow(8)
                      .build()));
      KvCompacted c = r.getOpened().getCompaction();
      assertThat(c.getMethod()).isEqualTo("snapkv");
      assertThat(c.getPromptTokens()).isEqualTo(100);
      assertThat(c.getKeptSlots()).isEqualTo(24);
      assertThat(c.getDroppedSlots()).isEqualTo(76);
      assertThat(c.getKvBlocksFreed()).isEqualTo(7 - 2); // 100 slots in 7 blocks of 16, 24 in 2
      assertThat(c.getKvBytesDropped()).isEqualTo(c.getKvBytesKept() / 24 * 76);
      assertThat(r.getLength()).isEqualTo(100);
      assertThat(r.getKvBlocks()).isEqualTo(2);
      assertThat(engine.info().kvBlocksFree()).isEqualTo(total - 2);
      SessionResponse p = s.call(propose(10));
      assertThat(p.getLength()).isEqualTo(110);
      assertThat(p.getKvBlocks()).isEqualTo(3); // 24 + 9 fed slots (the last token is unfed)
      s.call(closeOp());
    }
  }

  @Test
  void specKvDropsTheAnswerAndReFeedsTheLastPromptToken() throws Exception {
    try (SessionStream s = worker.session()) {
      SessionResponse r =
          s.call(
              compressed(
                  TinyModel.prompt(64, 3),
                  KvCompression.newBuilder()
                      .setMethod("speckv")
                      .setBudget(20)
                      .setWindow(8)
                      .setKernel(3)
                      .setAnswerTokens(4)
                      .build()));
      KvCompacted c = r.getOpened().getCompaction();
      assertThat(c.getPromptTokens()).isEqualTo(60);
      assertThat(c.getAnswerTokens()).isEqualTo(4);
      assertThat(c.getKeptSlots()).isEqualTo(21);
      assertThat(r.getLength()).isEqualTo(60);
      s.call(closeOp());
    }
  }

  @Test
  void badFieldsAreInvalidArgumentNamingThem() throws Exception {
    int[] prompt = TinyModel.prompt(40, 4);
    assertInvalid(
        prompt,
        KvCompression.newBuilder().setMethod("snapkv").setBudget(4).setWindow(8).build(),
        "open.compression.budget: 4 (expected: >= open.compression.window 8)");
    assertInvalid(
        prompt,
        KvCompression.newBuilder()
            .setMethod("snapkv")
            .setBudget(16)
            .setWindow(8)
            .setKernel(6)
            .build(),
        "open.compression.kernel: 6");
    assertInvalid(
        prompt,
        KvCompression.newBuilder().setMethod("pyramidkv").setBudget(16).build(),
        "open.compression.method: \"pyramidkv\"");
    assertInvalid(
        prompt,
        KvCompression.newBuilder().setMethod("h2o").setBudget(16).setKernel(7).build(),
        "open.compression.kernel: 7 (expected: 0; h2o does not pool its scores)");
    assertInvalid(
        prompt,
        KvCompression.newBuilder().setMethod("h2o").setBudget(16).setWindow(17).build(),
        "open.compression.window: 17 (expected: 0 for half the budget, or 1..16");
    assertInvalid(
        prompt,
        KvCompression.newBuilder()
            .setMethod("snapkv")
            .setBudget(16)
            .setWindow(8)
            .setAnswerTokens(2)
            .build(),
        "open.compression.answer_tokens: 2 with method snapkv");
    assertInvalid(
        prompt,
        KvCompression.newBuilder()
            .setMethod("speckv")
            .setBudget(16)
            .setWindow(8)
            .setAnswerTokens(40)
            .build(),
        "open.compression.answer_tokens: 40");
    assertInvalid(
        prompt,
        KvCompression.newBuilder().setMethod("streaming_llm").setBudget(2).setSinks(3).build(),
        "open.compression.sinks: 3");
  }

  private static void assertInvalid(int[] prompt, KvCompression c, String message)
      throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(compressed(prompt, c));
      assertThat(st.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(st.getDescription()).contains(message);
    }
  }
}
