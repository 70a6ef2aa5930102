package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import io.draftmesh.assembly.MeshFixture;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationGrpc;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelSpec;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.Usage;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A real Prometheus (Debian's {@code prometheus} binary, installed by {@code .ci/run}) scrapes the
 * {@code /metrics} endpoints of a running mesh every second; after one speculative generation its
 * query API must show the speculation counters equal to the generation's own stats, the token usage
 * equal to its usage, one time-to-first-token observation, and the workers' KV blocks all free
 * again.
 */
class MetricsIT {
  private static BackendProcess prometheus;
  private static ObservedMesh mesh;

  @BeforeAll
  static void start() throws Exception {
    // As the launcher runs services by default: SDK disabled, only --metrics-port asked for.
    mesh = new ObservedMesh(Map.of("OTEL_SDK_DISABLED", "true"), true);
    Path dir = Files.createTempDirectory("prometheus-it");
    StringBuilder config =
        new StringBuilder(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    mesh.telemetry.forEach(
        (service, t) ->
            config
                .append("  - job_name: ")
                .append(service)
                .append("\n    static_configs:\n      - targets: ['127.0.0.1:")
                .append(t.metricsPort())
                .append("']\n"));
    Path yml = dir.resolve("prometheus.yml");
    Files.writeString(yml, config);
    int port = BackendProcess.freePort();
    prometheus =
        BackendProcess.start(
            "prometheus",
            port,
            List.of(
                binary(),
                "--config.file=" + yml,
                "--storage.tsdb.path=" + dir.resolve("data"),
                "--web.listen-address=127.0.0.1:" + port),
            "/-/ready",
            Duration.ofMinutes(1));
    // Every service scraped at least once before the generation.
    double up = pollValue("sum(up)", v -> v == mesh.telemetry.size(), Duration.ofSeconds(30));
    assertThat(up).as("targets up (prometheus log %s)", prometheus.log).isEqualTo(5);
  }

  private static String binary() {
    for (String p : List.of("/usr/bin/prometheus", "/usr/local/bin/prometheus")) {
      if (Files.isExecutable(Path.of(p))) {
        return p;
      }
    }
    throw new IllegalStateException(
        "no prometheus binary (expected: Debian's package, `apt-get install -y prometheus`, as"
            + " .ci/run does)");
  }

  @AfterAll
  static void stop() {
    if (mesh != null) {
      mesh.close();
    }
    if (prometheus != null) {
      prometheus.close();
    }
  }

  @Test
  void oneGenerationShowsUpAsCountersInPrometheus() throws Exception {
    ManagedChannel ch =
        Grpc.newChannelBuilder(
                "127.0.0.1:" + mesh.gateway.ports().grpc(), InsecureChannelCredentials.create())
            .build();
    GenerationStats stats = null;
    Usage usage = null;
    try {
      Iterator<GenerateChunk> it =
          GenerationGrpc.newBlockingStub(ch)
              .withCallCredentials(GenerationGrpcIT.bearer(ObservedMesh.KEY))
              .withDeadlineAfter(60, TimeUnit.SECONDS)
              .generate(
                  GenerateRequest.newBuilder()
                      .setText("In the beginning")
                      .setTarget(ObservedMesh.MODEL)
                      .setStrategy(Strategy.STRATEGY_SPECULATIVE)
                      .setIgnoreEos(true)
                      .setSampling(Sampling.newBuilder().setMaxTokens(32).setSeed(1))
                      .build());
      while (it.hasNext()) {
        GenerateChunk c = it.next();
        stats = c.getStats();
        if (c.hasUsage()) {
          usage = c.getUsage();
        }
      }
    } finally {
      ch.shutdownNow();
    }
    assertThat(usage).isNotNull();
    assertThat(stats.getRounds()).isPositive();
    int rounds = stats.getRounds();

    // The next scrape after the generation carries its counters.
    assertThat(
            pollValue(
                "sum(draftmesh_spec_decode_num_drafts_total)",
                v -> v == rounds,
                Duration.ofSeconds(30)))
        .isEqualTo(rounds);
    assertThat(value("sum(draftmesh_spec_decode_num_draft_tokens_total)"))
        .isEqualTo(stats.getDrafted());
    assertThat(
            value("sum(draftmesh_spec_decode_num_accepted_tokens_total{strategy=\"speculative\"})"))
        .isEqualTo(stats.getAccepted());
    assertThat(value("sum(draftmesh_spec_decode_num_accepted_tokens_per_pos_total)"))
        .isEqualTo(stats.getAccepted());
    if (stats.getAccepted() > 0) {
      assertThat(
              value("sum(draftmesh_spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"})"))
          .isBetween(1.0, (double) rounds);
    }
    assertThat(value("sum(draftmesh_fallbacks_total)")).isZero();

    // Latency histograms: one first token, and at least one step after it.
    assertThat(value("sum(draftmesh_time_to_first_token_seconds_count)")).isEqualTo(1);
    assertThat(value("sum(gen_ai_server_time_to_first_token_seconds_count)")).isEqualTo(1);
    assertThat(value("sum(draftmesh_inter_token_latency_seconds_count)")).isPositive();
    assertThat(value("sum(gen_ai_server_time_per_output_token_seconds_count)")).isEqualTo(1);
    assertThat(value("sum(gen_ai_server_request_duration_seconds_count)")).isEqualTo(1);
    assertThat(value("sum(draftmesh_request_success_total{finished_reason=\"length\"})"))
        .isEqualTo(1);

    // GenAI token usage: the request's own counts, per token type.
    assertThat(value("sum(gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"})"))
        .isEqualTo(usage.getPromptTokens());
    assertThat(value("sum(gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\"})"))
        .isEqualTo(usage.getCompletionTokens());
    assertThat(
            value(
                "sum(gen_ai_client_token_usage_count{gen_ai_operation_name=\"text_completion\"})"))
        .isEqualTo(2);

    // The router is idle again.
    assertThat(value("sum(draftmesh_num_requests_running)")).isZero();
    assertThat(value("sum(draftmesh_num_requests_waiting)")).isZero();

    // Workers: both ran forward steps, and after the generation every KV block is free again.
    for (var w : List.of(mesh.target, mesh.draft)) {
      ModelInfo info = MeshFixture.info("localhost:" + w.port());
      String role = "{role=\"" + info.getRole() + "\"}";
      assertThat(value("sum(draftmesh_engine_steps_total" + role + ")")).isPositive();
      assertThat(
              pollValue(
                  "sum(draftmesh_kv_blocks_used" + role + ")", v -> v == 0, Duration.ofSeconds(10)))
          .isZero();
      assertThat(value("sum(draftmesh_kv_blocks_free" + role + ")"))
          .isEqualTo(info.getKvBlocksTotal());
      assertThat(value("sum(draftmesh_sessions_active" + role + ")")).isZero();
      assertThat(value("sum(draftmesh_prefix_cache_queries_total" + role + ")")).isZero();
      assertThat(value("sum(draftmesh_prefix_cache_hits_total" + role + ")")).isZero();
    }

    // kvcache-service: a chain put, looked up and read back through the real client (the prompt
    // above fills no KV block, so the workers had nothing to look up), then its counters; the
    // target worker may have published blocks of its own, hence at least.
    int blockBytes = 4096;
    try (KvCacheClient kv =
        KvCacheClient.connect(
            "localhost:" + mesh.kvcache.port(),
            Duration.ofSeconds(10),
            1 << 20,
            OpenTelemetry.noop())) {
      byte[] fp = kv.register(KV_SPEC).orElseThrow();
      int[] tokens = IntStream.range(0, 2 * KV_SPEC.getBlockSize()).toArray();
      List<byte[]> keys = KvKeys.chain(fp, KV_SPEC.getBlockSize(), tokens);
      List<KvCacheClient.Block> chain = new ArrayList<>();
      for (int i = 0; i < keys.size(); i++) {
        byte[] payload = new byte[blockBytes];
        Arrays.fill(payload, (byte) (i + 1));
        int from = i * KV_SPEC.getBlockSize();
        chain.add(
            new KvCacheClient.Block(
                keys.get(i),
                i == 0 ? null : keys.get(i - 1),
                Arrays.copyOfRange(tokens, from, from + KV_SPEC.getBlockSize()),
                payload));
      }
      assertThat(kv.put(fp, chain)).isTrue();
      assertThat(kv.lookup(fp, KV_SPEC.getBlockSize(), tokens, 0).orElseThrow().cachedBlocks())
          .isEqualTo(2);
      assertThat(kv.get(keys)).isPresent();
    }
    assertThat(
            pollValue(
                "sum(draftmesh_kvcache_get_bytes_total)",
                v -> v >= 2 * blockBytes,
                Duration.ofSeconds(30)))
        .isGreaterThanOrEqualTo(2 * blockBytes);
    assertThat(value("sum(draftmesh_kvcache_put_bytes_total)"))
        .isGreaterThanOrEqualTo(2 * blockBytes);
    assertThat(value("sum(draftmesh_kvcache_lookup_blocks_hit_total)")).isGreaterThanOrEqualTo(2);
    assertThat(value("sum(draftmesh_kvcache_bytes{tier=\"memory\"})"))
        .isGreaterThanOrEqualTo(2 * blockBytes);
    assertThat(value("sum(draftmesh_kvcache_corrupt_dropped_total)")).isZero();

    // Every panel of the dashboard in k8s/ evaluates, on these metrics, to at least one series
    // (rates need two samples of a series, so the first queries may wait for another scrape).
    JsonObject dashboard =
        JsonParser.parseString(Files.readString(Path.of("..", "k8s", "grafana-dashboard.json")))
            .getAsJsonObject();
    int queries = 0;
    for (var panel : dashboard.getAsJsonArray("panels")) {
      for (var target : panel.getAsJsonObject().getAsJsonArray("targets")) {
        String expr = target.getAsJsonObject().get("expr").getAsString();
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        Double v = query(expr);
        while (v == null && System.nanoTime() < deadline) {
          Thread.sleep(250);
          v = query(expr);
        }
        assertThat(v).as("panel %s: %s", panel.getAsJsonObject().get("title"), expr).isNotNull();
        queries++;
      }
    }
    assertThat(queries).isGreaterThanOrEqualTo(32); // 17 mesh queries, 15 of kvcache-service
  }

  /** A model registered with kvcache-service by the test itself (the shape of a ~110M Llama). */
  private static final ModelSpec KV_SPEC =
      ModelSpec.newBuilder()
          .setArchitecture("LlamaForCausalLM")
          .setWeightsDigest(ByteString.copyFromUtf8("metrics-it"))
          .setDtype("float32")
          .setNumLayers(12)
          .setNumKvHeads(12)
          .setHeadDim(64)
          .setKvLayout("paged-v1")
          .setBlockSize(16)
          .build();

  /** The single value of an instant query; fails if it returned no series. */
  private static double value(String query) throws Exception {
    Double v = query(query);
    assertThat(v)
        .as("%s returned no series (prometheus log %s)", query, prometheus.log)
        .isNotNull();
    return v;
  }

  /** Runs {@code query} until {@code done} accepts its value or {@code within} passes. */
  private static double pollValue(
      String query, java.util.function.DoublePredicate done, Duration within) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    Double v = query(query);
    while ((v == null || !done.test(v)) && System.nanoTime() < deadline) {
      Thread.sleep(250);
      v = query(query);
    }
    assertThat(v)
        .as("%s returned no series (prometheus log %s)", query, prometheus.log)
        .isNotNull();
    return v;
  }

  private static Double query(String query) throws Exception {
    var r =
        prometheus.get("/api/v1/query?query=" + URLEncoder.encode(query, StandardCharsets.UTF_8));
    assertThat(r.statusCode()).as("%s: %s", query, r.body()).isEqualTo(200);
    JsonObject body = JsonParser.parseString(r.body()).getAsJsonObject();
    assertThat(body.get("status").getAsString()).isEqualTo("success");
    JsonArray result = body.getAsJsonObject("data").getAsJsonArray("result");
    if (result.isEmpty()) {
      return null;
    }
    return Double.parseDouble(
        result.get(0).getAsJsonObject().getAsJsonArray("value").get(1).getAsString());
  }
}
