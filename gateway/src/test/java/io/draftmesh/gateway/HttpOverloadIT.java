package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.gson.JsonObject;
import java.net.http.HttpRequest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.IntSupplier;
import org.junit.jupiter.api.Test;

/**
 * Completions past {@code --http-threads} and {@code --http-queue} are refused at once, not queued
 * without bound: a gateway with 2 threads and a queue of 1 over a {@link HeldRouter}, so the test
 * decides how many requests are in flight (streams the router holds open, not timing).
 */
class HttpOverloadIT {
  private static final String KEY = "overload-key-0123";
  private static final String OTHER_KEY = "overload-key-4567";

  @Test
  void pastThreadsAndQueueIs429AtOnceAndThePlacesComeBack() throws Exception {
    try (HeldRouter router = new HeldRouter();
        GatewayServer g =
            LoopbackGateway.start(
                GatewayConfig.of("127.0.0.1:" + router.port(), List.of(KEY))
                    .withHttpLimits(2, 1))) {
      Http http = new Http(g);
      List<Http.Stream> held = new ArrayList<>();
      try {
        // Two streams take both threads: each has its first event, and the router holds it open.
        for (int i = 0; i < 2; i++) {
          Http.Stream s = http.stream("/v1/completions", KEY, completion(true));
          assertThat(s.response.statusCode()).isEqualTo(200);
          held.add(s);
          assertThat(s.next()).contains("\"text\":\" t1\"");
        }
        assertThat(router.open()).isEqualTo(2);

        // A third (not streaming) is admitted and waits for a thread: in flight, not at the router.
        CompletableFuture<Http.Json> waiting =
            http.postAsync("/v1/completions", KEY, completion(false));
        awaitValue(g::httpInFlight, 3);
        assertThat(router.started()).isEqualTo(2);

        // A fourth finds both threads and the queue taken: refused at once, saying which limit.
        Http.Json refused = http.send(tenSecondPost(http, KEY));
        assertThat(refused.status()).as("%s", refused.body()).isEqualTo(429);
        assertThat(refused.raw().headers().firstValue("Retry-After")).hasValue("1");
        JsonObject e = refused.body().getAsJsonObject("error");
        assertThat(e.get("type").getAsString()).isEqualTo("server_error");
        assertThat(e.get("code").getAsString()).isEqualTo("server_busy");
        assertThat(e.get("param").isJsonNull()).isTrue();
        assertThat(e.get("message").getAsString())
            .isEqualTo(
                "server busy: 3 requests in flight (expected: at most --http-threads 2 served +"
                    + " --http-queue 1 waiting; retry later)");
        assertThat(g.httpInFlight()).isEqualTo(3);
        assertThat(router.started()).isEqualTo(2);

        // Short requests do not wait behind the streams.
        assertThat(http.get("/healthz", null).status()).isEqualTo(200);
        assertThat(http.get("/v1/models", KEY).status()).isEqualTo(200);

        // Released, the streams end, and the waiting request gets its thread and its answer.
        router.release();
        for (Http.Stream s : held) {
          assertThat(s.rest()).last().isEqualTo("[DONE]");
        }
        Http.Json served = waiting.get(30, TimeUnit.SECONDS);
        assertThat(served.status()).as("%s", served.body()).isEqualTo(200);
        assertThat(
                served
                    .body()
                    .getAsJsonArray("choices")
                    .get(0)
                    .getAsJsonObject()
                    .get("text")
                    .getAsString())
            .isEqualTo(" t1 t2");
      } finally {
        for (Http.Stream s : held) {
          s.close();
        }
      }

      // Nothing held: every place is back, and a new request is served.
      awaitValue(g::httpInFlight, 0);
      awaitValue(router::open, 0);
      assertThat(http.post("/v1/completions", KEY, completion(false)).status()).isEqualTo(200);
      awaitValue(g::httpInFlight, 0);
      assertThat(router.started()).isEqualTo(4);
    }
  }

  @Test
  void aWaitingRequestCountsAgainstItsKeySoNoKeyFillsTheQueue() throws Exception {
    try (HeldRouter router = new HeldRouter();
        GatewayServer g =
            LoopbackGateway.start(
                GatewayConfig.of("127.0.0.1:" + router.port(), List.of(KEY, OTHER_KEY))
                    .withLimits(2, 0, 0)
                    .withHttpLimits(1, 2))) {
      Http http = new Http(g);
      try (Http.Stream served = http.stream("/v1/completions", KEY, completion(true))) {
        assertThat(served.next()).contains("\"text\":\" t1\"");
        CompletableFuture<Http.Json> waiting =
            http.postAsync("/v1/completions", KEY, completion(false));
        awaitValue(g::httpInFlight, 2);

        // The key has one served and one waiting: its own limit refuses a third at once, though
        // the gateway's queue still has a place.
        Http.Json refused = http.send(tenSecondPost(http, KEY));
        assertThat(refused.status()).as("%s", refused.body()).isEqualTo(429);
        assertThat(refused.body().getAsJsonObject("error").get("type").getAsString())
            .isEqualTo("requests");
        assertThat(refused.body().getAsJsonObject("error").get("message").getAsString())
            .startsWith("concurrent requests: key-1 has 2 in flight, running or waiting");
        assertThat(g.httpInFlight()).isEqualTo(2);

        // That place is another key's.
        CompletableFuture<Http.Json> other =
            http.postAsync("/v1/completions", OTHER_KEY, completion(false));
        awaitValue(g::httpInFlight, 3);

        router.release();
        assertThat(served.rest()).last().isEqualTo("[DONE]");
        assertThat(waiting.get(30, TimeUnit.SECONDS).status()).isEqualTo(200);
        assertThat(other.get(30, TimeUnit.SECONDS).status()).isEqualTo(200);
      }
      awaitValue(g::httpInFlight, 0);
      awaitValue(router::open, 0);
      assertThat(router.started()).isEqualTo(3);
    }
  }

  /** A completion whose answer the test waits for 10 s at most (a refusal is immediate). */
  private static HttpRequest tenSecondPost(Http http, String key) {
    return http.request("/v1/completions", key)
        .timeout(Duration.ofSeconds(10))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(completion(false).toString()))
        .build();
  }

  private static JsonObject completion(boolean stream) {
    JsonObject b = new JsonObject();
    b.addProperty("model", GatewayConfig.DEFAULT_MODEL);
    b.addProperty("prompt", "In the beginning");
    b.addProperty("max_tokens", 2);
    b.addProperty("stream", stream);
    return b;
  }

  /**
   * Waits until {@code actual} reads {@code expected} (a count the gateway or router updates after
   * the event the test caused), then asserts it; up to 10 s.
   */
  private static void awaitValue(IntSupplier actual, int expected) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (actual.getAsInt() != expected && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(actual.getAsInt()).isEqualTo(expected);
  }
}
