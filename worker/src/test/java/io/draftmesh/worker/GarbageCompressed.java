package io.draftmesh.worker;

import com.google.protobuf.ByteString;
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
import io.draftmesh.proto.v1.ReportBlocksRequest;
import io.draftmesh.proto.v1.ReportBlocksResponse;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32C;

/**
 * A kvcache-service on a real port that answers every Get with the same payload under the key asked
 * for, with a CRC32C that matches it (so only the entry's own checks can tell), stores nothing, and
 * finds no prefix.
 */
final class GarbageCompressed implements AutoCloseable {
  private final Server server;
  private final AtomicInteger gets = new AtomicInteger();

  private GarbageCompressed(byte[] fingerprint, byte[] payload) throws IOException {
    CRC32C crc = new CRC32C();
    crc.update(payload);
    int sum = (int) crc.getValue();
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(
                new KvCacheGrpc.KvCacheImplBase() {
                  @Override
                  public void registerModel(
                      ModelSpec spec, StreamObserver<RegisterModelResponse> out) {
                    out.onNext(
                        RegisterModelResponse.newBuilder()
                            .setModelFingerprint(ByteString.copyFrom(fingerprint))
                            .build());
                    out.onCompleted();
                  }

                  @Override
                  public void lookup(LookupRequest req, StreamObserver<LookupResponse> out) {
                    out.onNext(LookupResponse.getDefaultInstance());
                    out.onCompleted();
                  }

                  @Override
                  public void get(GetRequest req, StreamObserver<GetResponse> out) {
                    gets.incrementAndGet();
                    out.onNext(
                        GetResponse.newBuilder()
                            .setHeader(
                                GetBlockHeader.newBuilder()
                                    .setKey(req.getKeys(0))
                                    .setSize(payload.length)
                                    .setCrc32C(sum))
                            .build());
                    out.onNext(
                        GetResponse.newBuilder().setChunk(ByteString.copyFrom(payload)).build());
                    out.onCompleted();
                  }

                  @Override
                  public StreamObserver<PutRequest> put(StreamObserver<PutResponse> out) {
                    return new StreamObserver<>() {
                      int headers;

                      @Override
                      public void onNext(PutRequest r) {
                        if (!r.hasChunk()) {
                          headers++;
                        }
                      }

                      @Override
                      public void onError(Throwable t) {}

                      @Override
                      public void onCompleted() {
                        out.onNext(PutResponse.newBuilder().setStoredBlocks(headers).build());
                        out.onCompleted();
                      }
                    };
                  }

                  @Override
                  public void reportBlocks(
                      ReportBlocksRequest req, StreamObserver<ReportBlocksResponse> out) {
                    out.onNext(ReportBlocksResponse.getDefaultInstance());
                    out.onCompleted();
                  }
                })
            .build()
            .start();
  }

  static GarbageCompressed start(byte[] fingerprint, byte[] payload) throws IOException {
    return new GarbageCompressed(fingerprint, payload);
  }

  int port() {
    return server.getPort();
  }

  /** Get calls answered. */
  int gets() {
    return gets.get();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
