package io.draftmesh.router;

import static io.draftmesh.telemetry.MeshAttributes.DRAFT_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.ERROR_TYPE;
import static io.draftmesh.telemetry.MeshAttributes.FALLBACK;
import static io.draftmesh.telemetry.MeshAttributes.FALLBACK_REASON;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_OPERATION_NAME;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_PROVIDER_NAME;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_REQUEST_MAX_TOKENS;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_REQUEST_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_REQUEST_TEMPERATURE;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_RESPONSE_FINISH_REASONS;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_RESPONSE_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_USAGE_INPUT_TOKENS;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_USAGE_OUTPUT_TOKENS;
import static io.draftmesh.telemetry.MeshAttributes.REQUEST_ID;
import static io.draftmesh.telemetry.MeshAttributes.SPEC_ACCEPTED;
import static io.draftmesh.telemetry.MeshAttributes.SPEC_DRAFTED;
import static io.draftmesh.telemetry.MeshAttributes.SPEC_K;
import static io.draftmesh.telemetry.MeshAttributes.SPEC_ROUND;
import static io.draftmesh.telemetry.MeshAttributes.SPEC_ROUNDS;
import static io.draftmesh.telemetry.MeshAttributes.STRATEGY;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.telemetry.GenerationMetrics;
import io.draftmesh.telemetry.MeshAttributes;
import io.grpc.Status;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The trace and metrics of one {@code Router.Generate} call. A request span named as the GenAI
 * conventions say ({@code text_completion <model>}), child of the gRPC server span, parent of the
 * worker sessions' client spans (so the workers' server spans join the same trace) and of one span
 * per verify round with DraftMesh's speculation attributes.
 *
 * <p>It only observes: the decoding loop reports rounds through {@link RunStats.Listener} and the
 * streamed chunks pass through {@link #chunk}. A round span starts where the previous step ended
 * (its last chunk, or the previous round) and ends when its verification returns: every step ends
 * with a flush, so that is when the round's draft calls began, without a clock call in the loop.
 *
 * <p>Used by the request's decoding thread, except {@link #start} (the transport thread).
 */
final class RequestTelemetry implements RunStats.Listener {
  private final Tracer tracer;
  private final GenerationMetrics metrics;
  private final Span span;
  private final Context context; // the request span's
  private final long startNanos;
  private final long startEpochNanos;
  private String model = "";
  private long firstTokenNanos = -1;
  private long lastStepNanos; // end of the previous streamed step or round
  private int rounds;
  private boolean ended;
  private boolean completed; // the final chunk went out

  private RequestTelemetry(
      Tracer tracer, GenerationMetrics metrics, Span span, Context context, long startNanos) {
    this.tracer = tracer;
    this.metrics = metrics;
    this.span = span;
    this.context = context;
    this.startNanos = startNanos;
    this.lastStepNanos = startNanos;
    Instant now = Instant.now();
    this.startEpochNanos = TimeUnit.SECONDS.toNanos(now.getEpochSecond()) + now.getNano();
  }

  /** Starts the request span under the current (gRPC server span's) context. */
  static RequestTelemetry start(
      Tracer tracer, GenerationMetrics metrics, GenerateRequest request, String label) {
    String requested = request.getTarget();
    Span span =
        tracer
            .spanBuilder(
                MeshAttributes.OPERATION_TEXT_COMPLETION
                    + (requested.isEmpty() ? "" : " " + requested))
            .setSpanKind(SpanKind.INTERNAL)
            .setAttribute(GEN_AI_OPERATION_NAME, MeshAttributes.OPERATION_TEXT_COMPLETION)
            .setAttribute(GEN_AI_PROVIDER_NAME, MeshAttributes.PROVIDER)
            .setAttribute(GEN_AI_REQUEST_MODEL, requested)
            .setAttribute(REQUEST_ID, label)
            .setAttribute(
                GEN_AI_REQUEST_TEMPERATURE, (double) request.getSampling().getTemperature())
            .startSpan();
    if (request.getSampling().getMaxTokens() > 0) {
      span.setAttribute(GEN_AI_REQUEST_MAX_TOKENS, (long) request.getSampling().getMaxTokens());
    }
    return new RequestTelemetry(
        tracer, metrics, span, Context.current().with(span), System.nanoTime());
  }

  /** Makes the request span current on the decoding thread. */
  Scope makeCurrent() {
    return context.makeCurrent();
  }

  /** Every chunk the request streams, before it is sent. */
  void chunk(GenerateChunk c) {
    long now = System.nanoTime();
    if (model.isEmpty() && !c.getStats().getTargetModel().isEmpty()) {
      model(c.getStats().getTargetModel(), c.getStats().getDraftModel());
    }
    if (c.getTokenIdsCount() > 0) {
      if (firstTokenNanos < 0) {
        firstTokenNanos = now;
        metrics.firstToken(model, seconds(now - startNanos));
      } else {
        metrics.interToken(model, seconds(now - lastStepNanos));
      }
      lastStepNanos = now;
    }
    if (c.getFinishReason() != FinishReason.FINISH_REASON_UNSPECIFIED) {
      finished(c, now);
    }
  }

  private void model(String target, String draft) {
    model = target;
    span.setAttribute(GEN_AI_RESPONSE_MODEL, target);
    span.updateName(MeshAttributes.OPERATION_TEXT_COMPLETION + " " + target);
    if (!draft.isEmpty()) {
      span.setAttribute(DRAFT_MODEL, draft);
    }
  }

  private void finished(GenerateChunk c, long now) {
    completed = true;
    String reason = finishReason(c.getFinishReason());
    String strategy = strategy(c.getStats().getStrategy());
    span.setAttribute(GEN_AI_USAGE_INPUT_TOKENS, (long) c.getUsage().getPromptTokens());
    span.setAttribute(GEN_AI_USAGE_OUTPUT_TOKENS, (long) c.getUsage().getCompletionTokens());
    span.setAttribute(GEN_AI_RESPONSE_FINISH_REASONS, List.of(reason));
    span.setAttribute(STRATEGY, strategy);
    span.setAttribute(SPEC_ROUNDS, (long) c.getStats().getRounds());
    span.setAttribute(SPEC_DRAFTED, (long) c.getStats().getDrafted());
    span.setAttribute(SPEC_ACCEPTED, (long) c.getStats().getAccepted());
    span.setAttribute(FALLBACK, c.getStats().getFallback());
    if (c.getStats().getFallback()) {
      span.setAttribute(FALLBACK_REASON, c.getStats().getFallbackReason());
      metrics.fallback(strategy);
    }
    metrics.finished(
        model,
        reason,
        c.getUsage().getPromptTokens(),
        c.getUsage().getCompletionTokens(),
        seconds(now - startNanos),
        firstTokenNanos < 0 ? -1 : seconds(firstTokenNanos - startNanos));
  }

  @Override
  public void round(Strategy strategy, int k, int drafted, int accepted) {
    long now = System.nanoTime();
    String name = strategy(strategy);
    rounds++;
    metrics.verifyRound(name, drafted, accepted);
    Span round =
        tracer
            .spanBuilder("verify " + name)
            .setParent(context)
            .setStartTimestamp(epochNanos(lastStepNanos), TimeUnit.NANOSECONDS)
            .setAttribute(STRATEGY, name)
            .setAttribute(SPEC_ROUND, (long) rounds)
            .setAttribute(SPEC_K, (long) k)
            .setAttribute(SPEC_DRAFTED, (long) drafted)
            .setAttribute(SPEC_ACCEPTED, (long) accepted)
            .setAttribute(FALLBACK, false)
            .startSpan();
    round.end(epochNanos(now), TimeUnit.NANOSECONDS);
    lastStepNanos = now;
  }

  /**
   * Ends the request span: {@code error} null for a request that completed (or whose client left:
   * {@code cancelled} says why), else the status it failed with. A request whose final chunk went
   * out completed, whatever {@code cancelled} says: gRPC cancels a call's context once the call has
   * closed, which reaches the generation's cancel listener after a normal end too.
   */
  void end(Status error, String cancelled) {
    if (ended) {
      return;
    }
    ended = true;
    if (error != null) {
      String type = error.getCode().name();
      span.setStatus(
          StatusCode.ERROR, error.getDescription() == null ? type : error.getDescription());
      span.setAttribute(ERROR_TYPE, type);
      metrics.failed(model, type, seconds(System.nanoTime() - startNanos));
    } else if (cancelled != null && !completed) {
      span.setAttribute(ERROR_TYPE, Status.Code.CANCELLED.name());
      span.addEvent("cancelled: " + cancelled);
      metrics.failed(model, Status.Code.CANCELLED.name(), seconds(System.nanoTime() - startNanos));
    }
    span.end();
  }

  private long epochNanos(long nanoTime) {
    return startEpochNanos + (nanoTime - startNanos);
  }

  private static double seconds(long nanos) {
    return nanos / 1e9;
  }

  /** {@code speculative}, {@code ngram}, {@code autoregressive}: the enum without its prefix. */
  static String strategy(Strategy s) {
    return s.name().replace("STRATEGY_", "").toLowerCase(Locale.ROOT);
  }

  /** The GenAI conventions' (and OpenAI's) spelling: {@code stop}, {@code length}, ... */
  static String finishReason(FinishReason r) {
    return switch (r) {
      case FINISH_REASON_EOS, FINISH_REASON_STOP -> "stop";
      case FINISH_REASON_LENGTH -> "length";
      default -> r.name().replace("FINISH_REASON_", "").toLowerCase(Locale.ROOT);
    };
  }
}
