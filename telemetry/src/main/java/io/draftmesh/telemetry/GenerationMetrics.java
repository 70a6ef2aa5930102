package io.draftmesh.telemetry;

import static io.draftmesh.telemetry.MeshAttributes.ERROR_TYPE;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_OPERATION_NAME;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_PROVIDER_NAME;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_REQUEST_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_RESPONSE_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.GEN_AI_TOKEN_TYPE;
import static io.draftmesh.telemetry.MeshAttributes.LABEL_FINISHED_REASON;
import static io.draftmesh.telemetry.MeshAttributes.LABEL_MODEL;
import static io.draftmesh.telemetry.MeshAttributes.LABEL_POSITION;
import static io.draftmesh.telemetry.MeshAttributes.LABEL_STRATEGY;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.metrics.DoubleHistogram;
import io.opentelemetry.api.metrics.LongCounter;
import io.opentelemetry.api.metrics.LongHistogram;
import io.opentelemetry.api.metrics.Meter;
import io.opentelemetry.api.metrics.ObservableLongGauge;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The router's metrics of generations, in two vocabularies over the same measurements: vLLM-style
 * names ({@code draftmesh_spec_decode_num_drafts_total}, {@code
 * draftmesh_time_to_first_token_seconds}, ...), so dashboards built for vLLM carry over with the
 * prefix changed, and the OpenTelemetry GenAI server metrics ({@code
 * gen_ai.server.time_to_first_token}, {@code gen_ai.server.time_per_output_token}, {@code
 * gen_ai.client.token.usage}, {@code gen_ai.server.request.duration}). Instrument names are
 * OpenTelemetry's; the Prometheus endpoint turns dots into underscores, adds {@code _total} to
 * counters and the unit to the rest (see {@link MetricsEndpoint}).
 *
 * <p>Definitions (as vLLM's): a <em>draft</em> is one verify round; draft tokens are the tokens
 * sent for verification; accepted tokens are those the target kept (the correction/bonus token is
 * not counted); {@code num_accepted_tokens_per_pos{position=i}} counts rounds whose draft token i
 * (0-based) was accepted, so per-position acceptance is it divided by {@code num_drafts}. The
 * inter-token latency is observed once per streamed step (a verify round streams several tokens at
 * once), and {@code gen_ai.server.time_per_output_token} once per request, as (duration - time to
 * first token) / (output tokens - 1).
 */
public final class GenerationMetrics {
  static final String SCOPE = "io.draftmesh.router";

  // vLLM's bucket boundaries, with finer ones below 10 ms: small models on CPUs step that fast.
  private static final List<Double> TTFT_BUCKETS =
      List.of(
          0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
          10.0, 20.0, 40.0, 80.0, 160.0, 640.0);
  private static final List<Double> ITL_BUCKETS =
      List.of(
          0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
          2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0);
  // The GenAI conventions' advice for token counts and request durations.
  private static final List<Long> TOKEN_BUCKETS =
      List.of(1L, 4L, 16L, 64L, 256L, 1024L, 4096L, 16384L, 65536L, 262144L, 1048576L);
  private static final List<Double> DURATION_BUCKETS =
      List.of(
          0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92);

  private final Meter meter;
  private final LongCounter numDrafts;
  private final LongCounter numDraftTokens;
  private final LongCounter numAcceptedTokens;
  private final LongCounter numAcceptedPerPos;
  private final LongCounter fallbacks;
  private final LongCounter requestSuccess;
  private final DoubleHistogram timeToFirstToken;
  private final DoubleHistogram interTokenLatency;
  private final DoubleHistogram genAiTimeToFirstToken;
  private final DoubleHistogram genAiTimePerOutputToken;
  private final DoubleHistogram genAiRequestDuration;
  private final LongHistogram genAiTokenUsage;

  public GenerationMetrics(OpenTelemetry otel) {
    meter = otel.getMeter(SCOPE);
    numDrafts =
        meter
            .counterBuilder("draftmesh.spec_decode.num_drafts")
            .setDescription("Verify rounds (speculative and n-gram)")
            .build();
    numDraftTokens =
        meter
            .counterBuilder("draftmesh.spec_decode.num_draft_tokens")
            .setDescription("Draft tokens sent to the target for verification")
            .build();
    numAcceptedTokens =
        meter
            .counterBuilder("draftmesh.spec_decode.num_accepted_tokens")
            .setDescription("Draft tokens the target accepted")
            .build();
    numAcceptedPerPos =
        meter
            .counterBuilder("draftmesh.spec_decode.num_accepted_tokens_per_pos")
            .setDescription("Rounds whose draft token at this 0-based position was accepted")
            .build();
    fallbacks =
        meter
            .counterBuilder("draftmesh.fallbacks")
            .setDescription("Requests that dropped their draft and went on with the target alone")
            .build();
    // At 0 from the start: "no fallback yet" must read differently from "not reported".
    fallbacks.add(0, Attributes.of(LABEL_STRATEGY, "speculative"));
    requestSuccess =
        meter
            .counterBuilder("draftmesh.request_success")
            .setDescription("Requests that finished, by finish reason")
            .build();
    timeToFirstToken =
        meter
            .histogramBuilder("draftmesh.time_to_first_token")
            .setUnit("s")
            .setDescription("From the router receiving a request to streaming its first token")
            .setExplicitBucketBoundariesAdvice(TTFT_BUCKETS)
            .build();
    interTokenLatency =
        meter
            .histogramBuilder("draftmesh.inter_token_latency")
            .setUnit("s")
            .setDescription("Time between two streamed steps of one request")
            .setExplicitBucketBoundariesAdvice(ITL_BUCKETS)
            .build();
    genAiTimeToFirstToken =
        meter
            .histogramBuilder("gen_ai.server.time_to_first_token")
            .setUnit("s")
            .setDescription("Time to generate first token for successful responses")
            .setExplicitBucketBoundariesAdvice(TTFT_BUCKETS)
            .build();
    genAiTimePerOutputToken =
        meter
            .histogramBuilder("gen_ai.server.time_per_output_token")
            .setUnit("s")
            .setDescription("Time per output token generated after the first token")
            .setExplicitBucketBoundariesAdvice(ITL_BUCKETS)
            .build();
    genAiRequestDuration =
        meter
            .histogramBuilder("gen_ai.server.request.duration")
            .setUnit("s")
            .setDescription("Generative AI server request duration")
            .setExplicitBucketBoundariesAdvice(DURATION_BUCKETS)
            .build();
    genAiTokenUsage =
        meter
            .histogramBuilder("gen_ai.client.token.usage")
            .ofLongs()
            .setUnit("{token}")
            .setDescription("Number of input and output tokens used")
            .setExplicitBucketBoundariesAdvice(TOKEN_BUCKETS)
            .build();
  }

  /** One verify round of {@code strategy}: {@code drafted} tokens sent, {@code accepted} kept. */
  public void verifyRound(String strategy, int drafted, int accepted) {
    Attributes a = Attributes.of(LABEL_STRATEGY, strategy);
    numDrafts.add(1, a);
    numDraftTokens.add(drafted, a);
    numAcceptedTokens.add(accepted, a);
    for (int i = 0; i < accepted; i++) {
      numAcceptedPerPos.add(1, Attributes.of(LABEL_STRATEGY, strategy, LABEL_POSITION, (long) i));
    }
  }

  /** A request of {@code strategy} dropped its draft. */
  public void fallback(String strategy) {
    fallbacks.add(1, Attributes.of(LABEL_STRATEGY, strategy));
  }

  /** The first token of a request on {@code model} streamed {@code seconds} after it arrived. */
  public void firstToken(String model, double seconds) {
    timeToFirstToken.record(seconds, Attributes.of(LABEL_MODEL, model));
    genAiTimeToFirstToken.record(seconds, genAi(model));
  }

  /** A later step of a request on {@code model} streamed {@code seconds} after the previous one. */
  public void interToken(String model, double seconds) {
    interTokenLatency.record(seconds, Attributes.of(LABEL_MODEL, model));
  }

  /**
   * A request on {@code model} finished with {@code finishReason} (e.g. {@code stop}, {@code
   * length}) after {@code durationSeconds}; {@code ttftSeconds} is negative if no token streamed.
   */
  public void finished(
      String model,
      String finishReason,
      int inputTokens,
      int outputTokens,
      double durationSeconds,
      double ttftSeconds) {
    Attributes attrs = genAi(model);
    requestSuccess.add(1, Attributes.of(LABEL_MODEL, model, LABEL_FINISHED_REASON, finishReason));
    genAiRequestDuration.record(durationSeconds, attrs);
    genAiTokenUsage.record(inputTokens, attrs.toBuilder().put(GEN_AI_TOKEN_TYPE, "input").build());
    genAiTokenUsage.record(
        outputTokens, attrs.toBuilder().put(GEN_AI_TOKEN_TYPE, "output").build());
    if (outputTokens > 1 && ttftSeconds >= 0) {
      genAiTimePerOutputToken.record((durationSeconds - ttftSeconds) / (outputTokens - 1), attrs);
    }
  }

  /** A request on {@code model} (empty if none was resolved) failed with {@code errorType}. */
  public void failed(String model, String errorType, double durationSeconds) {
    genAiRequestDuration.record(
        durationSeconds, genAi(model).toBuilder().put(ERROR_TYPE, errorType).build());
  }

  /**
   * Reports {@code draftmesh_num_requests_running} and {@code _waiting} from the suppliers at each
   * collection, until the returned handle is closed.
   */
  public AutoCloseable requestGauges(LongSupplier running, LongSupplier waiting) {
    ObservableLongGauge r =
        meter
            .gaugeBuilder("draftmesh.num_requests_running")
            .ofLongs()
            .setDescription("Requests being decoded")
            .buildWithCallback(m -> m.record(running.getAsLong()));
    ObservableLongGauge w =
        meter
            .gaugeBuilder("draftmesh.num_requests_waiting")
            .ofLongs()
            .setDescription("Requests queued for a decoding slot")
            .buildWithCallback(m -> m.record(waiting.getAsLong()));
    return () -> {
      r.close();
      w.close();
    };
  }

  private static Attributes genAi(String model) {
    return Attributes.of(
        GEN_AI_OPERATION_NAME,
        MeshAttributes.OPERATION_TEXT_COMPLETION,
        GEN_AI_PROVIDER_NAME,
        MeshAttributes.PROVIDER,
        GEN_AI_REQUEST_MODEL,
        model,
        GEN_AI_RESPONSE_MODEL,
        model);
  }
}
