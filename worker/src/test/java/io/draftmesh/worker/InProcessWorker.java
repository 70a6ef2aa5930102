package io.draftmesh.worker;

import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.grpc.ManagedChannel;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/** A {@link WorkerServer} on the in-process transport with a channel to it. */
final class InProcessWorker implements AutoCloseable {
  final WorkerServer server;
  final ManagedChannel channel;

  private InProcessWorker(WorkerServer server, ManagedChannel channel) {
    this.server = server;
    this.channel = channel;
  }

  /** Starts without waiting for the engine. */
  static InProcessWorker start(WorkerConfig.Role role, Supplier<InferenceEngine> loader) {
    return start(role, loader, WorkerServer.DEFAULT_SESSION_IDLE);
  }

  /** Starts without waiting for the engine; sessions idle for {@code idle} are ended. */
  static InProcessWorker start(
      WorkerConfig.Role role, Supplier<InferenceEngine> loader, Duration idle) {
    String name = InProcessServerBuilder.generateName();
    WorkerServer server =
        new WorkerServer(
            InProcessServerBuilder.forName(name),
            role,
            loader,
            Duration.ofSeconds(2),
            idle,
            OpenTelemetry.noop());
    try {
      server.start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new InProcessWorker(server, InProcessChannelBuilder.forName(name).build());
  }

  /** Starts and waits until the engine is warm. */
  static InProcessWorker ready(WorkerConfig.Role role, Supplier<InferenceEngine> loader)
      throws InterruptedException {
    return ready(role, loader, WorkerServer.DEFAULT_SESSION_IDLE);
  }

  /** Starts and waits until the engine is warm; sessions idle for {@code idle} are ended. */
  static InProcessWorker ready(
      WorkerConfig.Role role, Supplier<InferenceEngine> loader, Duration idle)
      throws InterruptedException {
    InProcessWorker w = start(role, loader, idle);
    w.server.awaitReady(Duration.ofMinutes(2));
    return w;
  }

  InferenceEngine engine() {
    return server.engine();
  }

  ManagedChannel channel() {
    return channel;
  }

  ModelWorkerGrpc.ModelWorkerStub stub() {
    return ModelWorkerGrpc.newStub(channel);
  }

  ModelWorkerGrpc.ModelWorkerBlockingStub blocking() {
    return ModelWorkerGrpc.newBlockingStub(channel);
  }

  SessionStream session() {
    return SessionStream.start(stub());
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow();
    channel.awaitTermination(5, TimeUnit.SECONDS);
    server.close();
  }
}
