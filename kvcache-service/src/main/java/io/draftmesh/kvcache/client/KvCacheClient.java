package io.draftmesh.kvcache.client;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.draftmesh.proto.v1.BlockHeader;
import io.draftmesh.proto.v1.CompressedHeader;
import io.draftmesh.proto.v1.CompressionParam;
import io.draftmesh.proto.v1.GetRequest;
import io.draftmesh.proto.v1.GetResponse;
import io.draftmesh.proto.v1.KvCacheGrpc;
import io.draftmesh.proto.v1.LookupRequest;
import io.draftmesh.proto.v1.LookupResponse;
import io.draftmesh.proto.v1.ModelSpec;
import io.draftmesh.proto.v1.PinRequest;
import io.draftmesh.proto.v1.PutRequest;
import io.draftmesh.proto.v1.PutResponse;
import io.draftmesh.proto.v1.ReplicaPrefix;
import io.draftmesh.proto.v1.ReportBlocksRequest;
import io.draftmesh.proto.v1.UnpinRequest;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ClientResponseObserver;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a worker (or any client) uses to reach kvcache-service. The service is an accelerator, never
 * a dependency: every call has a short deadline and <b>fails open</b> — an unreachable, slow,
 * erroring or garbage-returning service yields an empty result (or false) and a counted failure,
 * never an exception, so the caller prefills as if there were no cache. Every block a {@link #get}
 * returns has been checked against the key asked for, its declared size and its CRC32C.
 *
 * <p>Keys come from {@link KvKeys}, so a worker can compute them locally, look up only what it
 * lacks, and report what it holds. Thread-safe.
 */
public final class KvCacheClient implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KvCacheClient.class);

  /** The longest stored prefix of a token sequence. */
  public record Prefix(
      int fullBlocks, List<byte[]> keys, Map<String, Integer> replicas, long leaseId) {
    /** Leading full blocks stored in the service. */
    public int cachedBlocks() {
      return keys.size();
    }
  }

  /**
   * One block to put: its key, its parent's key (null for a chain's first), its token ids and its
   * payload (the KV bytes in the model's layout).
   */
  public record Block(byte[] key, byte[] parent, int[] tokens, byte[] payload) {}

  private final KvCacheGrpc.KvCacheBlockingStub blocking;
  private final KvCacheGrpc.KvCacheStub async;
  private final Duration deadline;
  private final int chunkBytes;
  private final ManagedChannel owned; // closed by close(), or null
  private final AtomicLong failures = new AtomicLong();
  // Get's chunks alias the transport's buffers; GetStream.onNext releases each response.
  private final AliasingMarshaller<GetResponse> getResponses =
      new AliasingMarshaller<>(GetResponse.getDefaultInstance());
  private final MethodDescriptor<GetRequest, GetResponse> aliasedGet =
      KvCacheGrpc.getGetMethod().toBuilder(
              KvCacheGrpc.getGetMethod().getRequestMarshaller(), getResponses)
          .build();

  /**
   * @param channel to the service (not closed by {@link #close})
   * @param deadline of each call; a Put or Get of many blocks gets it per call, so size it for the
   *     largest transfer
   * @param chunkBytes the chunk size Puts send (at most the service's --max-chunk-bytes)
   */
  public KvCacheClient(Channel channel, Duration deadline, int chunkBytes) {
    this(channel, deadline, chunkBytes, null);
  }

  private KvCacheClient(Channel channel, Duration deadline, int chunkBytes, ManagedChannel owned) {
    if (deadline.isNegative() || deadline.isZero()) {
      throw new IllegalArgumentException("deadline: " + deadline + " (expected: > 0)");
    }
    if (chunkBytes < 1) {
      throw new IllegalArgumentException("chunkBytes: " + chunkBytes + " (expected: >= 1)");
    }
    this.blocking = KvCacheGrpc.newBlockingStub(channel);
    // Up to four chunks may be queued before isReady() says wait (the default is 32 KiB, which
    // would allow one 1 MiB chunk in flight at a time).
    this.async =
        KvCacheGrpc.newStub(channel).withOnReadyThreshold((int) Math.min(1 << 30, 4L * chunkBytes));
    this.deadline = deadline;
    this.chunkBytes = chunkBytes;
    this.owned = owned;
  }

  /** A client on its own plaintext channel to {@code target} (e.g. {@code localhost:50070}). */
  public static KvCacheClient connect(
      String target, Duration deadline, int chunkBytes, OpenTelemetry otel) {
    // A flow-control window of several chunks, as the server has (see flowWindow). Callbacks
    // run on the transport's thread: they only copy a Get's chunk into its block or wake the
    // thread waiting on a call, never block, so a hop to an executor per message buys nothing.
    ManagedChannel ch =
        NettyChannelBuilder.forTarget(target, InsecureChannelCredentials.create())
            .flowControlWindow(flowWindow(chunkBytes))
            .directExecutor()
            .intercept(GrpcTelemetry.create(otel).createClientInterceptor())
            .maxInboundMessageSize(Math.max(4 << 20, chunkBytes + (64 << 10)))
            .build();
    return new KvCacheClient(ch, deadline, chunkBytes, ch);
  }

  /**
   * The HTTP/2 flow-control window for streams of {@code chunkBytes} chunks, on both ends: four
   * chunks (at least 1 MiB), so a stream is not stalled waiting for a window update after each.
   */
  public static int flowWindow(int chunkBytes) {
    return (int) Math.min(64 << 20, Math.max(1 << 20, 4L * chunkBytes + (64 << 10)));
  }

  /** Get responses whose aliased receive buffers were not given back yet (a leak check). */
  public int unreleasedGetResponses() {
    return getResponses.unreleased();
  }

  /** Calls that failed open (errors, deadlines, garbage) since this client was made. */
  public long failures() {
    return failures.get();
  }

  private KvCacheGrpc.KvCacheBlockingStub stub() {
    return blocking.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
  }

  private void failed(String call, Exception e) {
    failures.incrementAndGet();
    log.debug("kvcache {} failed open: {}", call, e.toString());
  }

  /** Registers {@code spec}; its fingerprint, or empty. */
  public Optional<byte[]> register(ModelSpec spec) {
    try {
      return Optional.of(stub().registerModel(spec).getModelFingerprint().toByteArray());
    } catch (StatusRuntimeException e) {
      failed("register", e);
      return Optional.empty();
    }
  }

  /**
   * The longest stored prefix of {@code tokens} (only full blocks count), and which replicas hold
   * how many of its leading blocks; leased for {@code leaseMs} when that is positive. Empty on any
   * failure, or when the keys the service returns are not the ones {@link KvKeys} computes.
   */
  public Optional<Prefix> lookup(byte[] fingerprint, int blockSize, int[] tokens, long leaseMs) {
    LookupRequest.Builder req =
        LookupRequest.newBuilder()
            .setModelFingerprint(ByteString.copyFrom(fingerprint))
            .setLeaseMs(leaseMs);
    for (int t : tokens) {
      req.addTokenIds(t);
    }
    LookupResponse r;
    try {
      r = stub().lookup(req.build());
    } catch (StatusRuntimeException e) {
      failed("lookup", e);
      return Optional.empty();
    }
    List<byte[]> expected = KvKeys.chain(fingerprint, blockSize, tokens);
    if (r.getKeysCount() > expected.size()) {
      failed("lookup", new IllegalStateException("more keys than full blocks"));
      return Optional.empty();
    }
    List<byte[]> keys = new ArrayList<>(r.getKeysCount());
    for (int i = 0; i < r.getKeysCount(); i++) {
      byte[] k = r.getKeys(i).toByteArray();
      if (!Arrays.equals(k, expected.get(i))) {
        failed("lookup", new IllegalStateException("keys[" + i + "] differs from KvKeys"));
        return Optional.empty();
      }
      keys.add(k);
    }
    Map<String, Integer> replicas = new LinkedHashMap<>();
    for (ReplicaPrefix p : r.getReplicasList()) {
      replicas.put(p.getReplica(), p.getBlocks());
    }
    return Optional.of(new Prefix(r.getFullBlocks(), keys, replicas, r.getLeaseId()));
  }

  /**
   * Puts {@code blocks} (chain order, first block first) in one stream; true when the service
   * stored or already had every one of them.
   */
  public boolean put(byte[] fingerprint, List<Block> blocks) {
    ByteString fp = ByteString.copyFrom(fingerprint);
    List<Item> items = new ArrayList<>(blocks.size());
    for (Block b : blocks) {
      BlockHeader.Builder h =
          BlockHeader.newBuilder()
              .setModelFingerprint(fp)
              .setKey(ByteString.copyFrom(b.key()))
              .setSize(b.payload().length)
              .setCrc32C(crc(b.payload()));
      if (b.parent() != null) {
        h.setParentKey(ByteString.copyFrom(b.parent()));
      }
      for (int t : b.tokens()) {
        h.addTokenIds(t);
      }
      items.add(new Item(PutRequest.newBuilder().setHeader(h).build(), b.payload()));
    }
    return put(items);
  }

  /**
   * Stores a compacted KV cache of the prefix {@code tokens} under its {@link CompressedKeys} key;
   * true when the service stored it or already had it. A method that is not query-agnostic is never
   * sent (false).
   *
   * @param payload the entry ({@link CompressedEntry#encode})
   */
  public boolean putCompressed(
      byte[] fingerprint,
      int[] tokens,
      String method,
      java.util.SortedMap<String, Long> params,
      byte[] payload) {
    byte[] key;
    try {
      key = CompressedKeys.key(fingerprint, tokens, method, params);
    } catch (IllegalArgumentException e) {
      failed("put compressed", e);
      return false;
    }
    CompressedHeader.Builder h =
        CompressedHeader.newBuilder()
            .setModelFingerprint(ByteString.copyFrom(fingerprint))
            .setMethod(method)
            .setKey(ByteString.copyFrom(key))
            .setSize(payload.length)
            .setCrc32C(crc(payload));
    for (int t : tokens) {
      h.addTokenIds(t);
    }
    params.forEach((n, v) -> h.addParams(CompressionParam.newBuilder().setName(n).setValue(v)));
    return put(List.of(new Item(PutRequest.newBuilder().setCompressed(h).build(), payload)));
  }

  /**
   * The stored payload of a compacted cache, checked against its key, size and CRC32C; empty when
   * not stored (not counted as a failure) or on any failure.
   */
  public Optional<byte[]> getCompressed(byte[] key) {
    return get(List.of(key), false).map(p -> p.get(0));
  }

  /** A header and the payload its chunks carry. */
  private record Item(PutRequest header, byte[] payload) {}

  /** Puts {@code items} in one stream; true when the service stored or already had every one. */
  private boolean put(List<Item> items) {
    Object lock = new Object();
    boolean[] done = {false};
    Throwable[] error = {null};
    PutResponse[] response = {null};
    @SuppressWarnings("unchecked")
    ClientCallStreamObserver<PutRequest>[] requests = new ClientCallStreamObserver[1];
    ClientResponseObserver<PutRequest, PutResponse> observer =
        new ClientResponseObserver<>() {
          @Override
          public void beforeStart(ClientCallStreamObserver<PutRequest> s) {
            requests[0] = s;
            s.setOnReadyHandler(
                () -> {
                  synchronized (lock) {
                    lock.notifyAll();
                  }
                });
          }

          @Override
          public void onNext(PutResponse r) {
            response[0] = r;
          }

          @Override
          public void onError(Throwable t) {
            synchronized (lock) {
              error[0] = t;
              done[0] = true;
              lock.notifyAll();
            }
          }

          @Override
          public void onCompleted() {
            synchronized (lock) {
              done[0] = true;
              lock.notifyAll();
            }
          }
        };
    Deadline dl = Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS);
    Context.CancellableContext ctx = Context.current().withCancellation();
    try {
      ctx.run(() -> async.withDeadline(dl).put(observer));
      ClientCallStreamObserver<PutRequest> out = requests[0];
      for (Item b : items) {
        if (!send(out, b.header(), lock, done, dl)) {
          break;
        }
        for (int off = 0; off < b.payload().length; off += chunkBytes) {
          int n = Math.min(chunkBytes, b.payload().length - off);
          PutRequest chunk =
              PutRequest.newBuilder()
                  .setChunk(UnsafeByteOperations.unsafeWrap(b.payload(), off, n))
                  .build();
          if (!send(out, chunk, lock, done, dl)) {
            break;
          }
        }
      }
      synchronized (lock) {
        if (!done[0]) {
          out.onCompleted();
        }
        while (!done[0] && !dl.isExpired()) {
          lock.wait(Math.max(1, dl.timeRemaining(TimeUnit.MILLISECONDS)));
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failed("put", e);
      return false;
    } catch (RuntimeException e) {
      failed("put", e);
      return false;
    } finally {
      ctx.cancel(null);
    }
    if (error[0] != null || response[0] == null) {
      failed(
          "put",
          error[0] == null ? new IllegalStateException("no response") : new Exception(error[0]));
      return false;
    }
    return response[0].getStoredBlocks() + response[0].getDuplicateBlocks() == items.size();
  }

  /** Sends when the stream is ready; false once the call is over or its deadline passed. */
  private static boolean send(
      ClientCallStreamObserver<PutRequest> out,
      PutRequest msg,
      Object lock,
      boolean[] done,
      Deadline dl)
      throws InterruptedException {
    synchronized (lock) {
      while (!done[0] && !out.isReady()) {
        if (dl.isExpired()) {
          return false;
        }
        lock.wait(Math.max(1, dl.timeRemaining(TimeUnit.MILLISECONDS)));
      }
      if (done[0]) {
        return false;
      }
    }
    out.onNext(msg);
    return true;
  }

  /**
   * The payloads of {@code keys}, in order, each checked against the key asked for, its size and
   * its CRC32C; empty on any failure or mismatch.
   */
  public Optional<List<byte[]>> get(List<byte[]> keys) {
    return get(keys, true);
  }

  /** As {@link #get(List)}; {@code missIsFailure} false: a NOT_FOUND is a miss, not counted. */
  private Optional<List<byte[]>> get(List<byte[]> keys, boolean missIsFailure) {
    GetRequest.Builder req = GetRequest.newBuilder();
    for (byte[] k : keys) {
      req.addKeys(ByteString.copyFrom(k));
    }
    Deadline dl = Deadline.after(deadline.toNanos(), TimeUnit.NANOSECONDS);
    GetStream stream = new GetStream(keys);
    ClientCall<GetRequest, GetResponse> call =
        async.getChannel().newCall(aliasedGet, async.getCallOptions().withDeadline(dl));
    try {
      ClientCalls.asyncServerStreamingCall(call, req.build(), stream);
      return Optional.of(stream.await(dl));
    } catch (StatusRuntimeException e) {
      if (missIsFailure || e.getStatus().getCode() != Status.Code.NOT_FOUND) {
        failed("get", e);
      }
      return Optional.empty();
    } catch (IllegalStateException e) {
      failed("get", e);
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      failed("get", e);
      return Optional.empty();
    } finally {
      call.cancel("get over", null); // stops the server's stream if we left early; else a no-op
    }
  }

  /**
   * One Get's responses, checked and assembled as they arrive on gRPC's callback thread: each chunk
   * aliases the transport's buffers, so it is copied into its block and released there.
   */
  private final class GetStream implements ClientResponseObserver<GetRequest, GetResponse> {
    private final List<byte[]> keys;
    private final List<byte[]> out;
    private ClientCallStreamObserver<GetRequest> call;
    private byte[] buf; // the block being received, or null before its header
    private int filled;
    private int crc;
    private RuntimeException error; // guarded by this, like done
    private boolean done;

    GetStream(List<byte[]> keys) {
      this.keys = keys;
      this.out = new ArrayList<>(keys.size());
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<GetRequest> s) {
      call = s;
    }

    @Override
    public void onNext(GetResponse r) {
      try {
        synchronized (this) {
          if (!done) {
            take(r);
          }
        }
      } catch (IllegalStateException e) {
        finish(e);
        call.cancel("garbage from kvcache", null);
      } finally {
        getResponses.release(r);
      }
    }

    private void take(GetResponse r) {
      if (r.hasHeader()) {
        if (buf != null || out.size() >= keys.size()) {
          throw new IllegalStateException("header out of place");
        }
        if (!Arrays.equals(r.getHeader().getKey().toByteArray(), keys.get(out.size()))) {
          throw new IllegalStateException("keys[" + out.size() + "]: another block came back");
        }
        long size = r.getHeader().getSize();
        if (size < 0 || size > Integer.MAX_VALUE - 8) {
          throw new IllegalStateException("size " + size);
        }
        buf = new byte[(int) size];
        filled = 0;
        crc = r.getHeader().getCrc32C();
      } else {
        if (buf == null || filled + r.getChunk().size() > buf.length) {
          throw new IllegalStateException("chunk out of place");
        }
        r.getChunk().copyTo(buf, filled);
        filled += r.getChunk().size();
      }
      if (buf != null && filled == buf.length) {
        if (crc(buf) != crc) {
          throw new IllegalStateException("keys[" + out.size() + "]: CRC32C mismatch");
        }
        out.add(buf);
        buf = null;
      }
    }

    @Override
    public void onError(Throwable t) {
      finish(
          t instanceof StatusRuntimeException sre
              ? sre
              : Status.fromThrowable(t).asRuntimeException());
    }

    @Override
    public void onCompleted() {
      synchronized (this) {
        if (out.size() != keys.size() || buf != null) {
          finish(new IllegalStateException("stream ended after " + out.size() + " blocks"));
          return;
        }
      }
      finish(null);
    }

    private synchronized void finish(RuntimeException e) {
      if (!done) {
        done = true;
        error = e;
        notifyAll();
      }
    }

    synchronized List<byte[]> await(Deadline dl) throws InterruptedException {
      while (!done) {
        if (dl.isExpired()) {
          throw Status.DEADLINE_EXCEEDED.withDescription("get").asRuntimeException();
        }
        wait(Math.max(1, dl.timeRemaining(TimeUnit.MILLISECONDS)));
      }
      if (error != null) {
        throw error;
      }
      return out;
    }
  }

  /** Leases {@code keys} for {@code leaseMs} (0: the service's default); the lease id, or empty. */
  public OptionalLong pin(List<byte[]> keys, long leaseMs) {
    PinRequest.Builder req = PinRequest.newBuilder().setLeaseMs(leaseMs);
    for (byte[] k : keys) {
      req.addKeys(ByteString.copyFrom(k));
    }
    try {
      return OptionalLong.of(stub().pin(req.build()).getLeaseId());
    } catch (StatusRuntimeException e) {
      failed("pin", e);
      return OptionalLong.empty();
    }
  }

  /** Ends a lease early; false if it had already ended or the call failed. */
  public boolean unpin(long leaseId) {
    try {
      return stub().unpin(UnpinRequest.newBuilder().setLeaseId(leaseId).build()).getReleased();
    } catch (StatusRuntimeException e) {
      failed("unpin", e);
      return false;
    }
  }

  /**
   * Reports the blocks {@code replica} now holds and no longer holds in its own KV pool (for
   * KV-aware routing); {@code reset} first forgets all it reported before. False on failure.
   */
  public boolean report(
      String replica,
      byte[] fingerprint,
      List<byte[]> stored,
      List<byte[]> evicted,
      boolean reset) {
    ReportBlocksRequest.Builder req =
        ReportBlocksRequest.newBuilder()
            .setReplica(replica)
            .setModelFingerprint(ByteString.copyFrom(fingerprint))
            .setReset(reset);
    stored.forEach(k -> req.addStored(ByteString.copyFrom(k)));
    evicted.forEach(k -> req.addEvicted(ByteString.copyFrom(k)));
    try {
      stub().reportBlocks(req.build());
      return true;
    } catch (StatusRuntimeException e) {
      failed("report", e);
      return false;
    }
  }

  private static int crc(byte[] b) {
    CRC32C c = new CRC32C();
    c.update(b, 0, b.length);
    return (int) c.getValue();
  }

  /** Closes the channel if this client made it. */
  @Override
  public void close() {
    if (owned != null) {
      owned.shutdownNow();
      try {
        owned.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
