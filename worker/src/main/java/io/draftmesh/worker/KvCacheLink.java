package io.draftmesh.worker;

import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.compaction.CompactedCache;
import io.draftmesh.engine.compaction.KvPolicy;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.PrefixCache;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.kvcache.client.CompressedEntry;
import io.draftmesh.kvcache.client.CompressedKeys;
import io.draftmesh.kvcache.client.KvCacheClient;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.ModelSpec;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker's use of kvcache-service, an accelerator it never waits on beyond a deadline.
 *
 * <ul>
 *   <li><b>Fetch</b> on open: the prompt's full blocks the engine's prefix cache lacks are looked
 *       up in the service; the stored part of them is fetched and imported into the pool as idle
 *       cached blocks, which the new sequence then adopts like local ones. Every call has the
 *       deadline; a slow, failing or garbage-returning service (wrong keys, sizes or CRCs, all
 *       checked by {@link KvCacheClient}) fetches nothing and the engine prefills as without it.
 *   <li><b>Publish</b> after the step: every block the prefix cache starts holding is queued (a
 *       bounded queue: when full, the block is dropped and counted), and one thread copies it out
 *       of the pool and puts it, off every request's path. The same thread reports which blocks the
 *       pool holds and dropped to the service's replica index (KV-aware routing), with an empty
 *       report as a heartbeat.
 *   <li><b>Compacted prefixes</b> (KV compression with {@code prefix_tokens}): an open first asks
 *       for the compacted cache of its prefix, method and parameters ({@link #fetchCompacted}, one
 *       Get with the deadline, checked entry by entry); a compaction of a query-agnostic method is
 *       stored by the publisher thread ({@link #storeCompacted}). SpecKV's and SpecPC's caches
 *       depend on the query and are never stored.
 * </ul>
 *
 * <p>Keys: the engine's prefix cache is seeded with the model's fingerprint, so its keys are the
 * service's (one hash, {@code io.draftmesh.kvkeys.BlockKeys}).
 */
public final class KvCacheLink implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KvCacheLink.class);
  private static final int PUT_BATCH = 16; // queued blocks per Put stream
  private static final int MAX_CHAIN = 64; // unconfirmed ancestors put again before a block
  private static final Duration HEARTBEAT = Duration.ofSeconds(15); // service's replica TTL: 60 s

  /**
   * @param target the service, HOST:PORT
   * @param deadline of each call (lookup, get, put, report)
   * @param publishQueue blocks that may wait to be published
   * @param replica this worker's name in the replica index, as the router addresses it; null = this
   *     host's name and the worker's port
   */
  public record Settings(String target, Duration deadline, int publishQueue, String replica) {}

  /** What the link did since it started. */
  public record Stats(
      long fetchedBlocks,
      long fetchMisses,
      long garbageBlocks,
      long publishedBlocks,
      long droppedBlocks,
      long failedPuts,
      long clientFailures,
      long restoredCompacted,
      long compactedMisses,
      long garbageCompacted,
      long storedCompacted) {}

  private interface Event {}

  private record Publish(byte[] parent, byte[] key, int[] tokens) implements Event {}

  private record Held(byte[] key) implements Event {}

  private record Dropped(byte[] key) implements Event {}

  private record StoreCompacted(CompactedName name, CompactedCache cache) implements Event {}

  /**
   * What names a compacted prefix cache in the service: the prefix's ids, the method and its
   * effective parameters (budget included), for {@link CompressedKeys}.
   */
  record CompactedName(int[] prefix, String method, SortedMap<String, Long> params) {
    static CompactedName of(int[] prefix, KvPolicy policy, int budget) {
      SortedMap<String, Long> params = new TreeMap<>(policy.parameters());
      params.put("budget", (long) budget);
      return new CompactedName(prefix, policy.name(), params);
    }
  }

  private final InferenceEngine engine;
  private final KvCacheClient client;
  private final String replica;
  private final ModelSpec spec;
  private final byte[] fingerprint;
  private final ArrayBlockingQueue<Event> queue;
  private final ThreadPoolExecutor fetcher;
  private final Thread publisher;
  private volatile boolean running = true;
  private final AtomicLong fetched = new AtomicLong();
  private final AtomicLong misses = new AtomicLong();
  private final AtomicLong garbage = new AtomicLong();
  private final AtomicLong published = new AtomicLong();
  private final AtomicLong dropped = new AtomicLong();
  private final AtomicLong failedPuts = new AtomicLong();
  private final AtomicLong restoredCompacted = new AtomicLong();
  private final AtomicLong compactedMisses = new AtomicLong();
  private final AtomicLong garbageCompacted = new AtomicLong();
  private final AtomicLong storedCompacted = new AtomicLong();
  // Publisher-thread state: blocks stored recently (to put a failed ancestor again) and blocks
  // known to be in the service, both bounded (least recently added forgotten first).
  private final Map<ByteBuffer, Publish> recent = bounded(4096);
  private final Map<ByteBuffer, Boolean> confirmed = bounded(65536);

  private KvCacheLink(InferenceEngine engine, KvCacheClient client, Settings s, int port) {
    this.engine = engine;
    this.client = client;
    this.replica = s.replica() != null ? s.replica() : hostName() + ":" + port;
    this.spec = spec(engine);
    this.fingerprint = KvKeys.fingerprint(spec);
    this.queue = new ArrayBlockingQueue<>(s.publishQueue());
    // Fetches block on the service (bounded by the deadline); two at a time, a few queued, and an
    // open that finds the queue full prefills without waiting.
    this.fetcher =
        new ThreadPoolExecutor(
            2,
            2,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(64),
            r -> {
              Thread t = new Thread(r, "kvcache-fetch");
              t.setDaemon(true);
              return t;
            });
    fetcher.allowCoreThreadTimeOut(true);
    PrefixCache cache = engine.prefixCache();
    cache.reseed(fingerprint); // before any session: local keys are the service's from now on
    cache.listener(
        new PrefixCache.Listener() {
          @Override
          public void stored(byte[] parent, byte[] key, int[] tokenIds) {
            offer(new Publish(parent, key, tokenIds));
          }

          @Override
          public void dropped(byte[] key) {
            offer(new Dropped(key));
          }
        });
    this.publisher = new Thread(this::publishLoop, "kvcache-publish");
    publisher.setDaemon(true);
  }

  /**
   * Links {@code engine} to the service in {@code s} (no call is made here: the service may be
   * down; the publisher registers the model when it can).
   */
  static KvCacheLink start(InferenceEngine engine, Settings s, int port, OpenTelemetry otel) {
    int chunk = 1 << 20; // the service's default --max-chunk-bytes
    KvCacheClient client = KvCacheClient.connect(s.target(), s.deadline(), chunk, otel);
    KvCacheLink link = new KvCacheLink(engine, client, s, port);
    link.publisher.start();
    log.info(
        "kvcache {}: replica {}, model fingerprint {}",
        s.target(),
        link.replica,
        KvKeys.shortHex(link.fingerprint));
    return link;
  }

  /** The model fingerprint seeding the block keys. */
  public byte[] fingerprint() {
    return fingerprint.clone();
  }

  /** This worker's name in the service's replica index. */
  public String replica() {
    return replica;
  }

  public Stats stats() {
    return new Stats(
        fetched.get(),
        misses.get(),
        garbage.get(),
        published.get(),
        dropped.get(),
        failedPuts.get(),
        client.failures(),
        restoredCompacted.get(),
        compactedMisses.get(),
        garbageCompacted.get(),
        storedCompacted.get());
  }

  /**
   * The compacted cache of {@code name} if the service has it, checked (the entry's own CRC32C,
   * key, method, parameters, prefix and model shape); completes (never exceptionally) with null on
   * a miss, a query-dependent method, a slow or failing service or an entry that fails a check.
   */
  CompletableFuture<CompactedCache> fetchCompacted(CompactedName name) {
    if (!CompressedKeys.queryAgnostic(name.method())) {
      return CompletableFuture.completedFuture(null);
    }
    try {
      return CompletableFuture.supplyAsync(() -> fetchCompactedNow(name), fetcher);
    } catch (RejectedExecutionException busy) {
      compactedMisses.incrementAndGet();
      return CompletableFuture.completedFuture(null);
    }
  }

  private CompactedCache fetchCompactedNow(CompactedName name) {
    try {
      byte[] key = CompressedKeys.key(fingerprint, name.prefix(), name.method(), name.params());
      byte[] payload = client.getCompressed(key).orElse(null);
      if (payload == null) {
        compactedMisses.incrementAndGet();
        return null;
      }
      CompressedEntry e;
      try {
        e = CompressedEntry.decode(payload);
        KvBlockPool pool = engine.pool();
        e.requireMatch(
            key,
            name.method(),
            name.params(),
            name.prefix().length,
            pool.layers(),
            pool.kvHeads(),
            pool.headDim());
      } catch (IllegalArgumentException garbage) {
        // Bytes that are not this cache: the worker compacts as without a service.
        garbageCompacted.incrementAndGet();
        log.warn("kvcache compacted entry {}: {}", KvKeys.shortHex(key), garbage.getMessage());
        return null;
      }
      restoredCompacted.incrementAndGet();
      return new CompactedCache(e.prefixTokens(), e.positions(), e.kv());
    } catch (RuntimeException e) {
      compactedMisses.incrementAndGet();
      log.warn("kvcache compacted fetch failed open", e);
      return null;
    }
  }

  /**
   * Queues {@code cache}, the compaction of {@code name}, to be stored by the publisher thread
   * (dropped and counted when the queue is full); a query-dependent method is never stored.
   */
  void storeCompacted(CompactedName name, CompactedCache cache) {
    if (CompressedKeys.queryAgnostic(name.method()) && cache != null) {
      offer(new StoreCompacted(name, cache));
    }
  }

  private void putCompacted(StoreCompacted s) {
    CompactedName n = s.name();
    KvBlockPool pool = engine.pool();
    byte[] key = CompressedKeys.key(fingerprint, n.prefix(), n.method(), n.params());
    byte[] payload =
        new CompressedEntry(
                key,
                n.method(),
                n.params(),
                s.cache().promptTokens(),
                pool.layers(),
                pool.kvHeads(),
                pool.headDim(),
                s.cache().positions(),
                s.cache().kv())
            .encode();
    if (client.putCompressed(fingerprint, n.prefix(), n.method(), n.params(), payload)) {
      storedCompacted.incrementAndGet();
    } else {
      failedPuts.incrementAndGet();
    }
  }

  /**
   * Fetches into the prefix cache what the service has of {@code prompt}'s leading blocks beyond
   * what the cache has; completes (never exceptionally) with the prompt tokens imported.
   */
  CompletableFuture<Integer> fetch(int[] prompt) {
    try {
      return CompletableFuture.supplyAsync(() -> fetchNow(prompt), fetcher);
    } catch (RejectedExecutionException busy) {
      misses.incrementAndGet();
      return CompletableFuture.completedFuture(0);
    }
  }

  private int fetchNow(int[] prompt) {
    try {
      PrefixCache cache = engine.prefixCache();
      int bs = engine.pool().blockSize();
      int full = (prompt.length - 1) / bs; // as InferenceEngine.open reuses
      if (full == 0) {
        return 0;
      }
      List<byte[]> keys = cache.keys(prompt, full);
      int local = cache.cachedPrefix(keys);
      if (local == full) {
        return 0;
      }
      int[] asked = Arrays.copyOf(prompt, full * bs);
      int remote = client.lookup(fingerprint, bs, asked, 0).map(p -> p.cachedBlocks()).orElse(0);
      if (remote <= local) {
        misses.incrementAndGet();
        return 0;
      }
      List<byte[]> wanted = keys.subList(local, remote);
      List<byte[]> payloads = client.get(wanted).orElse(null);
      if (payloads == null) {
        misses.incrementAndGet();
        return 0;
      }
      int n = 0;
      for (int i = 0; i < payloads.size(); i++) {
        boolean imported;
        try {
          imported = cache.importBlock(wanted.get(i), ByteBuffer.wrap(payloads.get(i)));
        } catch (IllegalArgumentException wrongSize) {
          // A payload of another layout or size: the service holds garbage under this key.
          garbage.incrementAndGet();
          log.warn("kvcache block {}: {}", KvKeys.shortHex(wanted.get(i)), wrongSize.getMessage());
          break;
        }
        if (!imported) {
          break; // the pool is full of held blocks
        }
        offer(new Held(wanted.get(i)));
        n++;
      }
      fetched.addAndGet(n);
      return n * bs;
    } catch (RuntimeException e) {
      // Fail open whatever happened: the engine prefills.
      misses.incrementAndGet();
      log.warn("kvcache fetch failed open", e);
      return 0;
    }
  }

  private void offer(Event e) {
    if (!queue.offer(e)) {
      dropped.incrementAndGet();
    }
  }

  private void publishLoop() {
    // Registered up front, so the first open's lookup already names a known model (and the
    // channel is connected before anything waits on it).
    boolean registered = register();
    boolean reset = true; // the first report replaces whatever the index had for this replica
    long lastReport = 0;
    List<Event> batch = new ArrayList<>();
    while (running) {
      try {
        Event first = queue.poll(HEARTBEAT.toMillis(), TimeUnit.MILLISECONDS);
        batch.clear();
        if (first != null) {
          batch.add(first);
          queue.drainTo(batch, PUT_BATCH - 1);
        }
        if (!registered) {
          registered = register();
        }
        List<byte[]> stored = new ArrayList<>();
        List<byte[]> evicted = new ArrayList<>();
        List<Publish> toPut = new ArrayList<>();
        for (Event e : batch) {
          if (e instanceof Publish p) {
            stored.add(p.key());
            recent.put(ByteBuffer.wrap(p.key()), p);
            toPut.add(p);
          } else if (e instanceof Held h) {
            stored.add(h.key());
            confirmed.put(ByteBuffer.wrap(h.key()), Boolean.TRUE); // it came from the service
          } else if (e instanceof Dropped d) {
            evicted.add(d.key());
          } else if (e instanceof StoreCompacted c && registered) {
            putCompacted(c);
          } else if (e instanceof StoreCompacted) {
            failedPuts.incrementAndGet();
          }
        }
        if (!toPut.isEmpty()) {
          if (registered) {
            put(toPut);
          } else {
            // Down, or a service that computes other fingerprints: nothing can be stored there
            // now; a later block puts these as its unconfirmed ancestors if the pool still
            // holds them.
            failedPuts.addAndGet(toPut.size());
          }
        }
        long now = System.nanoTime();
        if (!stored.isEmpty()
            || !evicted.isEmpty()
            || reset
            || now - lastReport > HEARTBEAT.toNanos()) {
          if (client.report(replica, fingerprint, stored, evicted, reset)) {
            reset = false;
          }
          lastReport = now;
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        log.warn("kvcache publish failed open", e);
      }
    }
  }

  private boolean register() {
    return client.register(spec).map(fp -> Arrays.equals(fp, fingerprint)).orElse(false);
  }

  /**
   * Puts {@code blocks}, each after those of its ancestors not confirmed stored yet (the service
   * stores a block only after its parent): a put that failed or was dropped is made good by the
   * next block of the chain, as long as the pool still holds the blocks.
   */
  private void put(List<Publish> blocks) {
    java.util.LinkedHashMap<ByteBuffer, KvCacheClient.Block> out = new java.util.LinkedHashMap<>();
    for (Publish p : blocks) {
      java.util.ArrayDeque<Publish> chain = new java.util.ArrayDeque<>();
      Publish cur = p;
      while (cur != null
          && chain.size() < MAX_CHAIN
          && !confirmed.containsKey(ByteBuffer.wrap(cur.key()))
          && !out.containsKey(ByteBuffer.wrap(cur.key()))) {
        chain.addFirst(cur);
        cur =
            Arrays.equals(cur.parent(), fingerprint)
                ? null
                : recent.get(ByteBuffer.wrap(cur.parent()));
      }
      for (Publish c : chain) {
        byte[] payload = export(c.key());
        if (payload == null) {
          break; // reclaimed: its descendants cannot be stored either
        }
        byte[] parent = Arrays.equals(c.parent(), fingerprint) ? null : c.parent();
        out.put(
            ByteBuffer.wrap(c.key()),
            new KvCacheClient.Block(c.key(), parent, c.tokens(), payload));
      }
    }
    if (out.isEmpty()) {
      return;
    }
    if (client.put(fingerprint, new ArrayList<>(out.values()))) {
      published.addAndGet(out.size());
      for (ByteBuffer k : out.keySet()) {
        confirmed.put(k, Boolean.TRUE);
      }
    } else {
      failedPuts.addAndGet(out.size());
    }
  }

  /** The block's bytes, or null when the cache no longer holds it. */
  private byte[] export(byte[] key) {
    byte[] out = new byte[Math.toIntExact(engine.pool().blockBytes())];
    return engine.prefixCache().exportBlock(key, ByteBuffer.wrap(out)) ? out : null;
  }

  /** What the fingerprint covers: architecture, weights, KV dtype and layout, block size. */
  static ModelSpec spec(InferenceEngine engine) {
    ModelConfig mc = engine.model().config();
    return ModelSpec.newBuilder()
        .setArchitecture(mc.architecture())
        .setWeightsDigest(com.google.protobuf.ByteString.copyFrom(weightsDigest(engine)))
        .setDtype(engine.pool().dtype().id()) // the pool's KV dtype, whatever the weights'
        .setNumLayers(mc.numLayers())
        .setNumKvHeads(mc.numKvHeads())
        .setHeadDim(mc.headDim())
        .setKvLayout(KvBlockPool.LAYOUT)
        .setBlockSize(engine.pool().blockSize())
        .build();
  }

  /** SHA-256 over the checkpoint's safetensors files, in name order (names included). */
  private static byte[] weightsDigest(InferenceEngine engine) {
    Path dir = engine.config().modelDir();
    MessageDigest d = io.draftmesh.kvkeys.BlockKeys.sha256();
    try (Stream<Path> files = Files.list(dir)) {
      List<Path> shards =
          files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().toList();
      byte[] buf = new byte[1 << 20];
      for (Path p : shards) {
        d.update(p.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        try (InputStream in = Files.newInputStream(p)) {
          for (int n; (n = in.read(buf)) > 0; ) {
            d.update(buf, 0, n);
          }
        }
      }
      return d.digest();
    } catch (IOException e) {
      throw new UncheckedIOException("weights digest of " + dir + ": " + e.getMessage(), e);
    }
  }

  private static <V> Map<ByteBuffer, V> bounded(int max) {
    return new java.util.LinkedHashMap<>() {
      @Override
      protected boolean removeEldestEntry(Map.Entry<ByteBuffer, V> eldest) {
        return size() > max;
      }
    };
  }

  private static String hostName() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return "localhost";
    }
  }

  /** Stops publishing (what is queued is dropped) and closes the channel. */
  @Override
  public void close() {
    running = false;
    publisher.interrupt();
    fetcher.shutdownNow();
    try {
      publisher.join(5000);
      fetcher.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    engine.prefixCache().listener(null);
    client.close();
    log.info("kvcache link closed: {}", stats());
  }
}
