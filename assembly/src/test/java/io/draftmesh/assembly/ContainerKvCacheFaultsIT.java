package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.RouterGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.GenericContainer;

/**
 * {@code docker kill} of the kvcache-service container in the middle of a generation whose prompt
 * KV came through it ({@link ContainerFixture}): a kvcache container, two target worker containers
 * linked to it ({@code --kvcache}) and a router container placing over them by its index. The
 * stream still completes with the output of the cold run; later requests prefill instead of
 * fetching, with the same output, within their deadline (no hang); both workers end at 0 sessions
 * with all KV blocks free. (As in {@link KvCacheMeshIT}, in-process, which also covers a stalled
 * and a garbage-answering service.)
 *
 * <p>Runs in the {@code containers} profile only ({@code .ci/run-containers}).
 */
class ContainerKvCacheFaultsIT {
  static final int TOKENS = 300;
  static final String LINK = "draftmesh_kvcache_link_";

  static ContainerFixture mesh;
  static GenericContainer<?> kvcache;
  static int kvPort;
  static int[] targetPorts = new int[2];
  static int[] metricsPorts = new int[2];
  static ManagedChannel channel;

  @BeforeAll
  static void start() throws Exception {
    mesh = new ContainerFixture("kvcache-faults-key-0123456789");
    kvPort = ContainerFixture.freePort();
    int routerPort = ContainerFixture.freePort();
    kvcache =
        mesh.start(
            "kvcache-service",
            "kvcache",
            "--port",
            Integer.toString(kvPort),
            "--memory-bytes",
            "64m");
    mesh.awaitServing(kvPort, "draftmesh.v1.KvCache");
    List<String> replicas = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      targetPorts[i] = ContainerFixture.freePort();
      metricsPorts[i] = ContainerFixture.freePort();
      List<String> args = ContainerFixture.worker("target", targetPorts[i]);
      args.addAll(
          List.of(
              "--kvcache",
              "localhost:" + kvPort,
              "--metrics-host",
              "127.0.0.1",
              "--metrics-port",
              Integer.toString(metricsPorts[i])));
      mesh.start("target-service", args.toArray(String[]::new));
      replicas.add("localhost:" + targetPorts[i]);
    }
    for (int port : targetPorts) {
      mesh.awaitServing(port, "draftmesh.v1.ModelWorker");
    }
    mesh.start(
        "router-service",
        "router",
        "--port",
        Integer.toString(routerPort),
        "--target",
        String.join(",", replicas),
        "--pool",
        Mesh.targetReplica(0) + "=" + replicas.get(0),
        "--pool",
        Mesh.targetReplica(1) + "=" + replicas.get(1),
        "--tokenizers",
        "/models/target/tokenizer.json",
        "--kvcache",
        "localhost:" + kvPort,
        "--kvcache-deadline-ms",
        "200",
        "--drain-seconds",
        "1");
    mesh.awaitServing(routerPort, "draftmesh.v1.Router");
    channel =
        Grpc.newChannelBuilder("localhost:" + routerPort, InsecureChannelCredentials.create())
            .build();
  }

  @AfterAll
  static void stop() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (mesh != null) {
      mesh.close();
    }
  }

  /** One greedy generation's tokens and the stats of its final chunk. */
  record Run(List<Integer> tokens, GenerationStats stats) {}

  /**
   * {@code tokens} greedy tokens of {@code prompt} on router pool {@code pool}, within a 120 s
   * deadline (a hang fails it); {@code fault} (if any) runs after the third chunk.
   */
  static Run generate(String pool, int[] prompt, int tokens, Runnable fault) {
    Iterator<GenerateChunk> it =
        RouterGrpc.newBlockingStub(channel)
            .withDeadlineAfter(120, TimeUnit.SECONDS)
            .generate(KvCacheMeshIT.request(prompt, pool, tokens));
    List<Integer> out = new ArrayList<>();
    GenerationStats stats = null;
    int chunks = 0;
    while (it.hasNext()) {
      GenerateChunk c = it.next();
      out.addAll(c.getTokenIdsList());
      stats = c.getStats();
      if (++chunks == 3 && fault != null) {
        fault.run();
      }
    }
    return new Run(out, stats);
  }

  /** The value of {@code metric} in a scrape of target replica {@code i}'s {@code /metrics}. */
  static double metric(int i, String metric) throws Exception {
    HttpResponse<String> r =
        HttpClient.newHttpClient()
            .send(
                HttpRequest.newBuilder(
                        URI.create("http://127.0.0.1:" + metricsPorts[i] + "/metrics"))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    Matcher m =
        Pattern.compile("(?m)^" + metric + "\\{[^}]*role=\"target\"[^}]*\\} (\\S+)$")
            .matcher(r.body());
    assertThat(m.find()).as("%s in:%n%s", metric, r.body()).isTrue();
    return Double.parseDouble(m.group(1));
  }

  @Test
  void killingTheKvcacheMidGenerationChangesNoOutputHangsNothingAndLeaksNothing() throws Exception {
    String a = Mesh.targetReplica(0);
    String b = Mesh.targetReplica(1);
    int[] shared = KvCacheMeshIT.prompt(120, 1); // 7 reusable blocks of 16 (the last token is fed)
    int[] later = KvCacheMeshIT.prompt(100, 3); // 6 blocks
    Run cold = generate(a, shared, TOKENS, null);
    assertThat(cold.tokens()).hasSize(TOKENS);
    assertThat(cold.stats().getFetchedPromptTokens()).isZero();
    Run laterCold = generate(a, later, TOKENS, null);
    byte[] fingerprint =
        MeshFixture.info("localhost:" + targetPorts[0]).getKvFingerprint().toByteArray();
    try (KvCacheClient index =
        KvCacheClient.connect(
            "localhost:" + kvPort, Duration.ofSeconds(2), 1 << 20, OpenTelemetry.noop())) {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (index
              .lookup(fingerprint, 16, Arrays.copyOf(shared, 112), 0)
              .map(KvCacheClient.Prefix::cachedBlocks)
              .orElse(0)
          < 7) {
        assertThat(System.nanoTime()).as("a's 7 prompt blocks stored").isLessThan(deadline);
        Thread.sleep(50);
      }
    }

    // Warm on b through the kvcache, which is killed after the third chunk.
    Run warm = generate(b, shared, TOKENS, () -> ContainerFixture.kill(kvcache));
    assertThat(kvcache.isRunning()).isFalse();
    assertThat(warm.stats().getFetchedPromptTokens()).isEqualTo(112);
    assertThat(warm.tokens()).isEqualTo(cold.tokens());

    // b cannot fetch a's blocks any more: it prefills the whole prompt, with the cold output.
    long t0 = System.nanoTime();
    Run prefilled = generate(b, later, TOKENS, null);
    assertThat(prefilled.tokens()).isEqualTo(laterCold.tokens());
    assertThat(prefilled.stats().getFetchedPromptTokens()).isZero();
    assertThat(prefilled.stats().getPrefilledPromptTokens()).isEqualTo(later.length);
    // Placement without its index falls back to round-robin, with the same output.
    for (int i = 0; i < 2; i++) {
      assertThat(generate("target", later, TOKENS, null).tokens()).isEqualTo(laterCold.tokens());
    }
    System.out.printf(
        "kvcache killed: 3 generations of %d tokens after it in %d ms%n",
        TOKENS, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    assertThat(metric(1, LINK + "client_failures_total")).isPositive();
    for (int port : targetPorts) {
      MeshFixture.assertFreed("target on " + port, "localhost:" + port, Duration.ofSeconds(15));
    }
  }
}
