package io.draftmesh.gateway;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.worker.WorkerServer;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The whole mesh on real loopback ports as four services would run it, each with its own
 * OpenTelemetry SDK (its own {@code service.name}, exporters and {@code /metrics} endpoint on a
 * free port), configured by the same {@code OTEL_*} variables a deployment sets: a target and a
 * draft worker on one tiny random Llama (so most drafts are accepted), the router ({@link Mesh}),
 * and a gateway serving it as model {@value #MODEL}; optionally a kvcache-service the target worker
 * and the router use ({@code --kvcache}).
 */
final class ObservedMesh implements AutoCloseable {
  static final String KEY = "observe-key-0123456789";
  static final String MODEL = "tiny";
  static final String TARGET_SERVICE = "draftmesh-target-service";
  static final String DRAFT_SERVICE = "draftmesh-draft-service";
  static final String ROUTER_SERVICE = "draftmesh-router";
  static final String GATEWAY_SERVICE = "draftmesh-gateway";
  static final String KVCACHE_SERVICE = "draftmesh-kvcache";
  private static final Map<String, String> SERVICE_OF =
      Map.of(Mesh.TARGET, TARGET_SERVICE, Mesh.DRAFT, DRAFT_SERVICE, Mesh.ROUTER, ROUTER_SERVICE);

  final Path dir;
  final Map<String, Telemetry> telemetry = new LinkedHashMap<>(); // by service name
  // Each set once by the constructor; null only when it failed before getting there.
  WorkerServer target;
  WorkerServer draft;
  GatewayServer gateway;
  KvCacheServer kvcache; // null without one
  private Mesh mesh;

  /** {@code otelEnv}: the {@code OTEL_*} variables every service gets (exporters, intervals). */
  ObservedMesh(Map<String, String> otelEnv) throws IOException, InterruptedException {
    this(otelEnv, false);
  }

  /** {@code withKvCache}: also a kvcache-service (its own telemetry) the target and router use. */
  ObservedMesh(Map<String, String> otelEnv, boolean withKvCache)
      throws IOException, InterruptedException {
    dir = Files.createTempDirectory("observed-mesh");
    Path model = dir.resolve("tiny-llama");
    RandomCheckpoint.write(model, RandomCheckpoint.tinyLlama(), 7, DType.F32, 0);
    try {
      String kvAddress = null;
      if (withKvCache) {
        kvcache =
            KvCacheServer.onPort(
                    KvCacheConfig.inMemory(64L << 20),
                    telemetry(KVCACHE_SERVICE, otelEnv).openTelemetry())
                .start();
        kvAddress = "localhost:" + kvcache.port();
      }
      mesh =
          Mesh.start(
              Mesh.Spec.builder(model, model)
                  .kvBudgets(16, 16)
                  .drainSeconds(0)
                  .kvCache(kvAddress)
                  .build(),
              component -> telemetry(SERVICE_OF.get(component), otelEnv).openTelemetry());
      target = mesh.targetWorker();
      draft = mesh.draftWorker();
      GatewayConfig gc =
          GatewayConfig.of(mesh.routerAddress(), List.of(KEY))
              .withModels(
                  List.of(new GatewayConfig.ModelSpec(MODEL, "target", "draft", model, null)));
      var otel = telemetry(GATEWAY_SERVICE, otelEnv).openTelemetry();
      gateway = LoopbackGateway.start(gc, otel);
    } catch (IOException | InterruptedException | RuntimeException e) {
      close();
      throw e;
    }
  }

  private Telemetry telemetry(String service, Map<String, String> otelEnv) {
    Map<String, String> env = new HashMap<>(otelEnv);
    env.put("OTEL_SERVICE_NAME", service);
    Telemetry t = Telemetry.withMetrics(env, service, "127.0.0.1", 0);
    telemetry.put(service, t);
    return t;
  }

  /** {@code POST /v1/completions} through the gateway's OpenAI API; returns the response body. */
  String complete(String prompt, int maxTokens) throws IOException, InterruptedException {
    return complete(prompt, maxTokens, Map.of());
  }

  /** The same, with extra request {@code headers} (e.g. a client's {@code traceparent}). */
  String complete(String prompt, int maxTokens, Map<String, String> headers)
      throws IOException, InterruptedException {
    String body =
        "{\"model\":\""
            + MODEL
            + "\",\"prompt\":\""
            + prompt
            + "\",\"max_tokens\":"
            + maxTokens
            + ",\"temperature\":0}";
    HttpClient http = HttpClient.newHttpClient();
    HttpRequest.Builder request =
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + gateway.ports().http() + "/v1/completions"))
            .header("Authorization", "Bearer " + KEY)
            .header("Content-Type", "application/json")
            .timeout(Duration.ofSeconds(60))
            .POST(HttpRequest.BodyPublishers.ofString(body));
    headers.forEach(request::header);
    HttpResponse<String> r = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException("completion: HTTP " + r.statusCode() + ": " + r.body());
    }
    return r.body();
  }

  /** Exports every span and metric the services hold now. */
  void flush() {
    telemetry.values().forEach(t -> t.flush(Duration.ofSeconds(10)));
  }

  @Override
  public void close() {
    if (gateway != null) {
      gateway.close();
    }
    if (mesh != null) {
      mesh.close();
    }
    if (kvcache != null) {
      kvcache.close();
    }
    telemetry.values().forEach(Telemetry::close);
  }
}
