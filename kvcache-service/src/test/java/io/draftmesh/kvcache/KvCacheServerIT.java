package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.kvcache.client.KvKeys;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.OpenTelemetry;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The production wiring on a real port: health, reflection, the disk tier across a restart. */
class KvCacheServerIT {
  @TempDir Path dir;

  static List<KvCacheClient.Block> chain(int seed, int blocks, int size) {
    int[] tokens = TestChains.tokens(seed, blocks);
    List<byte[]> keys = KvKeys.chain(TestChains.FP, TestChains.BLOCK_SIZE, tokens);
    List<KvCacheClient.Block> out = new ArrayList<>();
    for (int i = 0; i < keys.size(); i++) {
      out.add(
          new KvCacheClient.Block(
              keys.get(i),
              i == 0 ? null : keys.get(i - 1),
              java.util.Arrays.copyOfRange(
                  tokens, i * TestChains.BLOCK_SIZE, (i + 1) * TestChains.BLOCK_SIZE),
              TestChains.payload(keys.get(i), size)));
    }
    return out;
  }

  @Test
  void servesOnARealPortAndKeepsTheDiskTierAcrossARestart() throws Exception {
    KvCacheConfig config =
        KvCacheConfig.inMemory(8 << 20)
            .withLimits(1 << 20, 4 << 20)
            .withDisk(dir, 64 << 20, 16 << 20);
    List<KvCacheClient.Block> blocks = chain(1, 6, 300_000);
    int port;
    try (KvCacheServer server = KvCacheServer.onPort(config, OpenTelemetry.noop()).start();
        KvCacheClient client =
            KvCacheClient.connect(
                "localhost:" + server.port(),
                Duration.ofSeconds(10),
                256 << 10,
                OpenTelemetry.noop())) {
      port = server.port();
      assertThat(port).isPositive();
      ManagedChannel ch =
          Grpc.newChannelBuilder("localhost:" + port, InsecureChannelCredentials.create()).build();
      try {
        assertThat(
                HealthGrpc.newBlockingStub(ch)
                    .check(
                        HealthCheckRequest.newBuilder()
                            .setService(KvCacheServer.SERVICE_NAME)
                            .build())
                    .getStatus())
            .isEqualTo(ServingStatus.SERVING);
        assertThat(listServices(ch)).contains("draftmesh.v1.KvCache", "grpc.health.v1.Health");
      } finally {
        ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
      assertThat(client.register(TestChains.SPEC)).isPresent();
      assertThat(client.put(TestChains.FP, blocks)).isTrue();
    }

    // A fresh process over the same data directory: the registration and the blocks are back.
    try (KvCacheServer server = KvCacheServer.onPort(config, OpenTelemetry.noop()).start();
        KvCacheClient client =
            KvCacheClient.connect(
                "localhost:" + server.port(),
                Duration.ofSeconds(10),
                256 << 10,
                OpenTelemetry.noop())) {
      KvCacheClient.Prefix p =
          client
              .lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 6), 0)
              .orElseThrow();
      assertThat(p.cachedBlocks()).isEqualTo(6);
      List<byte[]> got = client.get(p.keys()).orElseThrow();
      for (int i = 0; i < blocks.size(); i++) {
        assertThat(got.get(i)).isEqualTo(blocks.get(i).payload());
      }
      assertThat(client.failures()).isZero();
    }
  }

  /**
   * On a real port, Put and Get chunks alias Netty's receive buffers: every one is given back
   * however its stream ends (completed, failed by the server mid-stream, cut by the deadline).
   */
  @Test
  void aliasedChunksAreGivenBackHoweverAStreamEnds() throws Exception {
    KvCacheConfig config = KvCacheConfig.inMemory(64 << 20).withLimits(256 << 10, 4 << 20);
    List<KvCacheClient.Block> blocks = chain(2, 8, 600_000); // 3 chunks of 256 KiB a block
    try (KvCacheServer server = KvCacheServer.onPort(config, OpenTelemetry.noop()).start();
        KvCacheClient client =
            KvCacheClient.connect(
                "localhost:" + server.port(),
                Duration.ofSeconds(10),
                256 << 10,
                OpenTelemetry.noop());
        KvCacheClient hasty =
            KvCacheClient.connect(
                "localhost:" + server.port(),
                Duration.ofMillis(1),
                256 << 10,
                OpenTelemetry.noop())) {
      assertThat(client.register(TestChains.SPEC)).isPresent();
      assertThat(client.put(TestChains.FP, blocks)).isTrue();
      List<byte[]> keys = blocks.stream().map(KvCacheClient.Block::key).toList();
      List<byte[]> got = client.get(keys).orElseThrow();
      for (int i = 0; i < blocks.size(); i++) {
        assertThat(got.get(i)).isEqualTo(blocks.get(i).payload());
      }
      assertThat(server.unreleasedPutRequests()).isZero();
      assertThat(client.unreleasedGetResponses()).isZero();

      // Failed by the server after its first header (the parent is not stored): the chunks
      // already on their way are still handled, and given back.
      List<KvCacheClient.Block> orphan = chain(3, 3, 600_000).subList(1, 3);
      assertThat(client.put(TestChains.FP, orphan)).isFalse();
      // Cut by a 1 ms deadline, wherever the stream was.
      assertThat(hasty.get(keys)).isEmpty();

      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while ((server.unreleasedPutRequests() > 0 || hasty.unreleasedGetResponses() > 0)
          && System.nanoTime() < until) {
        Thread.sleep(10); // a chunk may still be in its handler; a leak never reaches zero
      }
      assertThat(server.unreleasedPutRequests()).isZero();
      assertThat(hasty.unreleasedGetResponses()).isZero();
      assertThat(client.get(keys).orElseThrow().get(7)).isEqualTo(blocks.get(7).payload());
    }
  }

  @Test
  void aClientOfAServiceThatIsDownFailsOpenWithinItsDeadline() throws Exception {
    int free;
    try (ServerSocket s = new ServerSocket(0)) {
      free = s.getLocalPort();
    }
    try (KvCacheClient client =
        KvCacheClient.connect(
            "localhost:" + free, Duration.ofMillis(300), 4096, OpenTelemetry.noop())) {
      long t0 = System.nanoTime();
      assertThat(client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 2), 0))
          .isEmpty();
      assertThat(client.put(TestChains.FP, chain(1, 1, 1000))).isFalse();
      assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(5_000);
      assertThat(client.failures()).isEqualTo(2);
    }
  }

  private static List<String> listServices(ManagedChannel ch) throws Exception {
    CompletableFuture<List<String>> names = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> req =
        ServerReflectionGrpc.newStub(ch)
            .serverReflectionInfo(
                new StreamObserver<ServerReflectionResponse>() {
                  @Override
                  public void onNext(ServerReflectionResponse r) {
                    List<String> out = new ArrayList<>();
                    r.getListServicesResponse().getServiceList().forEach(s -> out.add(s.getName()));
                    names.complete(out);
                  }

                  @Override
                  public void onError(Throwable t) {
                    names.completeExceptionally(t);
                  }

                  @Override
                  public void onCompleted() {}
                });
    req.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    List<String> out = names.get(10, TimeUnit.SECONDS);
    req.onCompleted();
    return out;
  }
}
