package io.draftmesh.gateway;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.flags.Keepalive;
import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterServer;
import io.draftmesh.telemetry.Telemetry;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
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
 * draft worker on one tiny random Llama (so most drafts are accepted), the router, and a gateway
 * serving it as model {@value #MODEL}.
 */
final class ObservedMesh implements AutoCloseable {
  static final String KEY = "observe-key-0123456789";
  static final String MODEL = "tiny";
  static final String TARGET_SERVICE = "draftmesh-target-service";
  static final String DRAFT_SERVICE = "draftmesh-draft-service";
  static final String ROUTER_SERVICE = "draftmesh-router";
  static final String GATEWAY_SERVICE = "draftmesh-gateway";

  final Path dir;
  final Map<String, Telemetry> telemetry = new LinkedHashMap<>(); // by service name
  // Each set once by the constructor; null only when it failed before getting there.
  WorkerServer target;
  WorkerServer draft;
  RouterServer router;
  GatewayServer gateway;

  /** {@code otelEnv}: the {@code OTEL_*} variables every service gets (exporters, intervals). */
  ObservedMesh(Map<String, String> otelEnv) throws IOException, InterruptedException {
    dir = Files.createTempDirectory("observed-mesh");
    Path model = dir.resolve("tiny-llama");
    RandomCheckpoint.write(model, RandomCheckpoint.tinyLlama(), 7, DType.F32, 0);
    try {
      target = worker(WorkerConfig.Role.TARGET, model, telemetry(TARGET_SERVICE, otelEnv));
      draft = worker(WorkerConfig.Role.DRAFT, model, telemetry(DRAFT_SERVICE, otelEnv));
      target.awaitReady(Duration.ofMinutes(2));
      draft.awaitReady(Duration.ofMinutes(2));
      Map<String, String> pools = new LinkedHashMap<>();
      pools.put("target", "localhost:" + target.port());
      pools.put("draft", "localhost:" + draft.port());
      RouterConfig config =
          new RouterConfig(
              0,
              pools,
              "target",
              "draft",
              List.of(model.resolve(Checkpoint.TOKENIZER_JSON)),
              64,
              8192,
              8,
              Duration.ofSeconds(30),
              Duration.ofSeconds(10),
              8,
              Duration.ofSeconds(1),
              Keepalive.DEFAULT);
      router =
          RouterServer.onPort(config, telemetry(ROUTER_SERVICE, otelEnv).openTelemetry()).start();
      GatewayConfig gc =
          GatewayConfig.of("localhost:" + router.port(), List.of(KEY))
              .withModels(
                  List.of(new GatewayConfig.ModelSpec(MODEL, "target", "draft", model, null)));
      var otel = telemetry(GATEWAY_SERVICE, otelEnv).openTelemetry();
      gateway =
          new GatewayServer(
              NettyServerBuilder.forAddress(
                  new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create()),
              new InetSocketAddress("127.0.0.1", 0),
              GatewayServer.routerChannel(gc.router(), Keepalive.DEFAULT, otel),
              gc,
              otel);
      gateway.start();
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

  private static WorkerServer worker(WorkerConfig.Role role, Path model, Telemetry t)
      throws IOException {
    EngineConfig engine = new EngineConfig(model, 16L << 20, 8, 16, 16, 16 + 256, 1024);
    return new WorkerServer(
            Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()),
            role,
            () -> InferenceEngine.load(engine),
            Duration.ZERO,
            t.openTelemetry())
        .start();
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
    if (router != null) {
      router.close();
    }
    if (draft != null) {
      draft.close();
    }
    if (target != null) {
      target.close();
    }
    telemetry.values().forEach(Telemetry::close);
  }
}
