package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.closeOp;
import static io.draftmesh.worker.SessionStream.open;
import static io.draftmesh.worker.SessionStream.propose;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.kvcache.client.CompressedEntry;
import io.draftmesh.kvcache.client.CompressedKeys;
import io.draftmesh.proto.v1.KvCacheGrpc;
import io.draftmesh.proto.v1.KvCompacted;
import io.draftmesh.proto.v1.KvCompression;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Opened;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.StatsRequest;
import io.draftmesh.proto.v1.StatsResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Compressed caches through kvcache-service, on real ports: replicas A and B of one model linked to
 * one service (disk tier only, so every read is checked against the record's CRC32C), C the same
 * model without a service (every open compacts afresh: the reference), D another model on the same
 * service. An open compacts the first {@code prefix_tokens} of its prompt (a shared document) and
 * reads the rest (the question) whole; the compacted prefix is stored and restored by later opens
 * with the same prefix, method and parameters, on any replica.
 */
class CompressedCacheIT {
  static final int DOC = 96; // the shared prefix: six blocks of 16
  static final int DECODE = 12;

  @TempDir static Path dir;
  static KvCacheServer kvcache;
  static ManagedChannel kvChannel;
  static WorkerServer a;
  static WorkerServer b;
  static WorkerServer c;
  static WorkerServer d;
  static final List<ManagedChannel> channels = new ArrayList<>();
  static final Map<WorkerServer, ManagedChannel> byWorker = new java.util.HashMap<>();

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    Path other = dir.resolve("tiny-llama-other");
    RandomCheckpoint.write(other, RandomCheckpoint.tinyLlama(), 8, DType.F32, 0);
    kvcache =
        KvCacheServer.onPort(
            KvCacheConfig.inMemory(1 << 20)
                .withDisk(dir.resolve("kv"), 64L << 20, 80L << 20)
                .withMemory(0),
            OpenTelemetry.noop());
    kvcache.start();
    kvChannel = channel(kvcache.port());
    String kv = "localhost:" + kvcache.port();
    a = worker(model, kv);
    b = worker(model, kv);
    c = worker(model, null);
    d = worker(other, kv);
  }

  static WorkerServer worker(Path model, String kv) throws Exception {
    // A generous deadline: this test checks what is restored; the stalled case sets its own.
    return worker(model, kv, 10_000);
  }

  static WorkerServer worker(Path model, String kv, int deadlineMs) throws Exception {
    List<String> flags =
        new ArrayList<>(
            List.of(
                "--model",
                model.toString(),
                "--port",
                "0",
                "--kv-budget-mb",
                "4",
                "--max-sessions",
                "4",
                "--max-tokens-per-op",
                "16",
                "--max-context",
                "256",
                "--drain-seconds",
                "0"));
    if (kv != null) {
      flags.addAll(List.of("--kvcache", kv, "--kvcache-deadline-ms", Integer.toString(deadlineMs)));
    }
    WorkerServer w =
        WorkerServer.onPort(
                WorkerConfig.parse(
                    flags.toArray(String[]::new), Map.of(), WorkerConfig.Role.TARGET),
                OpenTelemetry.noop())
            .start();
    w.awaitReady(Duration.ofMinutes(2));
    ManagedChannel ch = channel(w.port());
    byWorker.put(w, ch);
    return w;
  }

  @AfterAll
  static void stop() throws Exception {
    for (ManagedChannel ch : channels) {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    for (WorkerServer w : new WorkerServer[] {a, b, c, d}) {
      if (w != null) {
        w.close();
      }
    }
    if (kvcache != null) {
      kvcache.close();
    }
  }

  static ManagedChannel channel(int port) {
    ManagedChannel ch =
        Grpc.newChannelBuilderForAddress("localhost", port, InsecureChannelCredentials.create())
            .build();
    channels.add(ch);
    return ch;
  }

  static KvCompression snapKv(int prefix) {
    return KvCompression.newBuilder()
        .setMethod("snapkv")
        .setBudget(24)
        .setWindow(8)
        .setPrefixTokens(prefix)
        .build();
  }

  static int[] concat(int[] x, int[] y) {
    int[] out = Arrays.copyOf(x, x.length + y.length);
    System.arraycopy(y, 0, out, x.length, y.length);
    return out;
  }

  /** An open's report and its greedy continuation (the first token is the open's prediction). */
  record Run(Opened opened, List<Integer> tokens) {
    KvCompacted compaction() {
      return opened.getCompaction();
    }
  }

  static Run run(WorkerServer w, int[] prompt, KvCompression compression) throws Exception {
    try (SessionStream s = SessionStream.start(ModelWorkerGrpc.newStub(byWorker.get(w)))) {
      SessionRequest.Builder o = open(prompt);
      o.getOpenBuilder().setCompression(compression);
      Opened opened = s.call(o).getOpened();
      List<Integer> tokens = s.call(propose(DECODE)).getProposed().getTokenIdsList();
      assertThat(tokens.get(0)).isEqualTo(opened.getNext().getTokenId());
      s.call(closeOp());
      return new Run(opened, tokens);
    }
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime()).as("waiting for %s", what).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  /** Runs {@code prompt} on A (which compacts it) and waits until A stored the compacted prefix. */
  static Run storedByA(int[] prompt, KvCompression compression) throws Exception {
    long before = a.kvcache().stats().storedCompacted();
    Run r = run(a, prompt, compression);
    assertThat(r.compaction().getRestored()).isFalse();
    await("A stored its compacted prefix", () -> a.kvcache().stats().storedCompacted() > before);
    return r;
  }

  @Test
  void aCompactedPrefixIsRestoredOnAnotherReplicaWhichPrefillsOnlyTheRest() throws Exception {
    int[] doc = TinyModel.prompt(DOC, 1);
    int[] question = TinyModel.prompt(10, 2);
    int[] prompt = concat(doc, question);
    Run fresh = run(c, prompt, snapKv(DOC));
    Run first = storedByA(prompt, snapKv(DOC));
    long computed = b.engine().promptTokensComputed();
    long restoredBefore = b.kvcache().stats().restoredCompacted();

    Run restored = run(b, prompt, snapKv(DOC));

    KvCompacted rc = restored.compaction();
    assertThat(rc.getRestored()).isTrue();
    assertThat(b.kvcache().stats().restoredCompacted()).isEqualTo(restoredBefore + 1);
    assertThat(rc.getMethod()).isEqualTo("snapkv");
    assertThat(rc.getPromptTokens()).isEqualTo(DOC);
    assertThat(rc.getKeptSlots()).isEqualTo(24);
    assertThat(rc.getDroppedSlots()).isEqualTo(DOC - 24);
    assertThat(rc.getKvBlocksFreed()).as("nothing was compacted here").isZero();
    var pool = b.engine().pool();
    assertThat(rc.getKvBytesRestored())
        .isEqualTo(rc.getKvBytesKept())
        .isEqualTo(CompressedEntry.kvBytes(pool.layers(), pool.kvHeads(), pool.headDim(), 24));
    assertThat(rc.getKvBytesKept()).isEqualTo(first.compaction().getKvBytesKept());
    assertThat(b.engine().promptTokensComputed() - computed)
        .as("only the question was prefilled")
        .isEqualTo(question.length);
    assertThat(restored.opened().getCachedPromptTokens()).isEqualTo(DOC);
    assertThat(restored.opened().getFetchedPromptTokens()).isEqualTo(DOC);
    assertThat(first.opened().getFetchedPromptTokens()).isZero();
    assertThat(first.compaction().getRestored()).isFalse();
    assertThat(first.compaction().getKvBlocksFreed()).isPositive();
    // Request 1's path on the same compacted cache: token for token, and equal to a fresh
    // compaction on a worker without the service.
    assertThat(restored.tokens()).isEqualTo(first.tokens()).isEqualTo(fresh.tokens());

    // Another question about the same document restores the same prefix, as a fresh compaction
    // of that prompt decodes.
    int[] other = concat(doc, TinyModel.prompt(7, 3));
    Run second = run(b, other, snapKv(DOC));
    assertThat(second.compaction().getRestored()).isTrue();
    assertThat(second.tokens()).isEqualTo(run(c, other, snapKv(DOC)).tokens());
    // The restored prefix changes the output: the test is not blind to what the cache holds.
    assertThat(second.tokens())
        .isNotEqualTo(
            run(
                    c,
                    other,
                    KvCompression.getDefaultInstance().toBuilder()
                        .setMethod("snapkv")
                        .setBudget(200)
                        .build())
                .tokens());
    Leaks.awaitAllFree(b.engine());
  }

  /**
   * H2O is query-agnostic too: its scores are the attention of the document's own queries, so its
   * compacted document is stored and restored like SnapKV's, with the same output as compacting it
   * afresh.
   */
  @Test
  void anH2oCompactedPrefixIsRestoredWithTheFreshCompactionsOutput() throws Exception {
    int[] doc = TinyModel.prompt(DOC, 21);
    int[] prompt = concat(doc, TinyModel.prompt(8, 22));
    KvCompression h2o =
        KvCompression.newBuilder()
            .setMethod("h2o")
            .setBudget(24)
            .setWindow(8)
            .setPrefixTokens(DOC)
            .build();
    Run fresh = run(c, prompt, h2o);
    Run first = storedByA(prompt, h2o);
    Run restored = run(b, prompt, h2o);
    KvCompacted rc = restored.compaction();
    assertThat(rc.getRestored()).isTrue();
    assertThat(rc.getMethod()).isEqualTo("h2o");
    assertThat(rc.getKeptSlots()).isEqualTo(24);
    assertThat(rc.getKvBytesRestored()).isEqualTo(first.compaction().getKvBytesKept());
    assertThat(restored.tokens()).isEqualTo(first.tokens()).isEqualTo(fresh.tokens());
    // Another window is another selection, so another key.
    assertThat(run(b, prompt, h2o.toBuilder().setWindow(4).build()).compaction().getRestored())
        .isFalse();
    Leaks.awaitAllFree(b.engine());
  }

  @Test
  void onlyTheSameModelPrefixMethodAndParametersMatch() throws Exception {
    int[] doc = TinyModel.prompt(DOC, 11);
    int[] prompt = concat(doc, TinyModel.prompt(9, 12));
    storedByA(prompt, snapKv(DOC));
    List<KvCompression> others =
        List.of(
            snapKv(DOC).toBuilder().setBudget(20).build(),
            snapKv(DOC).toBuilder().setWindow(4).build(),
            snapKv(DOC).toBuilder().setKernel(5).build(),
            snapKv(DOC - 1),
            KvCompression.newBuilder()
                .setMethod("streaming_llm")
                .setBudget(24)
                .setPrefixTokens(DOC)
                .build());
    for (KvCompression o : others) {
      Run r = run(b, prompt, o);
      assertThat(r.compaction().getRestored()).as("%s", o).isFalse();
      assertThat(r.tokens()).as("%s", o).isEqualTo(run(c, prompt, o).tokens());
    }
    // The stored parameters themselves still match (defaults spelled out match them too).
    assertThat(
            run(b, prompt, snapKv(DOC).toBuilder().setKernel(7).build()).compaction().getRestored())
        .isTrue();
    // Another model on the same service never matches.
    long restored = d.kvcache().stats().restoredCompacted();
    assertThat(run(d, prompt, snapKv(DOC)).compaction().getRestored()).isFalse();
    assertThat(d.kvcache().stats().restoredCompacted()).isEqualTo(restored);
  }

  @Test
  void aCorruptEntryIsDroppedAndTheWorkerCompactsWithTheSameOutput() throws Exception {
    int[] doc = TinyModel.prompt(DOC, 21);
    int[] prompt = concat(doc, TinyModel.prompt(8, 22));
    Run first = storedByA(prompt, snapKv(DOC));
    flipPayloadByteOfEntry(snapKvKey(a.kvcache().fingerprint(), doc));
    StatsResponse before = stats();
    long storedBefore = b.kvcache().stats().storedCompacted();

    Run r = run(b, prompt, snapKv(DOC));

    assertThat(r.compaction().getRestored()).isFalse();
    assertThat(r.compaction().getKvBlocksFreed()).as("compacted here").isPositive();
    assertThat(r.tokens())
        .isEqualTo(first.tokens())
        .isEqualTo(run(c, prompt, snapKv(DOC)).tokens());
    StatsResponse after = stats();
    assertThat(after.getDisk().getCorruptDropped() - before.getDisk().getCorruptDropped())
        .isEqualTo(1);
    // The bad entry is gone, so B's own compaction takes its key, and A restores that one.
    await("B stored its compaction", () -> b.kvcache().stats().storedCompacted() > storedBefore);
    Run again = run(a, prompt, snapKv(DOC));
    assertThat(again.compaction().getRestored()).isTrue();
    assertThat(again.tokens()).isEqualTo(first.tokens());
  }

  @Test
  void garbageUnderTheKeyIsNeverRestored() throws Exception {
    // A service that hands back another entry's bytes (right transport CRC, wrong entry): the
    // worker checks the entry's own key and compacts as without a service.
    int[] doc = TinyModel.prompt(DOC, 31);
    int[] prompt = concat(doc, TinyModel.prompt(8, 32));
    var pool = b.engine().pool();
    byte[] otherKey = snapKvKey(b.kvcache().fingerprint(), TinyModel.prompt(DOC, 33));
    int[][][] positions = new int[pool.layers()][pool.kvHeads()][];
    for (int[][] layer : positions) {
      Arrays.fill(layer, IntStream.range(0, 24).toArray());
    }
    byte[] wrong =
        new CompressedEntry(
                otherKey,
                "snapkv",
                new TreeMap<>(
                    Map.of("budget", 24L, "kernel", 7L, "pool", 0L, "reduction", 0L, "window", 8L)),
                DOC,
                pool.layers(),
                pool.kvHeads(),
                pool.headDim(),
                positions,
                new byte
                    [(int)
                        CompressedEntry.kvBytes(pool.layers(), pool.kvHeads(), pool.headDim(), 24)])
            .encode();
    try (GarbageCompressed garbage = GarbageCompressed.start(b.kvcache().fingerprint(), wrong)) {
      WorkerServer e = worker(dir.resolve("tiny-llama"), "localhost:" + garbage.port());
      try {
        Run r = run(e, prompt, snapKv(DOC));
        assertThat(r.compaction().getRestored()).isFalse();
        assertThat(e.kvcache().stats().garbageCompacted()).isEqualTo(1);
        assertThat(garbage.gets()).isEqualTo(1);
        assertThat(r.tokens()).isEqualTo(run(c, prompt, snapKv(DOC)).tokens());
      } finally {
        e.close();
      }
    }
  }

  @Test
  void aStalledOrDownServiceChangesNothingButTheWait() throws Exception {
    int[] prompt = concat(TinyModel.prompt(DOC, 51), TinyModel.prompt(8, 52));
    List<Integer> expected = run(c, prompt, snapKv(DOC)).tokens();
    // Accepts connections and never answers: every call runs into the 300 ms deadline.
    try (java.net.ServerSocket silent = new java.net.ServerSocket(0)) {
      List<java.net.Socket> held = new java.util.concurrent.CopyOnWriteArrayList<>();
      Thread acceptor =
          new Thread(
              () -> {
                try {
                  while (true) {
                    held.add(silent.accept());
                  }
                } catch (IOException closed) {
                  // the test is over
                }
              });
      acceptor.setDaemon(true);
      acceptor.start();
      WorkerServer stalled =
          worker(dir.resolve("tiny-llama"), "localhost:" + silent.getLocalPort(), 300);
      try {
        Run r = run(stalled, prompt, snapKv(DOC));
        assertThat(r.compaction().getRestored()).isFalse();
        assertThat(r.compaction().getKvBlocksFreed()).isPositive();
        assertThat(r.tokens()).isEqualTo(expected);
        assertThat(stalled.kvcache().stats().compactedMisses()).isEqualTo(1);
        Leaks.awaitAllFree(stalled.engine());
      } finally {
        stalled.close();
        for (java.net.Socket sock : held) {
          sock.close();
        }
      }
    }
    // Nothing listening at all.
    int dead;
    try (java.net.ServerSocket probe = new java.net.ServerSocket(0)) {
      dead = probe.getLocalPort();
    }
    WorkerServer down = worker(dir.resolve("tiny-llama"), "localhost:" + dead, 300);
    try {
      Run r = run(down, prompt, snapKv(DOC));
      assertThat(r.compaction().getRestored()).isFalse();
      assertThat(r.tokens()).isEqualTo(expected);
    } finally {
      down.close();
    }
  }

  @Test
  void queryDependentMethodsAreNeverStoredAndBadPrefixesAreInvalid() throws Exception {
    int[] doc = TinyModel.prompt(DOC, 41);
    int[] answer = TinyModel.prompt(5, 42);
    long stored = a.kvcache().stats().storedCompacted();
    long failed = a.kvcache().stats().failedPuts();
    Run speckv =
        run(
            a,
            concat(doc, answer),
            KvCompression.newBuilder()
                .setMethod("speckv")
                .setBudget(24)
                .setWindow(8)
                .setAnswerTokens(answer.length)
                .build());
    assertThat(speckv.compaction().getDroppedSlots()).isPositive();
    // The publisher handles its queue in order: had the speckv open offered its cache, it would
    // have been put (and refused) before this snapkv one.
    storedByA(concat(doc, TinyModel.prompt(6, 43)), snapKv(DOC));
    assertThat(a.kvcache().stats().storedCompacted()).isEqualTo(stored + 1);
    assertThat(a.kvcache().stats().failedPuts()).isEqualTo(failed);

    int[] prompt = concat(doc, TinyModel.prompt(6, 44));
    for (Object[] bad :
        new Object[][] {
          {snapKv(prompt.length), "open.compression.prefix_tokens: " + prompt.length},
          {snapKv(-1), "open.compression.prefix_tokens: -1"},
          {
            KvCompression.newBuilder()
                .setMethod("speckv")
                .setBudget(24)
                .setWindow(8)
                .setAnswerTokens(5)
                .setPrefixTokens(DOC)
                .build(),
            "open.compression.prefix_tokens: " + DOC + " with method speckv"
          }
        }) {
      try (SessionStream s = SessionStream.start(ModelWorkerGrpc.newStub(byWorker.get(b)))) {
        SessionRequest.Builder o = open(prompt);
        o.getOpenBuilder().setCompression((KvCompression) bad[0]);
        Status st = s.fails(o);
        assertThat(st.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(st.getDescription()).startsWith((String) bad[1]);
      }
    }
  }

  static StatsResponse stats() {
    return KvCacheGrpc.newBlockingStub(kvChannel)
        .withDeadlineAfter(10, TimeUnit.SECONDS)
        .stats(StatsRequest.getDefaultInstance());
  }

  /** The key of the snapkv(24, 8) compaction of {@code prefix}, as kvcache.proto derives it. */
  static byte[] snapKvKey(byte[] fingerprint, int[] prefix) {
    return CompressedKeys.key(
        fingerprint,
        prefix,
        "snapkv",
        new TreeMap<>(
            Map.of("budget", 24L, "kernel", 7L, "pool", 0L, "reduction", 0L, "window", 8L)));
  }

  /**
   * Flips one bit inside the stored entry under {@code key} on disk (found by its magic and the key
   * that follows it), in its positions or KV, so that the record's CRC32C fails.
   */
  static void flipPayloadByteOfEntry(byte[] key) throws IOException {
    byte[] needle = concatBytes("DMKVCMP1".getBytes(StandardCharsets.US_ASCII), key);
    List<Path> segments;
    try (Stream<Path> files = Files.list(dir.resolve("kv").resolve("blocks"))) {
      segments = files.toList();
    }
    int flipped = 0;
    for (Path p : segments) {
      byte[] file = Files.readAllBytes(p);
      for (int i = 0; i + needle.length <= file.length; i++) {
        if (Arrays.equals(file, i, i + needle.length, needle, 0, needle.length)) {
          try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            int at = i + 400;
            ch.write(ByteBuffer.wrap(new byte[] {(byte) (file[at] ^ 0x04)}), at);
          }
          flipped++;
        }
      }
    }
    assertThat(flipped).as("copies of the entry on disk").isEqualTo(1);
  }

  static byte[] concatBytes(byte[] x, byte[] y) {
    byte[] out = Arrays.copyOf(x, x.length + y.length);
    System.arraycopy(y, 0, out, x.length, y.length);
    return out;
  }
}
