package io.draftmesh.kvcache;

import static java.util.concurrent.TimeUnit.NANOSECONDS;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.draftmesh.kvcache.client.AliasingMarshaller;
import io.draftmesh.kvcache.client.CompressedEntry;
import io.draftmesh.kvcache.client.CompressedKeys;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.BlockHeader;
import io.draftmesh.proto.v1.CompressedHeader;
import io.draftmesh.proto.v1.GetBlockHeader;
import io.draftmesh.proto.v1.GetRequest;
import io.draftmesh.proto.v1.GetResponse;
import io.draftmesh.proto.v1.KvCacheGrpc;
import io.draftmesh.proto.v1.LookupRequest;
import io.draftmesh.proto.v1.LookupResponse;
import io.draftmesh.proto.v1.ModelSpec;
import io.draftmesh.proto.v1.PinRequest;
import io.draftmesh.proto.v1.PinResponse;
import io.draftmesh.proto.v1.PutRequest;
import io.draftmesh.proto.v1.PutResponse;
import io.draftmesh.proto.v1.RegisterModelResponse;
import io.draftmesh.proto.v1.ReplicaPrefix;
import io.draftmesh.proto.v1.ReportBlocksRequest;
import io.draftmesh.proto.v1.ReportBlocksResponse;
import io.draftmesh.proto.v1.StatsRequest;
import io.draftmesh.proto.v1.StatsResponse;
import io.draftmesh.proto.v1.TierStats;
import io.draftmesh.proto.v1.UnpinRequest;
import io.draftmesh.proto.v1.UnpinResponse;
import io.grpc.MethodDescriptor;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code KvCache} gRPC service over a {@link BlockStore}, a {@link ModelRegistry} and a {@link
 * ReplicaIndex}: validates every request at the edge (a status naming the field, the value and what
 * was expected), and streams Put and Get with flow control, holding the blocks of a stream until it
 * ends however it ends.
 */
final class KvCacheService extends KvCacheGrpc.KvCacheImplBase {
  private static final Logger log = LoggerFactory.getLogger(KvCacheService.class);

  /** Most token ids one Lookup may carry, and most keys one Get, Pin or report may carry. */
  static final int MAX_TOKENS = 1 << 20;

  static final int MAX_KEYS = 1 << 16;

  private final KvCacheConfig config;
  private final BlockStore store;
  private final ModelRegistry models;
  private final ReplicaIndex index;
  // Fails a Put stream that stops in the middle of a block (KvCacheConfig.putIdle).
  private final ScheduledExecutorService putIdleWatch;
  private final AtomicLong lookups = new AtomicLong();
  private final AtomicLong lookupHit = new AtomicLong();
  private final AtomicLong lookupMiss = new AtomicLong();
  private final AtomicLong putsStored = new AtomicLong();
  private final AtomicLong putsDuplicate = new AtomicLong();
  private final AtomicLong putsIdle = new AtomicLong();
  private final AtomicLong getsServed = new AtomicLong();
  private final AtomicLong putBytes = new AtomicLong(); // of the blocks in putsStored
  private final AtomicLong getBytes = new AtomicLong(); // of the blocks in getsServed
  // Put chunks alias the transport's buffers; PutCall.onNext releases each request.
  private final AliasingMarshaller<PutRequest> putRequests =
      new AliasingMarshaller<>(PutRequest.getDefaultInstance());

  KvCacheService(KvCacheConfig config, BlockStore store, ModelRegistry models, ReplicaIndex index) {
    this.config = config;
    this.store = store;
    this.models = models;
    this.index = index;
    ScheduledThreadPoolExecutor watch =
        new ScheduledThreadPoolExecutor(
            1,
            r -> {
              Thread t = new Thread(r, "kvcache-put-idle");
              t.setDaemon(true);
              return t;
            });
    watch.setRemoveOnCancelPolicy(true); // a watch per block: cancelled ones must not pile up
    this.putIdleWatch = watch;
  }

  /** Stops the Put idle watch (the server is closed: its streams were cancelled). */
  void close() {
    putIdleWatch.shutdownNow();
  }

  /**
   * What the server serves: the generated binding with Put's requests parsed by {@link
   * #putRequests} (the service descriptor is rebuilt around the replaced method and keeps its
   * schema, for reflection). Serve this, not the service itself.
   */
  ServerServiceDefinition definition() {
    ServerServiceDefinition stock = bindService();
    ServiceDescriptor sd = stock.getServiceDescriptor();
    List<ServerMethodDefinition<?, ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : stock.getMethods()) {
      methods.add(
          m.getMethodDescriptor()
                  .getFullMethodName()
                  .equals(KvCacheGrpc.getPutMethod().getFullMethodName())
              ? aliasedPut(m)
              : m);
    }
    ServiceDescriptor.Builder desc =
        ServiceDescriptor.newBuilder(sd.getName()).setSchemaDescriptor(sd.getSchemaDescriptor());
    methods.forEach(m -> desc.addMethod(m.getMethodDescriptor()));
    ServerServiceDefinition.Builder out = ServerServiceDefinition.builder(desc.build());
    methods.forEach(out::addMethod);
    return out.build();
  }

  @SuppressWarnings("unchecked")
  private ServerMethodDefinition<PutRequest, PutResponse> aliasedPut(
      ServerMethodDefinition<?, ?> m) {
    ServerMethodDefinition<PutRequest, PutResponse> put =
        (ServerMethodDefinition<PutRequest, PutResponse>) m;
    MethodDescriptor<PutRequest, PutResponse> method =
        put.getMethodDescriptor().toBuilder(
                putRequests, put.getMethodDescriptor().getResponseMarshaller())
            .build();
    return ServerMethodDefinition.create(method, put.getServerCallHandler());
  }

  /** Put requests parsed and not yet released (zero once every stream has handled its chunks). */
  int unreleasedPutRequests() {
    return putRequests.unreleased();
  }

  // ---- unary calls ----

  @Override
  public void registerModel(ModelSpec spec, StreamObserver<RegisterModelResponse> out) {
    unary(
        out,
        () -> {
          try {
            byte[] fp = models.register(spec);
            return RegisterModelResponse.newBuilder()
                .setModelFingerprint(ByteString.copyFrom(fp))
                .build();
          } catch (IllegalArgumentException e) {
            throw invalid(e.getMessage());
          }
        });
  }

  @Override
  public void lookup(LookupRequest req, StreamObserver<LookupResponse> out) {
    unary(
        out,
        () -> {
          ModelSpec spec = model(req.getModelFingerprint(), "model_fingerprint");
          if (req.getTokenIdsCount() > MAX_TOKENS) {
            throw invalid(
                "token_ids: "
                    + req.getTokenIdsCount()
                    + " ids (expected: at most "
                    + MAX_TOKENS
                    + ")");
          }
          long leaseMs = req.getLeaseMs();
          if (leaseMs < 0 || leaseMs > config.maxLease().toMillis()) {
            throw invalid(
                "lease_ms: "
                    + leaseMs
                    + " (expected: 0 for none or 1.."
                    + config.maxLease().toMillis()
                    + ")");
          }
          int[] tokens = req.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
          List<byte[]> chain;
          try {
            chain =
                KvKeys.chain(req.getModelFingerprint().toByteArray(), spec.getBlockSize(), tokens);
          } catch (IllegalArgumentException e) {
            throw invalid(e.getMessage());
          }
          List<BlockKey> keys = new ArrayList<>(chain.size());
          for (byte[] k : chain) {
            keys.add(BlockKey.of(k));
          }
          BlockStore.LookupResult found = store.lookup(keys, leaseMs);
          lookups.incrementAndGet();
          lookupHit.addAndGet(found.keys().size());
          lookupMiss.addAndGet(keys.size() - found.keys().size());
          LookupResponse.Builder b =
              LookupResponse.newBuilder()
                  .setFullBlocks(keys.size())
                  .setCachedBlocks(found.keys().size())
                  .setLeaseId(found.leaseId())
                  .setLeaseExpiresUnixMs(found.leaseExpiresMs());
          for (BlockKey k : found.keys()) {
            b.addKeys(UnsafeByteOperations.unsafeWrap(k.bytes()));
          }
          for (ReplicaIndex.Prefix p : index.prefixes(keys)) {
            b.addReplicas(ReplicaPrefix.newBuilder().setReplica(p.replica()).setBlocks(p.blocks()));
          }
          return b.build();
        });
  }

  @Override
  public void pin(PinRequest req, StreamObserver<PinResponse> out) {
    unary(
        out,
        () -> {
          if (req.getKeysCount() == 0) {
            throw invalid("keys: empty (expected: at least one stored block)");
          }
          List<BlockKey> keys = keys(req.getKeysList(), "keys");
          long leaseMs = req.getLeaseMs();
          if (leaseMs < 0 || leaseMs > config.maxLease().toMillis()) {
            throw invalid(
                "lease_ms: "
                    + leaseMs
                    + " (expected: 0 for the default or 1.."
                    + config.maxLease().toMillis()
                    + ")");
          }
          long[] lease = store.pin(keys, leaseMs == 0 ? config.defaultLease().toMillis() : leaseMs);
          return PinResponse.newBuilder().setLeaseId(lease[0]).setExpiresUnixMs(lease[1]).build();
        });
  }

  @Override
  public void unpin(UnpinRequest req, StreamObserver<UnpinResponse> out) {
    unary(out, () -> UnpinResponse.newBuilder().setReleased(store.unpin(req.getLeaseId())).build());
  }

  @Override
  public void stats(StatsRequest req, StreamObserver<StatsResponse> out) {
    unary(out, this::stats);
  }

  /** What {@code Stats} answers now; the metrics read it too. */
  StatsResponse stats() {
    BlockStore.Snapshot s = store.snapshot();
    return StatsResponse.newBuilder()
        .setMemory(
            TierStats.newBuilder()
                .setBlocks(s.memBlocks())
                .setBytes(s.memBytes())
                .setBudgetBytes(s.memBudget())
                .setEvictions(s.memEvictions())
                .setCorruptDropped(s.memCorrupt())
                .setHits(s.memHits()))
        .setDisk(
            TierStats.newBuilder()
                .setBlocks(s.diskBlocks())
                .setBytes(s.diskBytes())
                .setBudgetBytes(s.diskBudget())
                .setEvictions(s.diskEvictions())
                .setCorruptDropped(s.diskCorrupt())
                .setHits(s.diskHits()))
        .setBlocks(s.blocks())
        .setModels(models.size())
        .setLookups(lookups.get())
        .setLookupBlocksHit(lookupHit.get())
        .setLookupBlocksMissed(lookupMiss.get())
        .setPutsStored(putsStored.get())
        .setPutsDuplicate(putsDuplicate.get())
        .setGetsServed(getsServed.get())
        .setLeasesActive(s.leases())
        .setPinnedBlocks(s.pinnedBlocks())
        .setIndexReplicas(index.replicas())
        .setIndexEntries(index.entries())
        .setDroppedBlocks(s.droppedBlocks())
        .setPutBytesStored(putBytes.get())
        .setGetBytesServed(getBytes.get())
        .setPutsIdleFailed(putsIdle.get())
        .build();
  }

  @Override
  public void reportBlocks(ReportBlocksRequest req, StreamObserver<ReportBlocksResponse> out) {
    unary(
        out,
        () -> {
          String replica = req.getReplica();
          if (replica.isBlank() || replica.length() > 256) {
            throw invalid(
                "replica: '"
                    + (replica.length() > 64 ? replica.substring(0, 64) + "..." : replica)
                    + "' (expected: 1..256 characters naming the worker)");
          }
          model(req.getModelFingerprint(), "model_fingerprint");
          List<BlockKey> stored = keys(req.getStoredList(), "stored");
          List<BlockKey> evicted = keys(req.getEvictedList(), "evicted");
          try {
            long n = index.report(replica, stored, evicted, req.getReset());
            return ReportBlocksResponse.newBuilder().setReplicaEntries(n).build();
          } catch (ReplicaIndex.FullException e) {
            throw Status.RESOURCE_EXHAUSTED.withDescription(e.getMessage()).asRuntimeException();
          }
        });
  }

  // ---- Put ----

  @Override
  public StreamObserver<PutRequest> put(StreamObserver<PutResponse> out) {
    ServerCallStreamObserver<PutResponse> call = (ServerCallStreamObserver<PutResponse>) out;
    PutCall pc = new PutCall(call);
    call.setOnCancelHandler(pc::end);
    return pc;
  }

  /** One Put stream: the block being received, and the blocks it holds until it ends. */
  private final class PutCall implements StreamObserver<PutRequest> {
    private final ServerCallStreamObserver<PutResponse> out;
    private final List<BlockStore.Entry> held = new ArrayList<>();
    private BlockMeta meta; // the block being received, or null
    private Runnable checkEntry; // for a compressed entry: checks its payload once received
    private boolean discard; // it is already stored: count its bytes, keep none
    private Integer expectedCrc; // the header's crc32c, if set
    // Where the block's chunks go: its memory pages reserved at its header (one copy, from the
    // transport's buffer into the pages), else buf (staged, then copied by the store's put).
    private BlockStore.Reservation pages;
    private byte[] buf; // the staged block; reused for the next staged block of the same size
    private final CRC32C received = new CRC32C(); // over the block's chunks as they arrive
    private int filled;
    private int stored;
    private int duplicates;
    private boolean ended;
    private long lastMessageNanos = System.nanoTime();
    private ScheduledFuture<?> idleWatch; // while a block is open

    PutCall(ServerCallStreamObserver<PutResponse> out) {
      this.out = out;
    }

    @Override
    public synchronized void onNext(PutRequest req) {
      lastMessageNanos = System.nanoTime();
      try {
        if (!ended) {
          handle(req);
        }
      } finally {
        putRequests.release(req); // its chunk aliases the transport's buffers
      }
    }

    private void handle(PutRequest req) {
      try {
        switch (req.getItemCase()) {
          case HEADER -> header(req.getHeader());
          case COMPRESSED -> compressed(req.getCompressed());
          case CHUNK -> chunk(req.getChunk());
          default -> throw invalid("item: not set (expected: a header, a compressed or a chunk)");
        }
      } catch (StatusRuntimeException e) {
        fail(e);
      } catch (BlockStore.StoreException e) {
        fail(status(e));
      } catch (RuntimeException e) {
        log.error("put failed", e);
        fail(Status.INTERNAL.withDescription("internal error").asRuntimeException());
      }
    }

    private void header(BlockHeader h) {
      requireNoBlockOpen("header");
      BlockKey fp = BlockKey.of(bytes32(h.getModelFingerprint(), "header.model_fingerprint"));
      ModelSpec spec = model(h.getModelFingerprint(), "header.model_fingerprint");
      byte[] key = bytes32(h.getKey(), "header.key");
      byte[] parent = null;
      if (!h.getParentKey().isEmpty()) {
        parent = bytes32(h.getParentKey(), "header.parent_key");
      }
      if (h.getTokenIdsCount() != spec.getBlockSize()) {
        throw invalid(
            "header.token_ids: "
                + h.getTokenIdsCount()
                + " ids (expected: the model's block_size "
                + spec.getBlockSize()
                + "; partial blocks are never stored)");
      }
      int[] tokens = h.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
      byte[] expected;
      try {
        expected =
            KvKeys.blockKey(
                parent == null ? h.getModelFingerprint().toByteArray() : parent,
                tokens,
                0,
                tokens.length);
      } catch (IllegalArgumentException e) {
        throw invalid("header." + e.getMessage());
      }
      if (!Arrays.equals(expected, key)) {
        throw invalid(
            "header.key: "
                + KvKeys.shortHex(key)
                + "... (expected: "
                + KvKeys.shortHex(expected)
                + "..., SHA-256 of "
                + (parent == null ? "model_fingerprint" : "parent_key")
                + " and token_ids)");
      }
      int size = size("header.size", h.getSize());
      begin(
          new BlockMeta(
              BlockKey.of(key), parent == null ? null : BlockKey.of(parent), fp, tokens, size, 0),
          h.hasCrc32C() ? h.getCrc32C() : null,
          false);
    }

    /**
     * A compacted cache: a chain root of its own, under a key derived from the model, the prefix,
     * the method and its parameters (the entry's bytes name them again; the store sees bytes).
     */
    private void compressed(CompressedHeader h) {
      requireNoBlockOpen("compressed");
      BlockKey fp = BlockKey.of(bytes32(h.getModelFingerprint(), "compressed.model_fingerprint"));
      ModelSpec spec = model(h.getModelFingerprint(), "compressed.model_fingerprint");
      byte[] key = bytes32(h.getKey(), "compressed.key");
      if (h.getTokenIdsCount() > MAX_TOKENS) {
        throw invalid(
            "compressed.token_ids: "
                + h.getTokenIdsCount()
                + " ids (expected: at most "
                + MAX_TOKENS
                + ")");
      }
      int[] tokens = h.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
      java.util.SortedMap<String, Long> params = new java.util.TreeMap<>();
      String previous = null;
      for (int i = 0; i < h.getParamsCount(); i++) {
        String name = h.getParams(i).getName();
        if (previous != null && previous.compareTo(name) >= 0) {
          throw invalid(
              "compressed.params["
                  + i
                  + "].name: \""
                  + name
                  + "\" after \""
                  + previous
                  + "\" (expected: names ascending, each once)");
        }
        params.put(name, h.getParams(i).getValue());
        previous = name;
      }
      byte[] expected;
      try {
        expected =
            CompressedKeys.key(
                h.getModelFingerprint().toByteArray(), tokens, h.getMethod(), params);
      } catch (IllegalArgumentException e) {
        throw invalid("compressed." + e.getMessage());
      }
      if (!Arrays.equals(expected, key)) {
        throw invalid(
            "compressed.key: "
                + KvKeys.shortHex(key)
                + "... (expected: "
                + KvKeys.shortHex(expected)
                + "..., SHA-256 of the model_fingerprint, token_ids, method and params)");
      }
      int size = size("compressed.size", h.getSize());
      begin(
          new BlockMeta(BlockKey.of(key), null, fp, new int[0], size, 0),
          h.hasCrc32C() ? h.getCrc32C() : null,
          true);
      // Nothing that is not this entry is stored under its key (puts of a key are idempotent, so
      // a bad entry would shadow every good one): its own CRC32C, key, method, parameters, prefix
      // and the model's shape are checked once its bytes are in.
      checkEntry =
          () -> {
            try {
              CompressedEntry.decode(buf)
                  .requireMatch(
                      key,
                      h.getMethod(),
                      params,
                      tokens.length,
                      spec.getNumLayers(),
                      spec.getNumKvHeads(),
                      spec.getHeadDim());
            } catch (IllegalArgumentException e) {
              throw invalid(
                  "compressed: the payload is not the "
                      + CompressedEntry.LAYOUT
                      + " entry its header names ("
                      + e.getMessage()
                      + ")");
            }
          };
    }

    private void requireNoBlockOpen(String field) {
      if (meta != null) {
        throw invalid(
            field
                + ": block "
                + meta.key()
                + "... got "
                + filled
                + " of its "
                + meta.size()
                + " bytes (expected: all its chunks before the next header)");
      }
    }

    private int size(String field, long size) {
      if (size < 1 || size > config.maxBlockBytes()) {
        throw invalid(
            field
                + ": "
                + Long.toUnsignedString(size)
                + " (expected: 1..--max-block-bytes "
                + config.maxBlockBytes()
                + ")");
      }
      return (int) size;
    }

    /**
     * Opens a block: {@code staged} (a compressed entry, small and rare, whose bytes are checked as
     * a whole before it is stored) always goes to a buffer; a KV block goes straight into pages
     * when the store reserves them.
     */
    private void begin(BlockMeta block, Integer expected, boolean staged) {
      meta = block;
      checkEntry = null;
      int size = block.size();
      expectedCrc = expected;
      filled = 0;
      received.reset();
      watchIdle();
      discard = store.holdIfStored(meta.key(), held);
      if (discard) {
        return;
      }
      pages = staged ? null : store.reserve(block);
      if (pages == null && (buf == null || buf.length != size)) {
        buf = new byte[size]; // blocks of one model share a size: one buffer serves a whole chain
      }
    }

    private void chunk(ByteString chunk) {
      if (meta == null) {
        throw invalid("chunk: no header before it (expected: a header, then its chunks)");
      }
      if (chunk.size() > config.maxChunkBytes()) {
        throw invalid(
            "chunk: "
                + chunk.size()
                + " bytes (expected: at most --max-chunk-bytes "
                + config.maxChunkBytes()
                + ")");
      }
      if ((long) filled + chunk.size() > meta.size()) {
        throw invalid(
            "chunk: block "
                + meta.key()
                + "... would have "
                + ((long) filled + chunk.size())
                + " bytes (expected: its header's size "
                + meta.size()
                + ")");
      }
      if (!discard) {
        if (pages != null) {
          store.write(pages, filled, chunk);
        } else {
          chunk.copyTo(buf, filled);
        }
        for (ByteBuffer part : chunk.asReadOnlyByteBufferList()) {
          received.update(part);
        }
      }
      filled += chunk.size();
      if (filled < meta.size()) {
        return;
      }
      if (discard) {
        duplicates++;
        putsDuplicate.incrementAndGet();
      } else {
        int crc = (int) received.getValue();
        if (expectedCrc != null && expectedCrc != crc) {
          throw invalid(
              (checkEntry == null ? "header" : "compressed")
                  + ".crc32c: "
                  + Integer.toUnsignedString(expectedCrc)
                  + " (expected: the CRC32C of the "
                  + meta.size()
                  + " bytes received, "
                  + Integer.toUnsignedString(crc)
                  + ")");
        }
        if (checkEntry != null) {
          checkEntry.run();
        }
        BlockMeta m =
            new BlockMeta(
                meta.key(), meta.parent(), meta.fingerprint(), meta.tokens(), meta.size(), crc);
        BlockStore.Reservation r = pages;
        pages = null;
        // put copies buf, so it can take the next block; commit uses the reservation up
        if (r != null ? store.commit(m, r, true, held) : store.put(m, buf, true, held)) {
          stored++;
          putsStored.incrementAndGet();
          putBytes.addAndGet(m.size());
        } else {
          duplicates++;
          putsDuplicate.incrementAndGet();
        }
      }
      meta = null;
    }

    /** Starts the idle watch unless one is pending (it re-arms itself while the block is open). */
    private void watchIdle() {
      if (idleWatch == null || idleWatch.isDone()) {
        idleWatch = putIdleWatch.schedule(this::checkIdle, config.putIdle().toNanos(), NANOSECONDS);
      }
    }

    /**
     * Fails the stream if a block is open and nothing came for {@link KvCacheConfig#putIdle}: its
     * reserved pages go back to the store. Between blocks a stream may idle (a worker keeps one
     * open to publish as it goes).
     */
    private synchronized void checkIdle() {
      if (ended || meta == null) {
        return;
      }
      long limit = config.putIdle().toNanos();
      long idle = System.nanoTime() - lastMessageNanos;
      if (idle < limit) {
        idleWatch = putIdleWatch.schedule(this::checkIdle, limit - idle, NANOSECONDS);
        return;
      }
      putsIdle.incrementAndGet();
      fail(
          Status.DEADLINE_EXCEEDED
              .withDescription(
                  "put: nothing received for "
                      + TimeUnit.NANOSECONDS.toMillis(idle)
                      + " ms in block "
                      + meta.key()
                      + "... at "
                      + filled
                      + " of "
                      + meta.size()
                      + " bytes (expected: its next chunk within --put-idle-ms "
                      + config.putIdle().toMillis()
                      + ")")
              .asRuntimeException());
    }

    @Override
    public synchronized void onError(Throwable t) {
      end();
    }

    @Override
    public synchronized void onCompleted() {
      if (ended) {
        return;
      }
      if (meta != null) {
        fail(
            invalid(
                "chunk: block "
                    + meta.key()
                    + "... ended at "
                    + filled
                    + " of its header's "
                    + meta.size()
                    + " bytes (expected: chunks adding up to the size)"));
        return;
      }
      end();
      out.onNext(
          PutResponse.newBuilder().setStoredBlocks(stored).setDuplicateBlocks(duplicates).build());
      out.onCompleted();
    }

    private void fail(StatusRuntimeException e) {
      end();
      out.onError(e);
    }

    /** Releases what the stream holds; idempotent. */
    synchronized void end() {
      if (!ended) {
        ended = true;
        if (idleWatch != null) {
          idleWatch.cancel(false);
        }
        buf = null;
        if (pages != null) {
          store.abandon(pages); // a block cut short leaves no trace and no pages behind
          pages = null;
        }
        store.release(held);
      }
    }
  }

  // ---- Get ----

  @Override
  public void get(GetRequest req, StreamObserver<GetResponse> out) {
    ServerCallStreamObserver<GetResponse> call = (ServerCallStreamObserver<GetResponse>) out;
    List<BlockStore.Entry> held;
    int chunkBytes;
    try {
      if (req.getKeysCount() > MAX_KEYS) {
        throw invalid("keys: " + req.getKeysCount() + " (expected: at most " + MAX_KEYS + ")");
      }
      List<BlockKey> keys = keys(req.getKeysList(), "keys");
      chunkBytes = req.getChunkBytes();
      if (chunkBytes < 0 || chunkBytes > config.maxChunkBytes()) {
        throw invalid(
            "chunk_bytes: "
                + chunkBytes
                + " (expected: 0 for the server's or 1..--max-chunk-bytes "
                + config.maxChunkBytes()
                + ")");
      }
      if (chunkBytes == 0) {
        chunkBytes = config.maxChunkBytes();
      }
      held = store.acquire(keys);
    } catch (StatusRuntimeException e) {
      out.onError(e);
      return;
    } catch (BlockStore.StoreException e) {
      out.onError(status(e));
      return;
    }
    // Keep a few chunks queued, not the default 32 KiB, so the transport never waits on us.
    call.setOnReadyThreshold(4 * chunkBytes);
    GetCall gc = new GetCall(call, held, chunkBytes);
    call.setOnCancelHandler(gc::end);
    call.setOnReadyHandler(gc::drain);
    gc.drain();
  }

  /** One Get stream, sent as fast as the client reads it. */
  private final class GetCall {
    private final ServerCallStreamObserver<GetResponse> out;
    private final List<BlockStore.Entry> held;
    private final List<BlockStore.Entry> blocks;
    private final int chunkBytes;
    private int next; // index of the block being sent
    private ByteString
        payload; // its checked bytes (memory pages in place), or null before its header
    private int sent;
    private boolean ended;

    GetCall(
        ServerCallStreamObserver<GetResponse> out, List<BlockStore.Entry> held, int chunkBytes) {
      this.out = out;
      this.held = held;
      this.blocks = List.copyOf(held);
      this.chunkBytes = chunkBytes;
    }

    synchronized void drain() {
      try {
        while (!ended && out.isReady()) {
          if (next == blocks.size()) {
            end();
            out.onCompleted();
            return;
          }
          BlockStore.Entry e = blocks.get(next);
          if (payload == null) {
            try {
              payload = store.read(e);
            } catch (BlockStore.StoreException x) {
              end();
              out.onError(
                  status(
                      new BlockStore.StoreException(
                          x.kind, next, "keys[" + next + "]: " + x.getMessage())));
              return;
            }
            sent = 0;
            BlockMeta m = e.meta();
            GetBlockHeader.Builder h =
                GetBlockHeader.newBuilder()
                    .setKey(UnsafeByteOperations.unsafeWrap(m.key().bytes()))
                    .setSize(m.size())
                    .setCrc32C(m.crc32c());
            if (m.parent() != null) {
              h.setParentKey(UnsafeByteOperations.unsafeWrap(m.parent().bytes()));
            }
            for (int t : m.tokens()) {
              h.addTokenIds(t);
            }
            out.onNext(GetResponse.newBuilder().setHeader(h).build());
            continue;
          }
          int n = Math.min(chunkBytes, payload.size() - sent);
          // onNext serializes the chunk into the transport's buffers before it returns, while the
          // block is held, so the chunk can be a view of the payload (of its memory pages).
          out.onNext(GetResponse.newBuilder().setChunk(payload.substring(sent, sent + n)).build());
          sent += n;
          if (sent == payload.size()) {
            getsServed.incrementAndGet();
            getBytes.addAndGet(payload.size());
            payload = null;
            next++;
          }
        }
      } catch (RuntimeException x) {
        if (!ended) {
          log.error("get failed", x);
          end();
          out.onError(Status.INTERNAL.withDescription("internal error").asRuntimeException());
        }
      }
    }

    synchronized void end() {
      if (!ended) {
        ended = true;
        payload = null;
        store.release(held);
      }
    }
  }

  // ---- validation and status mapping ----

  private interface Body<T> {
    T call();
  }

  private static <T> void unary(StreamObserver<T> out, Body<T> body) {
    T result;
    try {
      result = body.call();
    } catch (StatusRuntimeException e) {
      out.onError(e);
      return;
    } catch (BlockStore.StoreException e) {
      out.onError(status(e));
      return;
    } catch (RuntimeException e) {
      log.error("kvcache call failed", e);
      out.onError(Status.INTERNAL.withDescription("internal error").asRuntimeException());
      return;
    }
    out.onNext(result);
    out.onCompleted();
  }

  /** The spec registered under {@code fp}: INVALID_ARGUMENT if malformed, NOT_FOUND if unknown. */
  private ModelSpec model(ByteString fp, String field) {
    BlockKey k = BlockKey.of(bytes32(fp, field));
    ModelSpec spec = models.get(k);
    if (spec == null) {
      throw Status.NOT_FOUND
          .withDescription(
              field
                  + ": "
                  + k
                  + "... is not registered (expected: a fingerprint from RegisterModel)")
          .asRuntimeException();
    }
    return spec;
  }

  private static byte[] bytes32(ByteString b, String field) {
    if (b.size() != KvKeys.KEY_BYTES) {
      throw invalid(field + ": " + b.size() + " bytes (expected: " + KvKeys.KEY_BYTES + ")");
    }
    return b.toByteArray();
  }

  private static List<BlockKey> keys(List<ByteString> in, String field) {
    if (in.size() > MAX_KEYS) {
      throw invalid(field + ": " + in.size() + " keys (expected: at most " + MAX_KEYS + ")");
    }
    List<BlockKey> out = new ArrayList<>(in.size());
    for (int i = 0; i < in.size(); i++) {
      out.add(BlockKey.of(bytes32(in.get(i), field + "[" + i + "]")));
    }
    return out;
  }

  private static StatusRuntimeException invalid(String message) {
    return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
  }

  /** The one place store failures become statuses. */
  static StatusRuntimeException status(BlockStore.StoreException e) {
    Status s =
        switch (e.kind) {
          case NOT_FOUND -> Status.NOT_FOUND;
          case MISSING_PARENT -> Status.FAILED_PRECONDITION;
          case NO_ROOM -> Status.RESOURCE_EXHAUSTED;
          case CORRUPT -> Status.DATA_LOSS;
        };
    return s.withDescription(e.getMessage()).asRuntimeException();
  }
}
