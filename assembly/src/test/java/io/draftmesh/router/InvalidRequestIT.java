package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TextPart;
import io.draftmesh.proto.v1.TextParts;
import io.draftmesh.proto.v1.TokenIds;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Each bad request gets the right status, with a description naming the field and the value. */
class InvalidRequestIT {
  static TestMesh mesh;
  static FakeWorker otherTokenizer;
  static FakeWorker otherVocab;
  static RouterServer router;
  static ManagedChannel channel;
  static RouterServer bareRouter; // no tokenizers, no draft pool
  static ManagedChannel bareChannel;

  @BeforeAll
  static void start() throws Exception {
    mesh = TestMesh.get();
    otherTokenizer =
        new FakeWorker(
            mesh.targetInfo.toBuilder()
                .setModelId("fake-tok")
                .setTokenizerHash("0123abcd")
                .build());
    otherVocab =
        new FakeWorker(
            mesh.targetInfo.toBuilder().setModelId("fake-vocab").setVocabSize(600).build());
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", "localhost:" + mesh.workers.get("target").port());
    pools.put("draft", "localhost:" + mesh.workers.get("draft").port());
    pools.put("othertok", "localhost:" + otherTokenizer.port());
    pools.put("othervocab", "localhost:" + otherVocab.port());
    String name = InProcessServerBuilder.generateName();
    router =
        new RouterServer(
                InProcessServerBuilder.forName(name),
                mesh.config(pools, Duration.ofSeconds(5)),
                OpenTelemetry.noop())
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    String bare = InProcessServerBuilder.generateName();
    bareRouter =
        new RouterServer(
                InProcessServerBuilder.forName(bare),
                mesh.config(Map.of("target", pools.get("target")), Duration.ofSeconds(5))
                    .withTokenizers(List.of()),
                OpenTelemetry.noop())
            .start();
    bareChannel = InProcessChannelBuilder.forName(bare).build();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    bareChannel.shutdownNow();
    router.close();
    bareRouter.close();
    otherTokenizer.close();
    otherVocab.close();
  }

  static GenerateRequest.Builder ok() {
    return GenerateRequest.newBuilder()
        .setTokenIds(TokenIds.newBuilder().addIds(5).addIds(9))
        .setSampling(Sampling.newBuilder().setMaxTokens(3));
  }

  static Arguments bad(
      String name,
      UnaryOperator<GenerateRequest.Builder> edit,
      Status.Code code,
      String description) {
    return Arguments.of(name, edit.apply(ok()).build(), code, description);
  }

  static Stream<Arguments> cases() {
    Status.Code invalid = Status.Code.INVALID_ARGUMENT;
    TokenIds.Builder tooLong = TokenIds.newBuilder();
    for (int i = 0; i < TestMesh.MAX_CONTEXT; i++) {
      tooLong.addIds(3);
    }
    return Stream.of(
        bad("no prompt", b -> b.clearPrompt(), invalid, "prompt: missing"),
        bad("empty text", b -> b.setText(""), invalid, "text: empty"),
        bad(
            "no ids",
            b -> b.setTokenIds(TokenIds.getDefaultInstance()),
            invalid,
            "token_ids.ids: empty"),
        bad(
            "negative id",
            b -> b.setTokenIds(TokenIds.newBuilder().addIds(1).addIds(-4)),
            invalid,
            "token_ids.ids[1]: -4 (expected: >= 0)"),
        bad(
            "id past the vocab",
            b -> b.setTokenIds(TokenIds.newBuilder().addIds(512)),
            invalid,
            "token_ids.ids[0]: 512 (expected: 0..511)"),
        bad(
            "prompt fills the context",
            b -> b.setTokenIds(tooLong),
            invalid,
            "token_ids.ids: 1024 tokens (expected: fewer than the target's max context 1024)"),
        bad(
            "a 1 MiB word (refused before it is tokenized)",
            b -> b.setText("thethe".repeat((1 << 20) / 6) + "abcd"),
            invalid,
            "text: 1048576 characters (expected: at most "),
        bad(
            "no parts",
            b -> b.setParts(TextParts.getDefaultInstance()),
            invalid,
            "parts.parts: empty"),
        bad(
            "only empty parts",
            b -> b.setParts(TextParts.newBuilder().addParts(TextPart.getDefaultInstance())),
            invalid,
            "parts.parts: all empty"),
        bad("unknown strategy", b -> b.setStrategyValue(42), invalid, "strategy: 42"),
        bad(
            "negative temperature",
            b -> b.setSampling(Sampling.newBuilder().setTemperature(-1)),
            invalid,
            "sampling.temperature: -1.0"),
        bad(
            "NaN temperature",
            b -> b.setSampling(Sampling.newBuilder().setTemperature(Float.NaN)),
            invalid,
            "sampling.temperature: NaN"),
        bad(
            "top_p above 1",
            b -> b.setSampling(Sampling.newBuilder().setTopP(1.5f)),
            invalid,
            "sampling.top_p: 1.5"),
        bad(
            "min_p of 1",
            b -> b.setSampling(Sampling.newBuilder().setMinP(1f)),
            invalid,
            "sampling.min_p: 1.0"),
        bad(
            "top_k past the vocab",
            b -> b.setSampling(Sampling.newBuilder().setTopK(1000)),
            invalid,
            "sampling.top_k: 1000 (expected: 0 for off, or 1..512)"),
        bad(
            "negative max_tokens",
            b -> b.setSampling(Sampling.newBuilder().setMaxTokens(-1)),
            invalid,
            "sampling.max_tokens: -1"),
        bad(
            "max_tokens over the limit",
            b -> b.setSampling(Sampling.newBuilder().setMaxTokens(5000)),
            invalid,
            "sampling.max_tokens: 5000 (expected: 0 for the default 64, or 1..4096)"),
        bad(
            "empty stop",
            b -> b.setSampling(Sampling.newBuilder().addStop("ok").addStop("")),
            invalid,
            "sampling.stop[1]: 0 characters"),
        bad(
            "negative k",
            b -> b.setSpeculative(SpeculativeOptions.newBuilder().setK(-2)),
            invalid,
            "speculative.k: -2"),
        bad(
            "k past the workers' limit",
            b ->
                b.setStrategy(Strategy.STRATEGY_SPECULATIVE)
                    .setSpeculative(SpeculativeOptions.newBuilder().setK(17)),
            invalid,
            "speculative.k: 17 (expected: 0 for 4, or 1..16, the workers' max_tokens_per_op)"),
        bad(
            "max_k below k",
            b -> b.setSpeculative(SpeculativeOptions.newBuilder().setK(6).setMaxK(3)),
            invalid,
            "speculative.max_k: 3"),
        bad(
            "min_draft_token_prob of 1",
            b -> b.setSpeculative(SpeculativeOptions.newBuilder().setMinDraftTokenProb(1f)),
            invalid,
            "speculative.min_draft_token_prob: 1.0"),
        bad(
            "ngram n too large",
            b -> b.setNgram(NgramOptions.newBuilder().setN(100)),
            invalid,
            "ngram.n: 100"),
        bad(
            "ngram min_n above n",
            b -> b.setNgram(NgramOptions.newBuilder().setN(2).setMinN(3)),
            invalid,
            "ngram.min_n: 3"),
        bad(
            "negative max_match",
            b -> b.setNgram(NgramOptions.newBuilder().setMaxMatch(-1)),
            invalid,
            "ngram.max_match: -1"),
        bad("unknown target", b -> b.setTarget("nope"), Status.Code.NOT_FOUND, "target: nope"),
        bad(
            "unknown draft",
            b -> b.setStrategy(Strategy.STRATEGY_SPECULATIVE).setDraft("nope"),
            Status.Code.NOT_FOUND,
            "draft: nope"),
        bad(
            "draft with another tokenizer",
            b -> b.setStrategy(Strategy.STRATEGY_SPECULATIVE).setDraft("othertok"),
            Status.Code.FAILED_PRECONDITION,
            "draft: model fake-tok has tokenizer 0123abcd but target tiny-a has "
                + mesh.targetInfo.getTokenizerHash()),
        bad(
            "draft with another vocab",
            b -> b.setStrategy(Strategy.STRATEGY_SPECULATIVE).setDraft("othervocab"),
            Status.Code.FAILED_PRECONDITION,
            "draft: model fake-vocab has vocab size 600 but target tiny-a has 512"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void badRequestsGetTheRightStatus(
      String name, GenerateRequest request, Status.Code code, String description) {
    assertStatus(channel, request, code, description);
  }

  @Test
  void withoutTheTargetsTokenizerTextAndStopSequencesAreAFailedPrecondition() {
    String hash = mesh.targetInfo.getTokenizerHash();
    assertStatus(
        bareChannel,
        GenerateRequest.newBuilder().setText("hello").build(),
        Status.Code.FAILED_PRECONDITION,
        "text: the router has no tokenizer.json with the target's hash " + hash);
    assertStatus(
        bareChannel,
        ok().setSampling(Sampling.newBuilder().addStop("x")).build(),
        Status.Code.FAILED_PRECONDITION,
        "sampling.stop: the router has no tokenizer.json with the target's hash " + hash);
    // Ids still work, streamed without text.
    List<GenerateChunk> chunks = collect(bareChannel, ok().build());
    assertThat(chunks.get(chunks.size() - 1).getUsage().getCompletionTokens()).isPositive();
    assertThat(chunks).allSatisfy(c -> assertThat(c.getText()).isEmpty());
  }

  @Test
  void speculativeWithoutADraftPoolIsAFailedPrecondition() {
    assertStatus(
        bareChannel,
        ok().setStrategy(Strategy.STRATEGY_SPECULATIVE).build(),
        Status.Code.FAILED_PRECONDITION,
        "draft: none given and the router has no default draft pool");
  }

  @Test
  void workersCanBeNamedByModelId() {
    List<GenerateChunk> chunks =
        collect(
            channel,
            ok().setTarget("tiny-a")
                .setStrategy(Strategy.STRATEGY_SPECULATIVE)
                .setDraft("tiny-b")
                .build());
    assertThat(chunks.get(chunks.size() - 1).getStats().getTargetModel()).isEqualTo("tiny-a");
    assertThat(chunks.get(chunks.size() - 1).getStats().getDraftModel()).isEqualTo("tiny-b");
  }

  static void assertStatus(
      ManagedChannel ch, GenerateRequest request, Status.Code code, String description) {
    assertThatThrownBy(() -> collect(ch, request))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(code);
              assertThat(e.getStatus().getDescription()).contains(description);
            });
  }

  static List<GenerateChunk> collect(ManagedChannel ch, GenerateRequest request) {
    List<GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(ch)
        .withDeadlineAfter(30, TimeUnit.SECONDS)
        .generate(request)
        .forEachRemaining(out::add);
    return out;
  }
}
