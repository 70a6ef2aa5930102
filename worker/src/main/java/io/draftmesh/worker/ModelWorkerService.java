package io.draftmesh.worker;

import io.draftmesh.engine.runtime.EngineInfo;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.SelectPromptTokensRequest;
import io.draftmesh.proto.v1.SelectPromptTokensResponse;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;

/**
 * The {@code ModelWorker} contract over one {@link io.draftmesh.engine.runtime.InferenceEngine}:
 * model info, and one {@link SessionCall} per {@code Session} stream. Refuses every call with
 * UNAVAILABLE unless the worker is serving (warming up, draining, failed).
 */
final class ModelWorkerService extends ModelWorkerGrpc.ModelWorkerImplBase {
  private final WorkerState state;
  private final WorkerConfig.Role role;
  private final Executor responses;
  private final ExecutorService probes;
  private final SessionCall.IdleTimer idle;

  /**
   * @param responses where responses are converted and sent, so the engine's scheduler thread only
   *     completes futures
   * @param probes where SelectPromptTokens reads prompts (bounded; full = RESOURCE_EXHAUSTED)
   */
  ModelWorkerService(
      WorkerState state,
      WorkerConfig.Role role,
      Executor responses,
      ExecutorService probes,
      SessionCall.IdleTimer idle) {
    this.idle = idle;
    this.state = state;
    this.role = role;
    this.responses = responses;
    this.probes = probes;
  }

  @Override
  public void getModelInfo(GetModelInfoRequest request, StreamObserver<ModelInfo> out) {
    WorkerState.Loaded loaded;
    try {
      loaded = state.require();
    } catch (RuntimeException e) {
      out.onError(Statuses.toException(e));
      return;
    }
    EngineInfo i = loaded.engine().info();
    out.onNext(
        ModelInfo.newBuilder()
            .setModelId(i.modelId())
            .setArchitecture(i.architecture())
            .setVocabSize(i.vocabSize())
            .setTokenizerHash(i.tokenizerHash())
            .setMaxContext(i.maxContext())
            .setDtype(loaded.dtype())
            .setDevice(loaded.device())
            .setRole(role.id())
            .setNumParameters(i.numParameters())
            .setNumLayers(i.numLayers())
            .setMaxSessions(i.maxSessions())
            .setMaxTokensPerOp(i.maxTokensPerOp())
            .setKvBlockSize(i.kvBlockSize())
            .setKvBlocksTotal(i.kvBlocksTotal())
            .setKvBlocksFree(i.kvBlocksFree())
            .setActiveSessions(i.activeSessions())
            .setEosTokenId(i.eosTokenId())
            .setBosTokenId(i.bosTokenId())
            .setKvBlocksCached(i.kvBlocksCached())
            .setPromptTokensCached(i.promptTokensCached())
            .setPromptTokensComputed(i.promptTokensComputed())
            .setKvFingerprint(
                loaded.kvcache() == null
                    ? com.google.protobuf.ByteString.EMPTY
                    : com.google.protobuf.ByteString.copyFrom(loaded.kvcache().fingerprint()))
            .setKvReplica(loaded.kvcache() == null ? "" : loaded.kvcache().replica())
            .setKvDtype(i.kvDtype())
            .build());
    out.onCompleted();
  }

  @Override
  public StreamObserver<SessionRequest> session(StreamObserver<SessionResponse> out) {
    ServerCallStreamObserver<SessionResponse> call =
        (ServerCallStreamObserver<SessionResponse>) out;
    WorkerState.Loaded loaded;
    try {
      loaded = state.require();
    } catch (RuntimeException e) {
      call.onError(Statuses.toException(e));
      return SessionCall.ignoring();
    }
    return SessionCall.start(loaded.engine(), loaded.kvcache(), call, responses, idle);
  }

  @Override
  public void selectPromptTokens(
      SelectPromptTokensRequest request, StreamObserver<SelectPromptTokensResponse> out) {
    WorkerState.Loaded loaded;
    try {
      loaded = state.require();
    } catch (RuntimeException e) {
      out.onError(Statuses.toException(e));
      return;
    }
    PromptSelection.handle(loaded.engine(), probes, request, out);
  }
}
