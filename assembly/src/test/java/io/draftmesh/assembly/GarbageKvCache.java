package io.draftmesh.assembly;

import com.google.protobuf.ByteString;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.GetBlockHeader;
import io.draftmesh.proto.v1.GetRequest;
import io.draftmesh.proto.v1.GetResponse;
import io.draftmesh.proto.v1.KvCacheGrpc;
import io.draftmesh.proto.v1.LookupRequest;
import io.draftmesh.proto.v1.LookupResponse;
import io.draftmesh.proto.v1.ModelSpec;
import io.draftmesh.proto.v1.PutRequest;
import io.draftmesh.proto.v1.PutResponse;
import io.draftmesh.proto.v1.RegisterModelResponse;
import io.draftmesh.proto.v1.ReplicaPrefix;
import io.draftmesh.proto.v1.ReportBlocksRequest;
import io.draftmesh.proto.v1.ReportBlocksResponse;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.zip.CRC32C;

/**
 * A KvCache that claims to hold every block asked for and returns garbage for it, one {@link Kind}
 * at a time, on a real port: the faults a broken or confused service (or a bit flip on the wire)
 * could produce that the real service never does. Puts fail; reports are accepted.
 */
final class GarbageKvCache extends KvCacheGrpc.KvCacheImplBase implements AutoCloseable {
  enum Kind {
    /** Bytes whose CRC32C is not the one in the header. */
    WRONG_CRC,
    /** Another block than the one asked for. */
    WRONG_KEY,
    /** A consistent header and CRC, but a payload of the wrong size for the model's layout. */
    WRONG_SIZE,
    /** The stream ends after the first block's header. */
    TRUNCATED
  }

  private final Server server;
  private volatile Kind kind = Kind.WRONG_CRC;
  private volatile ModelSpec spec;
  private final AtomicInteger gets = new AtomicInteger();

  private GarbageKvCache() throws IOException {
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(this)
            .build()
            .start();
  }

  static GarbageKvCache start() throws IOException {
    return new GarbageKvCache();
  }

  int port() {
    return server.getPort();
  }

  void kind(Kind k) {
    kind = k;
  }

  int gets() {
    return gets.get();
  }

  @Override
  public void registerModel(ModelSpec request, StreamObserver<RegisterModelResponse> out) {
    spec = request;
    out.onNext(
        RegisterModelResponse.newBuilder()
            .setModelFingerprint(ByteString.copyFrom(KvKeys.fingerprint(request)))
            .build());
    out.onCompleted();
  }

  @Override
  public void lookup(LookupRequest request, StreamObserver<LookupResponse> out) {
    int[] tokens = request.getTokenIdsList().stream().mapToInt(Integer::intValue).toArray();
    byte[] fp = request.getModelFingerprint().toByteArray();
    List<byte[]> keys = KvKeys.chain(fp, 16, tokens);
    LookupResponse.Builder b =
        LookupResponse.newBuilder().setFullBlocks(keys.size()).setCachedBlocks(keys.size());
    keys.forEach(k -> b.addKeys(ByteString.copyFrom(k)));
    b.addReplicas(ReplicaPrefix.newBuilder().setReplica("nowhere:1").setBlocks(keys.size()));
    out.onNext(b.build());
    out.onCompleted();
  }

  @Override
  public void get(GetRequest request, StreamObserver<GetResponse> out) {
    gets.incrementAndGet();
    ModelSpec s = spec;
    int size =
        s == null
            ? 16384
            : 2 * s.getNumLayers() * s.getBlockSize() * s.getNumKvHeads() * s.getHeadDim() * 4;
    Kind k = kind;
    for (int i = 0; i < request.getKeysCount(); i++) {
      byte[] payload = new byte[k == Kind.WRONG_SIZE ? size + 4 : size];
      IntStream.range(0, payload.length).forEach(j -> payload[j] = (byte) (j * 31 + 7));
      CRC32C crc = new CRC32C();
      crc.update(payload);
      ByteString key =
          k == Kind.WRONG_KEY && i == 0 ? ByteString.copyFrom(new byte[32]) : request.getKeys(i);
      out.onNext(
          GetResponse.newBuilder()
              .setHeader(
                  GetBlockHeader.newBuilder()
                      .setKey(key)
                      .setSize(payload.length)
                      .setCrc32C((int) crc.getValue() ^ (k == Kind.WRONG_CRC ? 1 : 0)))
              .build());
      if (k == Kind.TRUNCATED) {
        break;
      }
      out.onNext(GetResponse.newBuilder().setChunk(ByteString.copyFrom(payload)).build());
    }
    out.onCompleted();
  }

  @Override
  public StreamObserver<PutRequest> put(StreamObserver<PutResponse> out) {
    out.onError(Status.UNAVAILABLE.withDescription("garbage store").asRuntimeException());
    return new StreamObserver<>() {
      @Override
      public void onNext(PutRequest value) {}

      @Override
      public void onError(Throwable t) {}

      @Override
      public void onCompleted() {}
    };
  }

  @Override
  public void reportBlocks(ReportBlocksRequest request, StreamObserver<ReportBlocksResponse> out) {
    out.onNext(ReportBlocksResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void close() {
    server.shutdownNow();
  }
}
