package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.Usage;
import io.draftmesh.telemetry.GenerationMetrics;
import io.draftmesh.telemetry.MeshAttributes;
import io.grpc.Status;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.context.Scope;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The request span and the verify-round spans one generation leaves, without a mesh. */
class RequestTelemetryTest {
  private final List<SpanData> spans = new CopyOnWriteArrayList<>();
  private OpenTelemetrySdk sdk;

  @BeforeEach
  void sdk() {
    SpanExporter collect =
        new SpanExporter() {
          @Override
          public CompletableResultCode export(Collection<SpanData> s) {
            spans.addAll(s);
            return CompletableResultCode.ofSuccess();
          }

          @Override
          public CompletableResultCode flush() {
            return CompletableResultCode.ofSuccess();
          }

          @Override
          public CompletableResultCode shutdown() {
            return CompletableResultCode.ofSuccess();
          }
        };
    sdk =
        OpenTelemetrySdk.builder()
            .setTracerProvider(
                SdkTracerProvider.builder()
                    .addSpanProcessor(SimpleSpanProcessor.create(collect))
                    .build())
            .build();
  }

  @AfterEach
  void close() {
    sdk.close();
  }

  private RequestTelemetry start(Span parent) {
    GenerateRequest request =
        GenerateRequest.newBuilder()
            .setText("hi")
            .setTarget("target")
            .setSampling(Sampling.newBuilder().setMaxTokens(8).setTemperature(0.5f))
            .build();
    try (Scope s = parent.makeCurrent()) {
      return RequestTelemetry.start(
          sdk.getTracer("test"), new GenerationMetrics(sdk), request, "req-1");
    }
  }

  private static GenerateChunk chunk(int tokens, GenerationStats stats) {
    GenerateChunk.Builder c = GenerateChunk.newBuilder().setStats(stats);
    for (int i = 0; i < tokens; i++) {
      c.addTokenIds(i);
    }
    return c.build();
  }

  @Test
  void requestSpanParentsEveryRoundAndCarriesTheGenAiAttributes() throws Exception {
    Span server = sdk.getTracer("test").spanBuilder("server").startSpan();
    RequestTelemetry t = start(server);
    GenerationStats running =
        GenerationStats.newBuilder()
            .setStrategy(Strategy.STRATEGY_SPECULATIVE)
            .setTargetModel("big")
            .setDraftModel("small")
            .build();
    try (Scope s = t.makeCurrent()) {
      assertThat(Span.current().getSpanContext().getSpanId())
          .isNotEqualTo(server.getSpanContext().getSpanId());
      t.chunk(chunk(1, running));
      Thread.sleep(2);
      t.round(Strategy.STRATEGY_SPECULATIVE, 4, 4, 3);
      t.chunk(chunk(4, running));
      t.round(Strategy.STRATEGY_SPECULATIVE, 4, 2, 0);
      t.chunk(chunk(1, running));
      t.chunk(
          GenerateChunk.newBuilder()
              .setFinishReason(FinishReason.FINISH_REASON_LENGTH)
              .setUsage(Usage.newBuilder().setPromptTokens(2).setCompletionTokens(6))
              .setStats(running.toBuilder().setRounds(2).setDrafted(6).setAccepted(3))
              .build());
    }
    t.end(null, "client cancelled"); // the context's cancel after a normal close
    server.end();

    SpanData request = named("text_completion big");
    assertThat(request.getAttributes().get(MeshAttributes.ERROR_TYPE)).isNull();
    assertThat(request.getEvents()).isEmpty();
    assertThat(request.getParentSpanId()).isEqualTo(server.getSpanContext().getSpanId());
    var a = request.getAttributes();
    assertThat(a.get(MeshAttributes.GEN_AI_OPERATION_NAME)).isEqualTo("text_completion");
    assertThat(a.get(MeshAttributes.GEN_AI_REQUEST_MODEL)).isEqualTo("target");
    assertThat(a.get(MeshAttributes.GEN_AI_RESPONSE_MODEL)).isEqualTo("big");
    assertThat(a.get(MeshAttributes.DRAFT_MODEL)).isEqualTo("small");
    assertThat(a.get(MeshAttributes.GEN_AI_REQUEST_MAX_TOKENS)).isEqualTo(8L);
    assertThat(a.get(MeshAttributes.GEN_AI_USAGE_INPUT_TOKENS)).isEqualTo(2L);
    assertThat(a.get(MeshAttributes.GEN_AI_USAGE_OUTPUT_TOKENS)).isEqualTo(6L);
    assertThat(a.get(MeshAttributes.GEN_AI_RESPONSE_FINISH_REASONS)).containsExactly("length");
    assertThat(a.get(MeshAttributes.SPEC_ROUNDS)).isEqualTo(2L);
    assertThat(a.get(MeshAttributes.FALLBACK)).isFalse();
    assertThat(request.getStatus().getStatusCode()).isEqualTo(StatusCode.UNSET);

    List<SpanData> rounds =
        spans.stream().filter(s -> s.getName().equals("verify speculative")).toList();
    assertThat(rounds).hasSize(2);
    for (SpanData r : rounds) {
      assertThat(r.getParentSpanId()).isEqualTo(request.getSpanId());
      assertThat(r.getTraceId()).isEqualTo(server.getSpanContext().getTraceId());
      assertThat(r.getStartEpochNanos())
          .isBetween(request.getStartEpochNanos(), r.getEndEpochNanos());
      assertThat(r.getEndEpochNanos()).isLessThanOrEqualTo(request.getEndEpochNanos());
    }
    assertThat(rounds.get(0).getAttributes().get(MeshAttributes.SPEC_K)).isEqualTo(4L);
    assertThat(rounds.get(0).getAttributes().get(MeshAttributes.SPEC_DRAFTED)).isEqualTo(4L);
    assertThat(rounds.get(0).getAttributes().get(MeshAttributes.SPEC_ACCEPTED)).isEqualTo(3L);
    assertThat(rounds.get(1).getAttributes().get(MeshAttributes.SPEC_ROUND)).isEqualTo(2L);
    // The second round starts where the first one's chunk went out: rounds do not overlap.
    assertThat(rounds.get(1).getStartEpochNanos())
        .isGreaterThanOrEqualTo(rounds.get(0).getEndEpochNanos());
  }

  @Test
  void aFailedRequestEndsItsSpanWithTheStatusOnce() {
    Span server = sdk.getTracer("test").spanBuilder("server").startSpan();
    RequestTelemetry t = start(server);
    t.end(Status.UNAVAILABLE.withDescription("target down"), null);
    t.end(null, null);
    server.end();
    SpanData request = named("text_completion target");
    assertThat(request.getStatus().getStatusCode()).isEqualTo(StatusCode.ERROR);
    assertThat(request.getStatus().getDescription()).isEqualTo("target down");
    assertThat(request.getAttributes().get(MeshAttributes.ERROR_TYPE)).isEqualTo("UNAVAILABLE");
    assertThat(spans.stream().filter(s -> s.getName().startsWith("text_completion"))).hasSize(1);
  }

  @Test
  void aRequestCancelledBeforeItsLastChunkSaysSo() {
    Span server = sdk.getTracer("test").spanBuilder("server").startSpan();
    RequestTelemetry t = start(server);
    t.end(null, "client cancelled");
    server.end();
    SpanData request = named("text_completion target");
    assertThat(request.getAttributes().get(MeshAttributes.ERROR_TYPE)).isEqualTo("CANCELLED");
    assertThat(request.getEvents())
        .extracting(e -> e.getName())
        .containsExactly("cancelled: client cancelled");
  }

  @Test
  void namesAsTheConventionsSpellThem() {
    assertThat(RequestTelemetry.strategy(Strategy.STRATEGY_NGRAM)).isEqualTo("ngram");
    assertThat(RequestTelemetry.finishReason(FinishReason.FINISH_REASON_EOS)).isEqualTo("stop");
    assertThat(RequestTelemetry.finishReason(FinishReason.FINISH_REASON_STOP)).isEqualTo("stop");
    assertThat(RequestTelemetry.finishReason(FinishReason.FINISH_REASON_LENGTH))
        .isEqualTo("length");
  }

  private SpanData named(String name) {
    List<SpanData> found = spans.stream().filter(s -> s.getName().equals(name)).toList();
    assertThat(found).as("spans named %s among %s", name, spans).hasSize(1);
    return found.get(0);
  }
}
