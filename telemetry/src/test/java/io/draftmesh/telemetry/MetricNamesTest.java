package io.draftmesh.telemetry;

import static org.assertj.core.api.Assertions.assertThat;

import io.opentelemetry.exporter.prometheus.PrometheusMetricReader;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.metrics.SdkMeterProvider;
import io.prometheus.metrics.config.EscapingScheme;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The names and values Prometheus scrapes, as the endpoint writes them: vLLM-style names with
 * {@code _total} on counters and {@code _seconds} on latencies, the GenAI metrics with their
 * attributes as labels, and per-position acceptance counted as documented.
 */
class MetricNamesTest {
  private PrometheusMetricReader reader;
  private OpenTelemetrySdk sdk;

  @BeforeEach
  void sdk() {
    reader = PrometheusMetricReader.builder().setOtelScopeLabelsEnabled(false).build();
    sdk =
        OpenTelemetrySdk.builder()
            .setMeterProvider(SdkMeterProvider.builder().registerMetricReader(reader).build())
            .build();
  }

  @AfterEach
  void close() {
    sdk.close();
  }

  private String scrape() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrometheusTextFormatWriter.create()
        .write(out, reader.collect(), EscapingScheme.UNDERSCORE_ESCAPING);
    return out.toString(StandardCharsets.UTF_8);
  }

  @Test
  void speculationCountersAndPerPositionAcceptance() throws Exception {
    GenerationMetrics m = new GenerationMetrics(sdk);
    m.verifyRound("speculative", 4, 2);
    m.verifyRound("speculative", 4, 0);
    m.verifyRound("ngram", 3, 3);
    String text = scrape();
    assertThat(text)
        .contains("draftmesh_spec_decode_num_drafts_total{strategy=\"speculative\"} 2.0")
        .contains("draftmesh_spec_decode_num_draft_tokens_total{strategy=\"speculative\"} 8.0")
        .contains("draftmesh_spec_decode_num_accepted_tokens_total{strategy=\"speculative\"} 2.0")
        .contains("draftmesh_spec_decode_num_accepted_tokens_total{strategy=\"ngram\"} 3.0")
        .contains(
            "draftmesh_spec_decode_num_accepted_tokens_per_pos_total{position=\"0\",strategy=\"speculative\"} 1.0")
        .contains(
            "draftmesh_spec_decode_num_accepted_tokens_per_pos_total{position=\"1\",strategy=\"speculative\"} 1.0")
        .doesNotContain("position=\"2\",strategy=\"speculative\"")
        .contains(
            "draftmesh_spec_decode_num_accepted_tokens_per_pos_total{position=\"2\",strategy=\"ngram\"} 1.0")
        .contains("draftmesh_fallbacks_total{strategy=\"speculative\"} 0.0");
    m.fallback("speculative");
    assertThat(scrape()).contains("draftmesh_fallbacks_total{strategy=\"speculative\"} 1.0");
  }

  @Test
  void latencyHistogramsAndGenAiMetrics() throws Exception {
    GenerationMetrics m = new GenerationMetrics(sdk);
    m.firstToken("tiny", 0.03);
    m.interToken("tiny", 0.004);
    m.interToken("tiny", 0.006);
    m.finished("tiny", "length", 5, 11, 0.13, 0.03);
    String text = scrape();
    assertThat(text)
        .contains("draftmesh_time_to_first_token_seconds_count{model=\"tiny\"} 1")
        .contains("draftmesh_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"0.04\"} 1")
        .contains("draftmesh_time_to_first_token_seconds_bucket{model=\"tiny\",le=\"0.02\"} 0")
        .contains("draftmesh_inter_token_latency_seconds_count{model=\"tiny\"} 2")
        .contains("draftmesh_request_success_total{finished_reason=\"length\",model=\"tiny\"} 1.0")
        .contains(
            "gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name=\"text_completion\",gen_ai_provider_name=\"draftmesh\",gen_ai_request_model=\"tiny\",gen_ai_response_model=\"tiny\"} 1")
        .contains(
            "gen_ai_client_token_usage_sum{gen_ai_operation_name=\"text_completion\",gen_ai_provider_name=\"draftmesh\",gen_ai_request_model=\"tiny\",gen_ai_response_model=\"tiny\",gen_ai_token_type=\"input\"} 5")
        .contains("gen_ai_token_type=\"output\"} 11")
        .contains("gen_ai_server_request_duration_seconds_count{");
    // (0.13 - 0.03) / (11 - 1) = 0.01 s per output token after the first.
    assertThat(text)
        .containsPattern(
            "gen_ai_server_time_per_output_token_seconds_sum\\{[^}]*\\} 0\\.01\\d*\\n");
  }

  @Test
  void requestAndWorkerGaugesAreReadAtCollection() throws Exception {
    GenerationMetrics g = new GenerationMetrics(sdk);
    long[] running = {3};
    AutoCloseable gauges = g.requestGauges(() -> running[0], () -> 1);
    WorkerMetrics.Snapshot[] snap = {null};
    WorkerMetrics w = WorkerMetrics.register(sdk, "target", () -> snap[0]);
    String before = scrape();
    assertThat(before)
        .contains("draftmesh_num_requests_running 3")
        .contains("draftmesh_num_requests_waiting 1")
        .doesNotContain("draftmesh_kv_blocks_used") // no engine loaded yet
        .contains("draftmesh_prefix_cache_queries_total{role=\"target\"} 0.0")
        .contains("draftmesh_prefix_cache_hits_total{role=\"target\"} 0.0");
    running[0] = 0;
    snap[0] = new WorkerMetrics.Snapshot("m", 2, 5, 59, 17, null);
    assertThat(scrape()).doesNotContain("kvcache_link"); // a worker without a link
    snap[0] =
        new WorkerMetrics.Snapshot(
            "m", 2, 5, 59, 17, new WorkerMetrics.KvCacheLink(7, 3, 1, 9, 2, 4, 5, 6, 8, 10, 11));
    w.prefixCacheQueried(32, 16);
    String after = scrape();
    assertThat(after)
        .contains("draftmesh_num_requests_running 0")
        .contains("draftmesh_kv_blocks_used{model=\"m\",role=\"target\"} 5")
        .contains("draftmesh_kv_blocks_free{model=\"m\",role=\"target\"} 59")
        .contains("draftmesh_sessions_active{model=\"m\",role=\"target\"} 2")
        .contains("draftmesh_engine_steps_total{model=\"m\",role=\"target\"} 17.0")
        .contains("draftmesh_prefix_cache_queries_total{role=\"target\"} 32.0")
        .contains("draftmesh_prefix_cache_hits_total{role=\"target\"} 16.0")
        .contains("draftmesh_kvcache_link_fetched_blocks_total{model=\"m\",role=\"target\"} 7.0")
        .contains("draftmesh_kvcache_link_fetch_misses_total{model=\"m\",role=\"target\"} 3.0")
        .contains("draftmesh_kvcache_link_garbage_blocks_total{model=\"m\",role=\"target\"} 1.0")
        .contains("draftmesh_kvcache_link_published_blocks_total{model=\"m\",role=\"target\"} 9.0")
        .contains("draftmesh_kvcache_link_publish_dropped_total{model=\"m\",role=\"target\"} 2.0")
        .contains("draftmesh_kvcache_link_failed_put_blocks_total{model=\"m\",role=\"target\"} 4.0")
        .contains("draftmesh_kvcache_link_client_failures_total{model=\"m\",role=\"target\"} 5.0")
        .contains(
            "draftmesh_kvcache_link_restored_compacted_total{model=\"m\",role=\"target\"} 6.0")
        .contains("draftmesh_kvcache_link_compacted_misses_total{model=\"m\",role=\"target\"} 8.0")
        .contains(
            "draftmesh_kvcache_link_garbage_compacted_total{model=\"m\",role=\"target\"} 10.0")
        .contains(
            "draftmesh_kvcache_link_stored_compacted_total{model=\"m\",role=\"target\"} 11.0");
    gauges.close();
    w.close();
    assertThat(scrape())
        .doesNotContain("draftmesh_num_requests_running")
        .doesNotContain("kv_blocks_free");
  }
}
