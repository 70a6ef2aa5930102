package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.telemetry.Telemetry;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The service's {@code /metrics}, scraped over HTTP as Prometheus would, after real calls. */
class KvCacheMetricsTest {
  @Test
  void metricsEndpointReportsTiersLookupsAndPuts() throws Exception {
    String name = InProcessServerBuilder.generateName();
    try (Telemetry telemetry =
            Telemetry.withMetrics(Map.of(), "draftmesh-kvcache", "127.0.0.1", 0);
        KvCacheServer server =
            new KvCacheServer(
                    InProcessServerBuilder.forName(name),
                    KvCacheConfig.inMemory(8 << 20).withLimits(16 * 1024, 1 << 20),
                    telemetry.openTelemetry())
                .start()) {
      ManagedChannel channel = InProcessChannelBuilder.forName(name).build();
      try {
        KvCacheClient client = new KvCacheClient(channel, Duration.ofSeconds(10), 8 * 1024);
        assertThat(client.register(TestChains.SPEC)).get().isEqualTo(TestChains.FP);
        int[] tokens = TestChains.tokens(1, 3);
        List<KvCacheClient.Block> chain = KvCacheServiceTest.blocks(tokens, 10_000);
        assertThat(client.put(TestChains.FP, chain)).isTrue();
        int[] prompt = java.util.Arrays.copyOf(tokens, tokens.length + TestChains.BLOCK_SIZE);
        assertThat(client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, prompt, 0)).isPresent();

        String body = scrape(telemetry.metricsPort());
        assertThat(value(body, "draftmesh_kvcache_blocks", "tier=\"memory\"")).isEqualTo(3);
        assertThat(value(body, "draftmesh_kvcache_blocks", "tier=\"disk\"")).isZero();
        assertThat(value(body, "draftmesh_kvcache_bytes", "tier=\"memory\""))
            .isGreaterThanOrEqualTo(3 * 10_000);
        assertThat(value(body, "draftmesh_kvcache_budget_bytes", "tier=\"memory\""))
            .isEqualTo(8 << 20);
        assertThat(value(body, "draftmesh_kvcache_puts_stored_total", "")).isEqualTo(3);
        assertThat(value(body, "draftmesh_kvcache_put_bytes_total", "")).isEqualTo(3 * 10_000);
        assertThat(value(body, "draftmesh_kvcache_puts_idle_failed_total", "")).isZero();
        assertThat(client.get(KvCacheServiceTest.keysOf(chain).subList(0, 2))).isPresent();
        body = scrape(telemetry.metricsPort());
        assertThat(value(body, "draftmesh_kvcache_gets_served_total", "")).isEqualTo(2);
        assertThat(value(body, "draftmesh_kvcache_get_bytes_total", "")).isEqualTo(2 * 10_000);
        assertThat(value(body, "draftmesh_kvcache_lookup_blocks_hit_total", "")).isEqualTo(3);
        assertThat(value(body, "draftmesh_kvcache_lookup_blocks_missed_total", "")).isEqualTo(1);
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  private static String scrape(int port) throws Exception {
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    return r.body();
  }

  /** The value of the one series of {@code metric} whose labels contain {@code label}. */
  private static double value(String body, String metric, String label) {
    Matcher m = Pattern.compile("(?m)^" + metric + "(?:\\{([^}]*)\\})? (\\S+)$").matcher(body);
    while (m.find()) {
      if ((m.group(1) == null ? "" : m.group(1)).contains(label)) {
        return Double.parseDouble(m.group(2));
      }
    }
    throw new AssertionError("no " + metric + " {" + label + "} in:\n" + body);
  }
}
