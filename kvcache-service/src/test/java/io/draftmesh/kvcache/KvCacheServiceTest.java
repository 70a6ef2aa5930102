package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.BlockHeader;
import io.draftmesh.proto.v1.GetRequest;
import io.draftmesh.proto.v1.GetResponse;
import io.draftmesh.proto.v1.KvCacheGrpc;
import io.draftmesh.proto.v1.LookupRequest;
import io.draftmesh.proto.v1.LookupResponse;
import io.draftmesh.proto.v1.PinRequest;
import io.draftmesh.proto.v1.PutRequest;
import io.draftmesh.proto.v1.PutResponse;
import io.draftmesh.proto.v1.ReportBlocksRequest;
import io.draftmesh.proto.v1.StatsRequest;
import io.draftmesh.proto.v1.StatsResponse;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.api.OpenTelemetry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class KvCacheServiceTest {
  static final int CHUNK_LIMIT = 16 * 1024;
  final List<AutoCloseable> closers = new ArrayList<>();
  KvCacheGrpc.KvCacheBlockingStub stub;
  KvCacheGrpc.KvCacheStub async;
  ManagedChannel channel;

  @AfterEach
  void close() throws Exception {
    for (int i = closers.size() - 1; i >= 0; i--) {
      closers.get(i).close();
    }
  }

  /** A memory-only service in-process with {@code memory} bytes; chunks up to 16 KiB. */
  KvCacheClient start(long memory) throws Exception {
    return start(KvCacheConfig.inMemory(memory).withLimits(CHUNK_LIMIT, 1 << 20));
  }

  KvCacheClient start(KvCacheConfig config) throws Exception {
    String name = InProcessServerBuilder.generateName();
    KvCacheServer server =
        new KvCacheServer(InProcessServerBuilder.forName(name), config, OpenTelemetry.noop())
            .start();
    closers.add(server);
    channel = InProcessChannelBuilder.forName(name).build();
    closers.add(() -> channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    stub = KvCacheGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    async = KvCacheGrpc.newStub(channel);
    KvCacheClient client = new KvCacheClient(channel, Duration.ofSeconds(10), 8 * 1024);
    assertThat(client.register(TestChains.SPEC)).get().isEqualTo(TestChains.FP);
    return client;
  }

  static List<KvCacheClient.Block> blocks(int[] tokens, int size) {
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

  static List<byte[]> keysOf(List<KvCacheClient.Block> blocks) {
    return blocks.stream().map(KvCacheClient.Block::key).toList();
  }

  @Test
  void putLookupGetRoundTripThroughTheClient() throws Exception {
    KvCacheClient client = start(8 << 20);
    int[] tokens = TestChains.tokens(1, 3);
    List<KvCacheClient.Block> chain = blocks(tokens, 50_000); // several chunks each
    assertThat(client.put(TestChains.FP, chain)).isTrue();
    assertThat(client.put(TestChains.FP, chain)).as("idempotent").isTrue();

    int[] prompt =
        java.util.Arrays.copyOf(
            tokens, tokens.length + 6); // one more full block, and a partial one
    KvCacheClient.Prefix p =
        client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, prompt, 0).orElseThrow();
    assertThat(p.fullBlocks()).isEqualTo(4);
    assertThat(p.cachedBlocks()).isEqualTo(3);

    List<byte[]> got = client.get(p.keys()).orElseThrow();
    for (int i = 0; i < 3; i++) {
      assertThat(got.get(i)).isEqualTo(chain.get(i).payload());
    }
    StatsResponse s = stub.stats(StatsRequest.getDefaultInstance());
    assertThat(s.getBlocks()).isEqualTo(3);
    assertThat(s.getPutsStored()).isEqualTo(3);
    assertThat(s.getPutsDuplicate()).isEqualTo(3);
    assertThat(s.getGetsServed()).isEqualTo(3);
    // Bytes count stored blocks once (the duplicates' bytes are not stored again) and served ones.
    assertThat(s.getPutBytesStored()).isEqualTo(3 * 50_000);
    assertThat(s.getGetBytesServed()).isEqualTo(3 * 50_000);
    assertThat(s.getLookupBlocksHit()).isEqualTo(3);
    assertThat(s.getLookupBlocksMissed()).isEqualTo(1);
    assertThat(s.getModels()).isEqualTo(1);
    assertThat(client.failures()).isZero();
  }

  @Test
  void concurrentPutsAndGetsOfTheSameChainFromSeveralClients() throws Exception {
    KvCacheClient first = start(16 << 20);
    int[] tokens = TestChains.tokens(9, 8);
    List<KvCacheClient.Block> chain = blocks(tokens, 40_000);
    int clients = 4;
    ExecutorService pool = Executors.newFixedThreadPool(clients);
    try {
      List<Future<Boolean>> results = new ArrayList<>();
      for (int c = 0; c < clients; c++) {
        KvCacheClient client =
            c == 0 ? first : new KvCacheClient(channel, Duration.ofSeconds(20), 4096 * (c + 1));
        results.add(
            pool.submit(
                () -> {
                  if (!client.put(TestChains.FP, chain)) {
                    return false;
                  }
                  for (int round = 0; round < 3; round++) {
                    Optional<List<byte[]>> got = client.get(keysOf(chain));
                    if (got.isEmpty()) {
                      return false;
                    }
                    for (int i = 0; i < chain.size(); i++) {
                      if (!java.util.Arrays.equals(got.get().get(i), chain.get(i).payload())) {
                        return false;
                      }
                    }
                  }
                  return true;
                }));
      }
      for (Future<Boolean> r : results) {
        assertThat(r.get(60, TimeUnit.SECONDS)).isTrue();
      }
    } finally {
      pool.shutdownNow();
    }
    StatsResponse s = stub.stats(StatsRequest.getDefaultInstance());
    assertThat(s.getBlocks()).isEqualTo(8);
    assertThat(s.getPutsStored()).isEqualTo(8);
    assertThat(s.getPutsDuplicate()).isEqualTo(8 * (clients - 1));
    assertThat(s.getGetsServed()).isEqualTo(8 * clients * 3);
    assertThat(s.getPutBytesStored()).isEqualTo(8 * 40_000);
    assertThat(s.getGetBytesServed()).isEqualTo(8L * clients * 3 * 40_000);
  }

  @Test
  void theRoutingIndexSaysWhichReplicaHoldsHowMuchOfThePrefix() throws Exception {
    KvCacheClient client = start(1 << 20);
    int[] tokens = TestChains.tokens(3, 4);
    List<byte[]> keys = KvKeys.chain(TestChains.FP, TestChains.BLOCK_SIZE, tokens);
    assertThat(client.report("target-0", TestChains.FP, keys.subList(0, 3), List.of(), false))
        .isTrue();
    assertThat(client.report("target-1", TestChains.FP, keys.subList(0, 1), List.of(), false))
        .isTrue();
    assertThat(client.report("target-2", TestChains.FP, keys.subList(1, 4), List.of(), false))
        .isTrue();
    KvCacheClient.Prefix p =
        client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, tokens, 0).orElseThrow();
    assertThat(p.cachedBlocks()).isZero(); // nothing put in the service itself
    // target-2 holds no leading block, so it saves no prefill.
    assertThat(p.replicas())
        .containsExactly(java.util.Map.entry("target-0", 3), java.util.Map.entry("target-1", 1));

    client.report("target-0", TestChains.FP, List.of(), keys.subList(1, 2), false);
    client.report("target-1", TestChains.FP, keys.subList(1, 2), List.of(), true);
    p = client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, tokens, 0).orElseThrow();
    assertThat(p.replicas()).containsExactly(java.util.Map.entry("target-0", 1));
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getIndexEntries())
        .isEqualTo(2 + 1 + 3);
  }

  @Test
  void aLookupLeaseKeepsThePrefixUntilItEnds() throws Exception {
    KvCacheClient client = start(2L * MemoryTier.PAGE_BYTES);
    List<KvCacheClient.Block> x = blocks(TestChains.tokens(1, 1), 60_000);
    List<KvCacheClient.Block> y = blocks(TestChains.tokens(2, 1), 60_000);
    List<KvCacheClient.Block> z = blocks(TestChains.tokens(3, 1), 60_000);
    assertThat(client.put(TestChains.FP, x)).isTrue();
    assertThat(client.put(TestChains.FP, y)).isTrue();
    KvCacheClient.Prefix px =
        client
            .lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 1), 60_000)
            .orElseThrow();
    long pin = client.pin(keysOf(y), 60_000).orElseThrow();
    assertThat(px.leaseId()).isPositive();
    assertThatThrownBy(() -> putRaw(z.get(0), z.get(0).payload().length, null))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED));
    assertThat(client.unpin(px.leaseId())).isTrue();
    assertThat(client.put(TestChains.FP, z)).isTrue();
    assertThat(
            client
                .lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 1), 0)
                .orElseThrow()
                .cachedBlocks())
        .isZero();
    assertThat(client.unpin(pin)).isTrue();
  }

  /** A Get cancelled mid-stream lets go of its blocks: they can be evicted again. */
  @Test
  void aGetCancelledMidStreamReleasesItsBlocks() throws Exception {
    KvCacheClient client = start(MemoryTier.PAGE_BYTES); // room for one block
    List<KvCacheClient.Block> x = blocks(TestChains.tokens(1, 1), 60_000);
    assertThat(client.put(TestChains.FP, x)).isTrue();
    io.grpc.Context.CancellableContext ctx = io.grpc.Context.current().withCancellation();
    io.grpc.Context prev = ctx.attach();
    try {
      Iterator<GetResponse> it =
          KvCacheGrpc.newBlockingStub(channel)
              .get(
                  GetRequest.newBuilder()
                      .addKeys(ByteString.copyFrom(x.get(0).key()))
                      .setChunkBytes(1024)
                      .build());
      assertThat(it.next().hasHeader()).isTrue();
      assertThat(it.next().getChunk().size()).isEqualTo(1024);
      // While the stream holds x, nothing can make room for y.
      assertStatus(
          () -> putRaw(blocks(TestChains.tokens(2, 1), 60_000).get(0), 60_000, null),
          Status.Code.RESOURCE_EXHAUSTED,
          "being read");
    } finally {
      ctx.detach(prev);
      ctx.cancel(null);
    }
    // The cancel reaches the server asynchronously; once it has, y evicts x.
    assertEventuallyStored(client, blocks(TestChains.tokens(2, 1), 60_000));
    assertThat(
            client
                .lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 1), 0)
                .orElseThrow()
                .cachedBlocks())
        .isZero();
  }

  /** Puts {@code y} until it is stored (it needs the room another stream held), or fails. */
  static void assertEventuallyStored(KvCacheClient client, List<KvCacheClient.Block> y)
      throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    boolean stored = false;
    while (!stored && System.nanoTime() < until) {
      stored = client.put(TestChains.FP, y);
      if (!stored) {
        Thread.sleep(20);
      }
    }
    assertThat(stored).as("stored once the other stream let go").isTrue();
  }

  @Test
  void aGetPastItsDeadlineReleasesItsBlocks() throws Exception {
    KvCacheClient client = start(MemoryTier.PAGE_BYTES);
    List<KvCacheClient.Block> x = blocks(TestChains.tokens(1, 1), 60_000);
    assertThat(client.put(TestChains.FP, x)).isTrue();
    Iterator<GetResponse> it =
        KvCacheGrpc.newBlockingStub(channel)
            .withDeadlineAfter(300, TimeUnit.MILLISECONDS)
            .get(
                GetRequest.newBuilder()
                    .addKeys(ByteString.copyFrom(x.get(0).key()))
                    .setChunkBytes(1024)
                    .build());
    assertThat(it.next().hasHeader()).isTrue();
    Thread.sleep(500);
    assertStatus(
        () -> {
          while (it.hasNext()) {
            it.next();
          }
        },
        Status.Code.DEADLINE_EXCEEDED,
        "");
    assertEventuallyStored(client, blocks(TestChains.tokens(2, 1), 60_000));
  }

  /** A Put cancelled mid-stream lets go of the blocks it had completed (they stay stored). */
  @Test
  void aPutCancelledMidStreamReleasesItsBlocks() throws Exception {
    KvCacheClient client = start(MemoryTier.PAGE_BYTES);
    List<KvCacheClient.Block> x = blocks(TestChains.tokens(1, 2), 60_000);
    CompletableFuture<Throwable> ended = new CompletableFuture<>();
    io.grpc.stub.ClientCallStreamObserver<PutRequest> out =
        (io.grpc.stub.ClientCallStreamObserver<PutRequest>) async.put(ending(ended));
    // Block 0 whole, then the header and a first chunk of block 1.
    for (PutRequest m : withChunks(header(x.get(0), 60_000), x.get(0).payload(), 8192)) {
      out.onNext(m);
    }
    out.onNext(PutRequest.newBuilder().setHeader(header(x.get(1), 60_000)).build());
    out.onNext(PutRequest.newBuilder().setChunk(ByteString.copyFrom(new byte[1024])).build());
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (stub.stats(StatsRequest.getDefaultInstance()).getBlocks() < 1
        && System.nanoTime() < until) {
      Thread.sleep(10);
    }
    // Block 0 is held by the open stream: no room for another block.
    assertStatus(
        () -> putRaw(blocks(TestChains.tokens(2, 1), 60_000).get(0), 60_000, null),
        Status.Code.RESOURCE_EXHAUSTED,
        "being read");
    out.cancel("test", null);
    assertThat(ended.get(5, TimeUnit.SECONDS)).isInstanceOf(StatusRuntimeException.class);
    assertEventuallyStored(client, blocks(TestChains.tokens(2, 1), 60_000));
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getBlocks()).isEqualTo(1);
  }

  /**
   * A Put stream that stops mid-block is failed after --put-idle-ms and its reserved page goes back
   * (the budget is one block: a page still reserved would refuse the next put); a stream that idles
   * between blocks is not (a worker keeps one open to publish as it goes).
   */
  @Test
  void aPutStalledMidBlockIsFailedAndGivesItsPagesBackButNotOneIdleBetweenBlocks()
      throws Exception {
    long idleMs = 300;
    KvCacheClient client =
        start(
            KvCacheConfig.inMemory(MemoryTier.PAGE_BYTES)
                .withLimits(CHUNK_LIMIT, 1 << 20)
                .withPutIdle(Duration.ofMillis(idleMs)));
    KvCacheClient.Block x = blocks(TestChains.tokens(1, 1), 60_000).get(0);
    KvCacheClient.Block y = blocks(TestChains.tokens(2, 1), 60_000).get(0);

    CompletableFuture<Throwable> stalled = new CompletableFuture<>();
    StreamObserver<PutRequest> out = async.put(ending(stalled));
    out.onNext(PutRequest.newBuilder().setHeader(header(x, 60_000)).build());
    out.onNext(PutRequest.newBuilder().setChunk(ByteString.copyFrom(new byte[1024])).build());
    Throwable t = stalled.get(30, TimeUnit.SECONDS);
    assertThat(t).isInstanceOf(StatusRuntimeException.class);
    Status status = ((StatusRuntimeException) t).getStatus();
    assertThat(status.getCode()).isEqualTo(Status.Code.DEADLINE_EXCEEDED);
    assertThat(status.getDescription())
        .contains("at 1024 of 60000 bytes")
        .endsWith("(expected: its next chunk within --put-idle-ms 300)");
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getPutsIdleFailed()).isEqualTo(1);
    assertThat(client.put(TestChains.FP, List.of(y))).as("the page came back").isTrue();
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getBlocks()).isEqualTo(1);

    // Idle between blocks: three limits without a message, then the stream goes on and completes.
    CompletableFuture<Throwable> idle = new CompletableFuture<>();
    StreamObserver<PutRequest> between = async.put(ending(idle));
    for (PutRequest m : withChunks(header(y, 60_000), y.payload(), 8192)) {
      between.onNext(m); // y is stored already: its bytes are counted, none kept
    }
    Thread.sleep(3 * idleMs);
    assertThat(idle).as("a stream idle between blocks").isNotDone();
    for (PutRequest m : withChunks(header(y, 60_000), y.payload(), 8192)) {
      between.onNext(m);
    }
    between.onCompleted();
    assertThat(idle.get(30, TimeUnit.SECONDS)).isNull();
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getPutsIdleFailed()).isEqualTo(1);
  }

  /** A Put response observer that completes {@code ended} with the error, or null on success. */
  private static StreamObserver<PutResponse> ending(CompletableFuture<Throwable> ended) {
    return new StreamObserver<>() {
      @Override
      public void onNext(PutResponse r) {}

      @Override
      public void onError(Throwable t) {
        ended.complete(t);
      }

      @Override
      public void onCompleted() {
        ended.complete(null);
      }
    };
  }

  /**
   * A block is received straight into memory pages reserved at its header: a stream that fails
   * mid-block, or whose bytes fail their CRC32C, stores nothing of it and gives its pages back (the
   * budget is one block, so a leaked page would refuse the next put with RESOURCE_EXHAUSTED). The
   * server fails these streams itself, before it answers, so no waiting is needed.
   */
  @Test
  void aPutThatFailsMidBlockStoresNoneOfItAndGivesItsPagesBack() throws Exception {
    KvCacheClient client = start(MemoryTier.PAGE_BYTES);
    KvCacheClient.Block x = blocks(TestChains.tokens(1, 1), 60_000).get(0);
    KvCacheClient.Block y = blocks(TestChains.tokens(2, 1), 60_000).get(0);

    List<PutRequest> cut = new ArrayList<>(withChunks(header(x, 60_000), x.payload(), 8192));
    cut.subList(4, cut.size()).clear(); // the header and 3 of its 8 chunks
    cut.add(PutRequest.newBuilder().setHeader(header(y, 60_000)).build());
    assertStatus(() -> putMessages(cut), Status.Code.INVALID_ARGUMENT, "got 24576 of its 60000");

    byte[] flipped = x.payload().clone();
    flipped[30_000] ^= 1;
    BlockHeader withCrc = header(x, 60_000).toBuilder().setCrc32C(crc(x.payload())).build();
    assertStatus(
        () -> putMessages(withChunks(withCrc, flipped, 8192)),
        Status.Code.INVALID_ARGUMENT,
        "header.crc32c");

    StatsResponse s = stub.stats(StatsRequest.getDefaultInstance());
    assertThat(s.getBlocks()).isZero();
    assertThat(s.getMemory().getBytes()).isZero();
    putRaw(y, 60_000, null); // needs the one page
    assertThat(client.get(List.of(y.key())))
        .get()
        .satisfies(g -> assertThat(g.get(0)).isEqualTo(y.payload()));
    assertThat(
            client
                .lookup(TestChains.FP, TestChains.BLOCK_SIZE, x.tokens(), 0)
                .orElseThrow()
                .cachedBlocks())
        .isZero();
  }

  static int crc(byte[] b) {
    java.util.zip.CRC32C c = new java.util.zip.CRC32C();
    c.update(b);
    return (int) c.getValue();
  }

  @Test
  void theClientFailsOpenWhenTheServiceIsAbsent() throws Exception {
    ManagedChannel nowhere = InProcessChannelBuilder.forName("no-such-kvcache").build();
    closers.add(() -> nowhere.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    KvCacheClient client = new KvCacheClient(nowhere, Duration.ofMillis(200), 4096);
    assertThat(client.lookup(TestChains.FP, TestChains.BLOCK_SIZE, TestChains.tokens(1, 2), 0))
        .isEmpty();
    assertThat(client.get(List.of(new byte[32]))).isEmpty();
    assertThat(client.put(TestChains.FP, blocks(TestChains.tokens(1, 1), 100))).isFalse();
    assertThat(client.report("r", TestChains.FP, List.of(), List.of(), false)).isFalse();
    assertThat(client.failures()).isEqualTo(4);
  }

  // ---- bad input ----

  static void assertStatus(Runnable call, Status.Code code, String messagePart) {
    assertThatThrownBy(call::run)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(code);
              assertThat(e.getStatus().getDescription()).contains(messagePart);
            });
  }

  @Test
  void badLookupsGetStatusesNamingTheField() throws Exception {
    start(1 << 20);
    byte[] unknown = new byte[32];
    assertStatus(
        () ->
            stub.lookup(
                LookupRequest.newBuilder()
                    .setModelFingerprint(ByteString.copyFrom(unknown))
                    .build()),
        Status.Code.NOT_FOUND,
        "model_fingerprint: 0000000000000000... is not registered");
    assertStatus(
        () ->
            stub.lookup(
                LookupRequest.newBuilder()
                    .setModelFingerprint(ByteString.copyFrom(new byte[5]))
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "model_fingerprint: 5 bytes (expected: 32)");
    assertStatus(
        () ->
            stub.lookup(
                LookupRequest.newBuilder()
                    .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
                    .addAllTokenIds(List.of(1, -2, 3, 4))
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "token_ids[1]: -2 (expected: >= 0)");
    assertStatus(
        () ->
            stub.lookup(
                LookupRequest.newBuilder()
                    .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
                    .setLeaseMs(-1)
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "lease_ms: -1");
    assertStatus(
        () -> stub.registerModel(TestChains.SPEC.toBuilder().setBlockSize(0).build()),
        Status.Code.INVALID_ARGUMENT,
        "block_size: 0 (expected: >= 1)");
  }

  @Test
  void badGetsPinsAndReportsGetStatusesNamingTheField() throws Exception {
    start(1 << 20);
    assertStatus(
        () ->
            stub.get(GetRequest.newBuilder().addKeys(ByteString.copyFrom(new byte[32])).build())
                .next(),
        Status.Code.NOT_FOUND,
        "keys[0]: 0000000000000000... is not stored");
    assertStatus(
        () ->
            stub.get(
                    GetRequest.newBuilder()
                        .addKeys(ByteString.copyFrom(new byte[32]))
                        .addKeys(ByteString.copyFrom(new byte[3]))
                        .build())
                .next(),
        Status.Code.INVALID_ARGUMENT,
        "keys[1]: 3 bytes (expected: 32)");
    assertStatus(
        () -> stub.get(GetRequest.newBuilder().setChunkBytes(CHUNK_LIMIT + 1).build()).next(),
        Status.Code.INVALID_ARGUMENT,
        "chunk_bytes: " + (CHUNK_LIMIT + 1));
    assertStatus(
        () -> stub.pin(PinRequest.newBuilder().addKeys(ByteString.copyFrom(new byte[32])).build()),
        Status.Code.NOT_FOUND,
        "keys[0]");
    assertStatus(
        () -> stub.pin(PinRequest.getDefaultInstance()),
        Status.Code.INVALID_ARGUMENT,
        "keys: empty");
    assertStatus(
        () ->
            stub.reportBlocks(
                ReportBlocksRequest.newBuilder()
                    .setReplica(" ")
                    .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "replica: ' '");
    assertStatus(
        () ->
            stub.reportBlocks(
                ReportBlocksRequest.newBuilder()
                    .setReplica("w")
                    .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
                    .addStored(ByteString.copyFrom(new byte[31]))
                    .build()),
        Status.Code.INVALID_ARGUMENT,
        "stored[0]: 31 bytes");
  }

  @Test
  void badPutsGetStatusesNamingTheField() throws Exception {
    start(4 << 20);
    List<KvCacheClient.Block> chain = blocks(TestChains.tokens(4, 2), 20_000);
    KvCacheClient.Block b0 = chain.get(0);
    KvCacheClient.Block b1 = chain.get(1);
    assertStatus(
        () -> putRaw(b1, 20_000, null), Status.Code.FAILED_PRECONDITION, "header.parent_key");
    KvCacheClient.Block wrongKey =
        new KvCacheClient.Block(b1.key(), null, b0.tokens(), b0.payload());
    assertStatus(
        () -> putRaw(wrongKey, 20_000, null),
        Status.Code.INVALID_ARGUMENT,
        "header.key: " + KvKeys.shortHex(b1.key()));
    KvCacheClient.Block partial =
        new KvCacheClient.Block(b0.key(), null, new int[] {1, 2, 3}, b0.payload());
    assertStatus(
        () -> putRaw(partial, 20_000, null),
        Status.Code.INVALID_ARGUMENT,
        "header.token_ids: 3 ids (expected: the model's block_size 4");
    assertStatus(
        () -> putRaw(b0, 20_000, new byte[CHUNK_LIMIT * 2]),
        Status.Code.INVALID_ARGUMENT,
        "chunk: " + CHUNK_LIMIT * 2 + " bytes (expected: at most --max-chunk-bytes " + CHUNK_LIMIT);
    assertStatus(
        () -> putRaw(b0, 10_000, null),
        Status.Code.INVALID_ARGUMENT,
        "would have 16384 bytes (expected: its header's size 10000)");
    assertStatus(
        () -> putRaw(b0, 30_000, null),
        Status.Code.INVALID_ARGUMENT,
        "ended at 20000 of its header's 30000 bytes");
    assertStatus(
        () -> putRaw(b0, 0, null), Status.Code.INVALID_ARGUMENT, "header.size: 0 (expected: 1..");
    assertStatus(
        () ->
            putMessages(
                List.of(
                    PutRequest.newBuilder().setChunk(ByteString.copyFrom(new byte[10])).build())),
        Status.Code.INVALID_ARGUMENT,
        "chunk: no header before it");
    BlockHeader badCrc = header(b0, 20_000).toBuilder().setCrc32C(12345).build();
    assertStatus(
        () -> putMessages(withChunks(badCrc, b0.payload(), 8192)),
        Status.Code.INVALID_ARGUMENT,
        "header.crc32c: 12345");
    BlockHeader unknown =
        header(b0, 20_000).toBuilder()
            .setModelFingerprint(ByteString.copyFrom(new byte[32]))
            .build();
    assertStatus(
        () -> putMessages(withChunks(unknown, b0.payload(), 8192)),
        Status.Code.NOT_FOUND,
        "header.model_fingerprint");
    // None of that stored anything.
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getBlocks()).isZero();
  }

  static BlockHeader header(KvCacheClient.Block b, long size) {
    BlockHeader.Builder h =
        BlockHeader.newBuilder()
            .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
            .setKey(ByteString.copyFrom(b.key()))
            .setSize(size);
    if (b.parent() != null) {
      h.setParentKey(ByteString.copyFrom(b.parent()));
    }
    for (int t : b.tokens()) {
      h.addTokenIds(t);
    }
    return h.build();
  }

  static List<PutRequest> withChunks(BlockHeader h, byte[] payload, int chunk) {
    List<PutRequest> msgs = new ArrayList<>();
    msgs.add(PutRequest.newBuilder().setHeader(h).build());
    for (int off = 0; off < payload.length; off += chunk) {
      msgs.add(
          PutRequest.newBuilder()
              .setChunk(ByteString.copyFrom(payload, off, Math.min(chunk, payload.length - off)))
              .build());
    }
    return msgs;
  }

  /**
   * Puts one block declaring {@code size}, sending its payload in 8 KiB chunks (or {@code
   * oneChunk}).
   */
  void putRaw(KvCacheClient.Block b, long size, byte[] oneChunk) {
    List<PutRequest> msgs =
        oneChunk == null
            ? withChunks(header(b, size), b.payload(), 8192)
            : List.of(
                PutRequest.newBuilder().setHeader(header(b, size)).build(),
                PutRequest.newBuilder().setChunk(ByteString.copyFrom(oneChunk)).build());
    putMessages(msgs);
  }

  /** Sends {@code msgs} as one Put; throws the call's status if it failed. */
  void putMessages(List<PutRequest> msgs) {
    CompletableFuture<PutResponse> result = new CompletableFuture<>();
    StreamObserver<PutRequest> out =
        async.put(
            new StreamObserver<>() {
              @Override
              public void onNext(PutResponse r) {
                result.complete(r);
              }

              @Override
              public void onError(Throwable t) {
                result.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                result.complete(null);
              }
            });
    for (PutRequest m : msgs) {
      out.onNext(m);
    }
    out.onCompleted();
    try {
      result.get(10, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw (StatusRuntimeException) e.getCause();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void lookupResponseListsKeysInChainOrder() throws Exception {
    KvCacheClient client = start(4 << 20);
    int[] tokens = TestChains.tokens(8, 3);
    client.put(TestChains.FP, blocks(tokens, 1000));
    LookupResponse r =
        stub.lookup(
            LookupRequest.newBuilder()
                .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
                .addAllTokenIds(java.util.Arrays.stream(tokens).boxed().toList())
                .build());
    List<byte[]> expected = KvKeys.chain(TestChains.FP, TestChains.BLOCK_SIZE, tokens);
    assertThat(r.getKeysList().stream().map(ByteString::toByteArray).toList())
        .usingElementComparator(java.util.Arrays::compare)
        .containsExactlyElementsOf(expected);
  }

  // ---- compressed caches ----

  static final java.util.SortedMap<String, Long> SNAP =
      new java.util.TreeMap<>(
          java.util.Map.of("budget", 6L, "kernel", 7L, "pool", 0L, "reduction", 0L, "window", 4L));

  /** A snapkv entry of {@code prefix} for TestChains.SPEC's shape (2 layers, 2 KV heads, dim 8). */
  static byte[] entry(int[] prefix, java.util.SortedMap<String, Long> params, int layers) {
    byte[] key =
        io.draftmesh.kvcache.client.CompressedKeys.key(TestChains.FP, prefix, "snapkv", params);
    int kept = 6;
    int[][][] positions = new int[layers][2][];
    for (int[][] l : positions) {
      l[0] = new int[] {0, 1, 2, 3, 4, 5};
      l[1] = new int[] {0, 2, 4, 6, 8, 9};
    }
    byte[] kv =
        new byte[(int) io.draftmesh.kvcache.client.CompressedEntry.kvBytes(layers, 2, 8, kept)];
    new java.util.Random(prefix.length).nextBytes(kv);
    return new io.draftmesh.kvcache.client.CompressedEntry(
            key, "snapkv", params, prefix.length, layers, 2, 8, positions, kv)
        .encode();
  }

  static io.draftmesh.proto.v1.CompressedHeader.Builder compressedHeader(
      int[] prefix, String method, java.util.SortedMap<String, Long> params, byte[] payload) {
    io.draftmesh.proto.v1.CompressedHeader.Builder h =
        io.draftmesh.proto.v1.CompressedHeader.newBuilder()
            .setModelFingerprint(ByteString.copyFrom(TestChains.FP))
            .setMethod(method)
            .setSize(payload.length);
    for (int t : prefix) {
      h.addTokenIds(t);
    }
    params.forEach(
        (n, v) ->
            h.addParams(
                io.draftmesh.proto.v1.CompressionParam.newBuilder().setName(n).setValue(v)));
    if (io.draftmesh.kvcache.client.CompressedKeys.queryAgnostic(method)) {
      h.setKey(
          ByteString.copyFrom(
              io.draftmesh.kvcache.client.CompressedKeys.key(
                  TestChains.FP, prefix, method, params)));
    } else {
      h.setKey(ByteString.copyFrom(new byte[32]));
    }
    return h;
  }

  void putCompressedRaw(io.draftmesh.proto.v1.CompressedHeader.Builder h, byte[] payload) {
    List<PutRequest> msgs = new ArrayList<>();
    msgs.add(PutRequest.newBuilder().setCompressed(h).build());
    msgs.add(PutRequest.newBuilder().setChunk(ByteString.copyFrom(payload)).build());
    putMessages(msgs);
  }

  @Test
  void aCompressedEntryIsStoredOnceAndReadBackByItsKey() throws Exception {
    KvCacheClient client = start(4 << 20);
    int[] prefix = TestChains.tokens(20, 3);
    byte[] payload = entry(prefix, SNAP, 2);
    assertThat(client.putCompressed(TestChains.FP, prefix, "snapkv", SNAP, payload)).isTrue();
    assertThat(client.putCompressed(TestChains.FP, prefix, "snapkv", SNAP, payload))
        .as("idempotent")
        .isTrue();
    byte[] key =
        io.draftmesh.kvcache.client.CompressedKeys.key(TestChains.FP, prefix, "snapkv", SNAP);
    assertThat(client.getCompressed(key)).get().isEqualTo(payload);
    StatsResponse stats = stub.stats(StatsRequest.getDefaultInstance());
    assertThat(stats.getBlocks()).isEqualTo(1);
    assertThat(stats.getPutsStored()).isEqualTo(1);
    assertThat(stats.getPutsDuplicate()).isEqualTo(1);
    // Another budget, or the prefix one token shorter: never this entry.
    java.util.SortedMap<String, Long> other = new java.util.TreeMap<>(SNAP);
    other.put("budget", 7L);
    assertThat(
            client.getCompressed(
                io.draftmesh.kvcache.client.CompressedKeys.key(
                    TestChains.FP, prefix, "snapkv", other)))
        .isEmpty();
    assertThat(
            client.getCompressed(
                io.draftmesh.kvcache.client.CompressedKeys.key(
                    TestChains.FP, java.util.Arrays.copyOf(prefix, 11), "snapkv", SNAP)))
        .isEmpty();
    assertThat(client.failures()).as("a miss is not a failure").isZero();
    // Not a chain's block: a lookup of the same ids finds nothing.
    assertThat(
            client
                .lookup(TestChains.FP, TestChains.BLOCK_SIZE, prefix, 0)
                .orElseThrow()
                .cachedBlocks())
        .isZero();
  }

  @Test
  void queryDependentMethodsAreRefusedStorage() throws Exception {
    KvCacheClient client = start(4 << 20);
    int[] prefix = TestChains.tokens(21, 3);
    java.util.SortedMap<String, Long> p =
        new java.util.TreeMap<>(java.util.Map.of("budget", 6L, "kernel", 7L, "window", 4L));
    byte[] payload = entry(prefix, SNAP, 2);
    for (String method : List.of("speckv", "specpc")) {
      assertThatThrownBy(
              () -> putCompressedRaw(compressedHeader(prefix, method, p, payload), payload))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                assertThat(e.getStatus().getDescription())
                    .startsWith(
                        "compressed.method: \"" + method + "\" (expected: a query-agnostic method");
              });
      assertThat(client.putCompressed(TestChains.FP, prefix, method, p, payload))
          .as("the client never sends one")
          .isFalse();
    }
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getBlocks()).isZero();
  }

  @Test
  void badCompressedHeadersAndPayloadsAreInvalidNamingTheField() throws Exception {
    start(4 << 20);
    int[] prefix = TestChains.tokens(22, 3);
    byte[] payload = entry(prefix, SNAP, 2);
    java.util.function.BiConsumer<io.draftmesh.proto.v1.CompressedHeader.Builder, String> refused =
        (h, message) ->
            assertThatThrownBy(() -> putCompressedRaw(h, payload))
                .isInstanceOfSatisfying(
                    StatusRuntimeException.class,
                    e -> {
                      assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
                      assertThat(e.getStatus().getDescription()).startsWith(message);
                    });
    byte[] wrong =
        io.draftmesh.kvcache.client.CompressedKeys.key(
            TestChains.FP, prefix, "streaming_llm", SNAP);
    refused.accept(
        compressedHeader(prefix, "snapkv", SNAP, payload).setKey(ByteString.copyFrom(wrong)),
        "compressed.key: ");
    refused.accept(
        compressedHeader(prefix, "snapkv", SNAP, payload).setKey(ByteString.copyFrom(new byte[31])),
        "compressed.key: 31 bytes (expected: 32)");
    io.draftmesh.proto.v1.CompressedHeader.Builder unordered =
        compressedHeader(prefix, "snapkv", SNAP, payload);
    io.draftmesh.proto.v1.CompressionParam first = unordered.getParams(0);
    unordered.setParams(0, unordered.getParams(1)).setParams(1, first);
    refused.accept(unordered, "compressed.params[1].name: \"budget\" after \"kernel\"");
    refused.accept(
        compressedHeader(prefix, "snapkv", SNAP, payload).clearTokenIds(),
        "compressed.token_ids: none");
    refused.accept(
        compressedHeader(prefix, "snapkv", SNAP, payload).setSize(payload.length + 1L), "chunk: ");
    // The payload must be the entry the header names: not random bytes, not another prefix's
    // entry, not another model shape's.
    byte[] random = new byte[payload.length];
    new java.util.Random(1).nextBytes(random);
    assertThatThrownBy(
            () -> putCompressedRaw(compressedHeader(prefix, "snapkv", SNAP, random), random))
        .hasMessageContaining(
            "compressed: the payload is not the compacted-v1 entry its header names");
    byte[] otherPrefix = entry(TestChains.tokens(23, 3), SNAP, 2);
    assertThatThrownBy(
            () ->
                putCompressedRaw(
                    compressedHeader(prefix, "snapkv", SNAP, otherPrefix), otherPrefix))
        .hasMessageContaining("entry of another key");
    byte[] threeLayers = entry(prefix, SNAP, 3);
    assertThatThrownBy(
            () ->
                putCompressedRaw(
                    compressedHeader(prefix, "snapkv", SNAP, threeLayers), threeLayers))
        .hasMessageContaining("(expected: 12, 2x2x8)");
    assertThat(stub.stats(StatsRequest.getDefaultInstance()).getBlocks()).isZero();
    // An unregistered model.
    io.draftmesh.proto.v1.CompressedHeader.Builder unknown =
        compressedHeader(prefix, "snapkv", SNAP, payload)
            .setModelFingerprint(ByteString.copyFrom(new byte[32]));
    assertThatThrownBy(() -> putCompressedRaw(unknown, payload))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.NOT_FOUND));
  }
}
