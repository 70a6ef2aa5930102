package io.draftmesh.assembly;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.worker.KvCacheLink;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.File;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The discovery the router relies on in Kubernetes, for real: a headless Service is a DNS name with
 * one A record per ready pod, and the router's {@code dns:///NAME:PORT} pool holds one channel per
 * address it resolves to, resolving again every {@code --resolve-interval-ms}: round-robin over
 * them, or KV-aware placement from a kvcache-service's replica index. Here the DNS server is a real
 * dnsmasq (Debian {@code dnsmasq-base}) on a loopback address, serving {@code
 * workers.draftmesh.test} from a hosts directory it watches; the "pods" are target workers on
 * 127.0.0.2..4, all on one port; the router is the router image's process (its runtime classpath,
 * {@code Launcher router}), started in its own mount namespace whose {@code /etc/resolv.conf} names
 * the dnsmasq (nothing on the machine changes).
 *
 * <p>Each replica serves the same weights under its own directory name, which the worker reports as
 * its model id and the router returns in every generation's stats: so the test sees which replica
 * served each request. Every worker is linked to one kvcache-service (in this JVM, a real port)
 * under its own replica name, and the router places by its index. The router also has one static
 * pool per replica ({@code replica-N}), through which the test prefills a prompt on a replica of
 * its choosing.
 *
 * <p>Needs root (for the mount namespace and port 53), {@code unshare} and {@code dnsmasq}; {@code
 * .ci/run} installs dnsmasq.
 */
class DnsDiscoveryIT {
  static final String NAME = "workers.draftmesh.test";

  static Path dir;
  static Path hosts;
  static String dnsAddress;
  static Process dnsmasq;
  static Process router;
  static KvCacheServer kvcache;
  static int workerPort;
  static ManagedChannel channel;
  static final Map<String, WorkerServer> replicas = new LinkedHashMap<>(); // name -> worker
  static final Map<String, AtomicInteger> sessions = new ConcurrentHashMap<>(); // name -> streams

  @BeforeAll
  static void start() throws Exception {
    dir = Files.createTempDirectory("dns-discovery");
    hosts = Files.createDirectories(dir.resolve("hosts.d"));
    // A loopback address of its own, so port 53 clashes with nothing else on the machine.
    dnsAddress = "127.53." + ThreadLocalRandom.current().nextInt(1, 255) + ".1";
    dnsmasq =
        new ProcessBuilder(
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--hostsdir=" + hosts,
                "--local-ttl=0",
                "--listen-address=" + dnsAddress,
                "--bind-interfaces",
                "--port=53",
                "--user=" + System.getProperty("user.name"),
                "--pid-file=",
                "--log-queries",
                "--log-facility=-")
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("dnsmasq.log").toFile())
            .start();
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.2"))) {
      workerPort = s.getLocalPort();
    }
    kvcache = KvCacheServer.onPort(KvCacheConfig.inMemory(64L << 20), OpenTelemetry.noop()).start();
    addReplica(2);
    addReplica(3);
    Path resolv = dir.resolve("resolv.conf");
    Files.writeString(resolv, "nameserver " + dnsAddress + "\noptions timeout:1 attempts:2\n");
    int routerPort;
    try (ServerSocket s = new ServerSocket(0)) {
      routerPort = s.getLocalPort();
    }
    String java = ProcessHandle.current().info().command().orElse("java");
    Path routerModule = Manifests.root().resolve("router-service/target");
    String classpath =
        routerModule.resolve("classes")
            + File.pathSeparator
            + Files.readString(routerModule.resolve("runtime-classpath.txt")).strip();
    List<String> command =
        new ArrayList<>(
            List.of(
                java,
                // No JVM or gRPC caching of answers: every re-resolution asks the DNS server.
                "-Dnetworkaddress.cache.ttl=0",
                "-Dsun.net.inetaddr.ttl=0",
                "-cp",
                classpath,
                "io.draftmesh.serving.Launcher",
                "router",
                "--port",
                Integer.toString(routerPort),
                "--target",
                "dns:///" + NAME + ":" + workerPort,
                "--resolve-interval-ms",
                "500",
                "--kvcache",
                "127.0.0.1:" + kvcache.port(),
                // Generous: a missed lookup places round-robin, which the placement test would see.
                "--kvcache-deadline-ms",
                "5000",
                "--tokenizers",
                MeshFixture.modelA().resolve(Checkpoint.TOKENIZER_JSON).toString(),
                "--drain-seconds",
                "1"));
    for (int n = 2; n <= 4; n++) {
      command.addAll(List.of("--pool", "replica-" + n + "=" + replicaAddress(n)));
    }
    router =
        new ProcessBuilder(withPrefix(resolv, command))
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("router.log").toFile())
            .start();
    channel =
        Grpc.newChannelBuilder("127.0.0.1:" + routerPort, InsecureChannelCredentials.create())
            .build();
    awaitServing(Duration.ofSeconds(60));
  }

  /** {@code command} in a mount namespace of its own whose /etc/resolv.conf is {@code resolv}. */
  private static List<String> withPrefix(Path resolv, List<String> command) {
    List<String> all = new ArrayList<>();
    all.addAll(
        List.of(
            "unshare",
            "--mount",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
            resolv.toString()));
    all.addAll(command);
    return all;
  }

  private static void awaitServing(Duration within) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    while (true) {
      assertThat(router.isAlive())
          .as("router process (see %s)", dir.resolve("router.log"))
          .isTrue();
      try {
        HealthCheckResponse r =
            HealthGrpc.newBlockingStub(channel)
                .withDeadlineAfter(2, TimeUnit.SECONDS)
                .check(HealthCheckRequest.getDefaultInstance());
        if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
          return;
        }
      } catch (StatusRuntimeException notYet) {
        // starting
      }
      assertThat(System.nanoTime()).as("router serving within %s", within).isLessThan(deadline);
      Thread.sleep(200);
    }
  }

  static String replicaAddress(int n) {
    return "127.0.0." + n + ":" + workerPort;
  }

  /**
   * A target worker on 127.0.0.N serving the test model as {@code replica-N}, linked to the kvcache
   * under the name {@link #replicaAddress}, and its A record.
   */
  static void addReplica(int n) throws Exception {
    Path model = dir.resolve("replica-" + n);
    Files.createSymbolicLink(model, MeshFixture.modelA());
    EngineConfig engine = new EngineConfig(model, 8L << 20, 16, 16, 16, 16 + 256, 1024);
    WorkerServer w =
        new WorkerServer(
                NettyServerBuilder.forAddress(
                        new InetSocketAddress("127.0.0." + n, workerPort),
                        InsecureServerCredentials.create())
                    .intercept(countSessions("replica-" + n)),
                WorkerConfig.Role.TARGET,
                () -> InferenceEngine.load(engine),
                Duration.ZERO,
                WorkerServer.DEFAULT_SESSION_IDLE,
                new KvCacheLink.Settings(
                    "127.0.0.1:" + kvcache.port(), Duration.ofSeconds(2), 256, replicaAddress(n)),
                OpenTelemetry.noop())
            .start();
    w.awaitReady(Duration.ofMinutes(2));
    replicas.put("replica-" + n, w);
    // dnsmasq watches the directory: a new file is a new record, a removed file a removed one.
    Files.writeString(hosts.resolve("replica-" + n), "127.0.0." + n + " " + NAME + "\n");
  }

  /** Counts the Session streams a replica is sent. */
  static ServerInterceptor countSessions(String replica) {
    AtomicInteger count = sessions.computeIfAbsent(replica, r -> new AtomicInteger());
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (call.getMethodDescriptor().getFullMethodName().endsWith("/Session")) {
          count.incrementAndGet();
        }
        return next.startCall(call, headers);
      }
    };
  }

  /** Takes replica N out of DNS first (as Kubernetes does for a terminating pod), then stops it. */
  static void removeReplica(int n) throws Exception {
    Files.delete(hosts.resolve("replica-" + n));
    Thread.sleep(500); // dnsmasq's inotify picks the change up
    replicas.remove("replica-" + n).close();
  }

  /** Which replica served one short greedy generation, or null when it failed. */
  static String servedBy() {
    return servedBy(
        GenerateRequest.newBuilder()
            .setText("In the beginning")
            .setStrategy(Strategy.STRATEGY_AUTOREGRESSIVE)
            .setSampling(Sampling.newBuilder().setMaxTokens(4))
            .build());
  }

  /** Which replica served {@code req}, or null when it failed. */
  static String servedBy(GenerateRequest req) {
    Map<String, Integer> before = new LinkedHashMap<>();
    sessions.forEach((r, c) -> before.put(r, c.get()));
    try {
      RouterGrpc.newBlockingStub(channel)
          .withDeadlineAfter(20, TimeUnit.SECONDS)
          .generate(req)
          .forEachRemaining(c -> {});
    } catch (StatusRuntimeException e) {
      return null;
    }
    List<String> served = new ArrayList<>();
    sessions.forEach(
        (r, c) -> {
          if (c.get() != before.getOrDefault(r, 0)) {
            served.add(r);
          }
        });
    assertThat(served).as("one generation, one session on one replica").hasSize(1);
    return served.get(0);
  }

  /**
   * Generates until {@code window} consecutive requests all succeed and were served by exactly
   * {@code expected}; returns how many requests that took.
   */
  static int untilServedBy(Set<String> expected, int window, Duration within) throws Exception {
    long deadline = System.nanoTime() + within.toNanos();
    List<String> recent = new ArrayList<>();
    int n = 0;
    while (System.nanoTime() < deadline) {
      recent.add(servedBy());
      n++;
      if (recent.size() > window) {
        recent.remove(0);
      }
      if (recent.size() == window
          && !recent.contains(null)
          && new LinkedHashSet<>(recent).equals(expected)) {
        return n;
      }
      Thread.sleep(100);
    }
    throw new AssertionError(
        "not served by exactly " + expected + " within " + within + "; last: " + recent);
  }

  @Test
  void theRouterFollowsReplicasAddedToAndRemovedFromDns() throws Exception {
    untilServedBy(Set.of("replica-2", "replica-3"), 6, Duration.ofSeconds(30));
    addReplica(4);
    untilServedBy(Set.of("replica-2", "replica-3", "replica-4"), 9, Duration.ofSeconds(60));
    removeReplica(2);
    untilServedBy(Set.of("replica-3", "replica-4"), 8, Duration.ofSeconds(60));
    assertThat(Files.readString(dir.resolve("dnsmasq.log")))
        .as("answers came from the DNS server")
        .contains("query[A] " + NAME)
        .contains(NAME + " is 127.0.0.4");
  }

  @Test
  void eachPromptGoesToTheResolvedReplicaHoldingItsPrefixAndRoundRobinWithoutTheIndex()
      throws Exception {
    List<String> live = List.copyOf(replicas.keySet()); // the other test may have changed them
    untilServedBy(Set.copyOf(live), 2 * live.size(), Duration.ofSeconds(60));
    // A prompt of its own prefilled on each replica (through its static pool), until the index
    // lists its 6 full leading blocks (96 of 100 tokens; the last block is always fed) there.
    Map<String, int[]> prompts = new LinkedHashMap<>();
    try (KvCacheClient index =
        KvCacheClient.connect(
            "127.0.0.1:" + kvcache.port(), Duration.ofSeconds(2), 1 << 20, OpenTelemetry.noop())) {
      for (String replica : live) {
        int n = Integer.parseInt(replica.substring("replica-".length()));
        int[] p = KvCacheMeshIT.prompt(100, 40 + n);
        assertThat(servedBy(KvCacheMeshIT.request(p, replica, 2))).isEqualTo(replica);
        byte[] fp = MeshFixture.info(replicaAddress(n)).getKvFingerprint().toByteArray();
        KvCacheMeshIT.await(
            replica + "'s blocks in the index",
            () ->
                index
                        .lookup(fp, 16, java.util.Arrays.copyOf(p, 96), 0)
                        .map(x -> x.replicas().getOrDefault(replicaAddress(n), 0))
                        .orElse(0)
                    >= 6);
        prompts.put(replica, p);
      }
    }
    // Through the dns:/// pool, every prompt, again and again, interleaved: to its replica.
    for (int round = 0; round < 3; round++) {
      for (Map.Entry<String, int[]> e : prompts.entrySet()) {
        assertThat(servedBy(KvCacheMeshIT.request(e.getValue(), "", 2)))
            .as("round %d, the prompt prefilled on %s", round, e.getKey())
            .isEqualTo(e.getKey());
      }
    }
    // The index down: one prompt spreads over every replica, round-robin.
    kvcache.close();
    int[] p = prompts.values().iterator().next();
    Set<String> served = new LinkedHashSet<>();
    for (int i = 0; i < live.size(); i++) {
      served.add(servedBy(KvCacheMeshIT.request(p, "", 2)));
    }
    assertThat(served).containsExactlyInAnyOrderElementsOf(live);
  }

  @AfterAll
  static void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (router != null) {
      router.destroy();
      if (!router.waitFor(20, TimeUnit.SECONDS)) {
        router.destroyForcibly();
      }
    }
    for (WorkerServer w : replicas.values()) {
      w.close();
    }
    if (kvcache != null) {
      kvcache.close();
    }
    if (dnsmasq != null) {
      dnsmasq.destroy();
      dnsmasq.waitFor(10, TimeUnit.SECONDS);
    }
  }
}
