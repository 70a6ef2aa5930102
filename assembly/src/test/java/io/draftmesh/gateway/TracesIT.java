package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * One generation through the real mesh (gateway HTTP, router, draft and target workers on loopback
 * ports), its spans exported by each service's SDK with the Zipkin exporter to a real Zipkin server
 * ({@code io.zipkin:zipkin-server} exec jar, copied by the build into {@code target/zipkin}), and
 * read back from Zipkin's API: one trace, every span's parent in it, the parents as the design
 * says, and the GenAI and speculation attributes on the request and round spans.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TracesIT {
  private static BackendProcess zipkin;
  private static ObservedMesh mesh;

  @BeforeAll
  static void start() throws Exception {
    Path jar = Path.of(System.getProperty("zipkin.jar", "target/zipkin/zipkin-server-exec.jar"));
    assertThat(jar).as("Zipkin server jar (the build copies it before integration tests)").exists();
    int port = BackendProcess.freePort();
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    zipkin =
        BackendProcess.start(
            "zipkin",
            port,
            List.of(
                java,
                "-Xmx384m",
                "-XX:TieredStopAtLevel=1",
                "-jar",
                jar.toString(),
                "--server.port=" + port),
            "/health",
            Duration.ofMinutes(3));
    mesh =
        new ObservedMesh(
            Map.of(
                "OTEL_TRACES_EXPORTER", "zipkin",
                "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://127.0.0.1:" + port + "/api/v2/spans",
                "OTEL_BSP_SCHEDULE_DELAY", "200",
                // W3C trace context only: the trace below can only join over `traceparent`.
                "OTEL_PROPAGATORS", "tracecontext"));
  }

  @AfterAll
  static void stop() {
    if (mesh != null) {
      mesh.close();
    }
    if (zipkin != null) {
      zipkin.close();
    }
  }

  @Test
  @Order(1) // first: it expects the only trace the gateway has started
  void oneGenerationIsOneTraceAcrossEveryService() throws Exception {
    JsonObject completion =
        JsonParser.parseString(mesh.complete("In the beginning", 24)).getAsJsonObject();
    long promptTokens = completion.getAsJsonObject("usage").get("prompt_tokens").getAsLong();
    long completionTokens =
        completion.getAsJsonObject("usage").get("completion_tokens").getAsLong();
    mesh.flush();

    Set<String> services =
        Set.of(
            ObservedMesh.GATEWAY_SERVICE,
            ObservedMesh.ROUTER_SERVICE,
            ObservedMesh.TARGET_SERVICE,
            ObservedMesh.DRAFT_SERVICE);
    Predicate<String> complete =
        body -> {
          JsonArray traces = JsonParser.parseString(body).getAsJsonArray();
          return traces.size() == 1
              && servicesOf(traces.get(0).getAsJsonArray()).containsAll(services);
        };
    String body =
        zipkin.poll(
            "/api/v2/traces?serviceName=" + ObservedMesh.GATEWAY_SERVICE + "&limit=10",
            complete,
            Duration.ofSeconds(30));
    JsonArray traces = JsonParser.parseString(body).getAsJsonArray();
    assertThat(traces)
        .as("traces from the gateway: %s (zipkin log %s)", body, zipkin.log)
        .hasSize(1);
    List<JsonObject> spans = new ArrayList<>();
    traces.get(0).getAsJsonArray().forEach(e -> spans.add(e.getAsJsonObject()));
    assertThat(servicesOf(traces.get(0).getAsJsonArray())).containsAll(services);

    // One trace id, and every parent is a span of this trace: nothing started a trace of its own.
    Map<String, JsonObject> byId = new HashMap<>();
    spans.forEach(s -> byId.put(s.get("id").getAsString(), s));
    assertThat(spans.stream().map(s -> s.get("traceId").getAsString()).distinct()).hasSize(1);
    List<JsonObject> roots = spans.stream().filter(s -> !s.has("parentId")).toList();
    assertThat(roots).hasSize(1);
    for (JsonObject s : spans) {
      if (s.has("parentId")) {
        assertThat(byId).as("parent of %s", s).containsKey(s.get("parentId").getAsString());
      }
    }

    // gateway HTTP server -> gateway gRPC client -> router server -> request span.
    JsonObject root = roots.get(0);
    assertThat(service(root)).isEqualTo(ObservedMesh.GATEWAY_SERVICE);
    assertThat(root.get("kind").getAsString()).isEqualTo("SERVER");
    assertThat(root.get("name").getAsString()).isEqualTo("post /v1/completions");
    assertThat(tag(root, "http.response.status_code")).isEqualTo("200");
    JsonObject gatewayClient =
        only(spans, s -> childOf(s, root) && "CLIENT".equals(kind(s)), "gateway's router call");
    assertThat(gatewayClient.get("name").getAsString()).isEqualTo("draftmesh.v1.router/generate");
    JsonObject routerServer = only(spans, s -> childOf(s, gatewayClient), "router server span");
    assertThat(service(routerServer)).isEqualTo(ObservedMesh.ROUTER_SERVICE);
    assertThat(kind(routerServer)).isEqualTo("SERVER");
    JsonObject request =
        only(
            spans,
            s ->
                childOf(s, routerServer)
                    && s.get("name").getAsString().startsWith("text_completion"),
            "request span");

    // The GenAI attributes, matching what the client was told.
    assertThat(tag(request, "gen_ai.operation.name")).isEqualTo("text_completion");
    assertThat(tag(request, "gen_ai.provider.name")).isEqualTo("draftmesh");
    assertThat(tag(request, "gen_ai.request.model")).isEqualTo("target");
    assertThat(tag(request, "gen_ai.response.model")).isNotEmpty();
    assertThat(request.get("name").getAsString())
        .isEqualTo("text_completion " + tag(request, "gen_ai.response.model"));
    assertThat(tag(request, "gen_ai.usage.input_tokens")).isEqualTo(Long.toString(promptTokens));
    assertThat(tag(request, "gen_ai.usage.output_tokens"))
        .isEqualTo(Long.toString(completionTokens));
    String finish =
        completion
            .getAsJsonArray("choices")
            .get(0)
            .getAsJsonObject()
            .get("finish_reason")
            .getAsString();
    assertThat(tag(request, "gen_ai.response.finish_reasons")).isEqualTo(finish);
    assertThat(tag(request, "draftmesh.strategy")).isEqualTo("speculative");
    assertThat(tag(request, "draftmesh.fallback")).isEqualTo("false");
    assertThat(request.getAsJsonObject("tags").has("error.type"))
        .as("error.type on a completed request")
        .isFalse();

    // With the SDK enabled (this mesh), /metrics is fed by the same SDK that traces.
    var scrape =
        java.net.http.HttpClient.newHttpClient()
            .send(
                java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create(
                            "http://127.0.0.1:"
                                + mesh.telemetry.get(ObservedMesh.ROUTER_SERVICE).metricsPort()
                                + "/metrics"))
                    .build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    assertThat(scrape.body())
        .contains(
            "draftmesh_spec_decode_num_drafts_total{strategy=\"speculative\"} "
                + Double.parseDouble(tag(request, "draftmesh.spec.rounds")));

    // A span per verify round under the request, adding up to the request's totals.
    List<JsonObject> rounds =
        spans.stream()
            .filter(
                s ->
                    childOf(s, request) && s.get("name").getAsString().equals("verify speculative"))
            .toList();
    assertThat(rounds).isNotEmpty();
    assertThat(rounds).hasSize(Integer.parseInt(tag(request, "draftmesh.spec.rounds")));
    long drafted = 0;
    long accepted = 0;
    for (JsonObject r : rounds) {
      long k = Long.parseLong(tag(r, "draftmesh.spec.k"));
      long d = Long.parseLong(tag(r, "draftmesh.spec.drafted"));
      long a = Long.parseLong(tag(r, "draftmesh.spec.accepted"));
      assertThat(d).isBetween(1L, k);
      assertThat(a).isBetween(0L, d);
      assertThat(tag(r, "draftmesh.strategy")).isEqualTo("speculative");
      assertThat(tag(r, "draftmesh.fallback")).isEqualTo("false");
      long start = r.get("timestamp").getAsLong();
      assertThat(start).isGreaterThanOrEqualTo(request.get("timestamp").getAsLong());
      assertThat(start + r.get("duration").getAsLong())
          .isLessThanOrEqualTo(
              request.get("timestamp").getAsLong() + request.get("duration").getAsLong());
      drafted += d;
      accepted += a;
    }
    assertThat(drafted).isEqualTo(Long.parseLong(tag(request, "draftmesh.spec.drafted")));
    assertThat(accepted).isEqualTo(Long.parseLong(tag(request, "draftmesh.spec.accepted")));
    // Every streamed token is an accepted draft or one target token per round (plus the first).
    assertThat(completionTokens).isLessThanOrEqualTo(1 + accepted + rounds.size());

    // request -> the router's session streams -> each worker's server span.
    List<JsonObject> sessions =
        spans.stream()
            .filter(
                s ->
                    childOf(s, request)
                        && "CLIENT".equals(kind(s))
                        && s.get("name").getAsString().equals("draftmesh.v1.modelworker/session"))
            .toList();
    assertThat(sessions).hasSize(2);
    for (String worker : List.of(ObservedMesh.TARGET_SERVICE, ObservedMesh.DRAFT_SERVICE)) {
      JsonObject server =
          only(
              spans,
              s -> worker.equals(service(s)) && s.get("name").getAsString().endsWith("/session"),
              worker + " session span");
      assertThat(kind(server)).isEqualTo("SERVER");
      assertThat(sessions.stream().map(s -> s.get("id").getAsString()))
          .contains(server.get("parentId").getAsString());
    }
  }

  @Test
  @Order(2)
  void aClientsTraceparentIsContinuedByTheGateway() throws Exception {
    java.util.Random random = new java.security.SecureRandom();
    String traceId = String.format("%016x%016x", random.nextLong(), random.nextLong());
    String clientSpan = String.format("%016x", random.nextLong() | 1);
    mesh.complete(
        "And God said", 4, Map.of("traceparent", "00-" + traceId + "-" + clientSpan + "-01"));
    mesh.flush();
    String body =
        zipkin.poll(
            "/api/v2/trace/" + traceId,
            b -> b.startsWith("[") && b.contains(ObservedMesh.TARGET_SERVICE),
            Duration.ofSeconds(30));
    JsonArray spans = JsonParser.parseString(body).getAsJsonArray();
    assertThat(servicesOf(spans))
        .as("services in trace %s: %s", traceId, body)
        .contains(
            ObservedMesh.GATEWAY_SERVICE,
            ObservedMesh.ROUTER_SERVICE,
            ObservedMesh.TARGET_SERVICE,
            ObservedMesh.DRAFT_SERVICE);
    List<JsonObject> entry = new ArrayList<>();
    for (JsonElement e : spans) {
      JsonObject s = e.getAsJsonObject();
      assertThat(s.get("traceId").getAsString()).isEqualTo(traceId);
      if (s.has("parentId") && s.get("parentId").getAsString().equals(clientSpan)) {
        entry.add(s);
      }
    }
    assertThat(entry).as("spans whose parent is the client's").hasSize(1);
    assertThat(service(entry.get(0))).isEqualTo(ObservedMesh.GATEWAY_SERVICE);
    assertThat(entry.get(0).get("name").getAsString()).isEqualTo("post /v1/completions");
  }

  private static Set<String> servicesOf(JsonArray spans) {
    Set<String> out = new java.util.HashSet<>();
    for (JsonElement e : spans) {
      out.add(service(e.getAsJsonObject()));
    }
    return out;
  }

  private static String service(JsonObject span) {
    return span.getAsJsonObject("localEndpoint").get("serviceName").getAsString();
  }

  private static String kind(JsonObject span) {
    return span.has("kind") ? span.get("kind").getAsString() : "";
  }

  private static boolean childOf(JsonObject span, JsonObject parent) {
    return span.has("parentId")
        && span.get("parentId").getAsString().equals(parent.get("id").getAsString());
  }

  private static String tag(JsonObject span, String key) {
    JsonObject tags = span.getAsJsonObject("tags");
    assertThat(tags).as("tags of %s", span.get("name")).isNotNull();
    assertThat(tags.has(key)).as("tag %s on %s: %s", key, span.get("name"), tags).isTrue();
    return tags.get(key).getAsString();
  }

  private static JsonObject only(List<JsonObject> spans, Predicate<JsonObject> p, String what) {
    List<JsonObject> found = spans.stream().filter(p).collect(Collectors.toList());
    assertThat(found)
        .as("%s among %s", what, spans.stream().map(s -> service(s) + ":" + s.get("name")).toList())
        .hasSize(1);
    return found.get(0);
  }
}
