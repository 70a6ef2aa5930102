package io.draftmesh.serving;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

class ServingTest {
  /** Bytes as they are: enough for a hand-made unary method. */
  private static final MethodDescriptor.Marshaller<byte[]> RAW =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
          }
        }
      };

  private static final MethodDescriptor<byte[], byte[]> HANG =
      MethodDescriptor.<byte[], byte[]>newBuilder()
          .setType(MethodDescriptor.MethodType.UNARY)
          .setFullMethodName("test.Slow/Hang")
          .setRequestMarshaller(RAW)
          .setResponseMarshaller(RAW)
          .build();

  @Test
  void unwrapFindsTheStatusInsideFutureWrappersAndDropsItsCause() {
    StatusRuntimeException sre =
        Status.NOT_FOUND
            .withDescription("model: x (expected: a served model)")
            .withCause(new IllegalStateException("internal detail"))
            .asRuntimeException(new Metadata());
    Throwable wrapped = new CompletionException(new ExecutionException(sre));
    assertThat(GrpcStatuses.unwrap(wrapped)).isSameAs(sre);
    Status s = GrpcStatuses.statusOf(wrapped);
    assertThat(s.getCode()).isEqualTo(Status.Code.NOT_FOUND);
    assertThat(s.getDescription()).isEqualTo("model: x (expected: a served model)");
    assertThat(s.getCause()).isNull();
    assertThat(GrpcStatuses.trailersOf(wrapped)).isNotNull();
    assertThat(GrpcStatuses.statusOf(new CompletionException(new IllegalStateException())))
        .isNull();
    assertThat(GrpcStatuses.statusOf(Status.ABORTED.asException()).getCode())
        .isEqualTo(Status.Code.ABORTED);
  }

  @Test
  void reflectionServesV1AndV1alpha() throws Exception {
    Server server =
        InProcessServerBuilder.forName(InProcessServerBuilder.generateName())
            .addServices(Reflection.services())
            .build();
    assertThat(server.getServices())
        .extracting(d -> d.getServiceDescriptor().getName())
        .containsExactlyInAnyOrder(
            "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection");
  }

  @Test
  void drainWaitsForACallThatFinishesWithinTheGrace() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CompletableFuture<Void> release = new CompletableFuture<>();
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name)
            .addService(
                ServerServiceDefinition.builder("test.Slow")
                    .addMethod(
                        HANG,
                        ServerCalls.asyncUnaryCall(
                            (req, out) -> {
                              started.countDown();
                              release.thenRun(
                                  () -> {
                                    out.onNext(req);
                                    out.onCompleted();
                                  });
                            }))
                    .build())
            .build()
            .start();
    ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
    try {
      CompletableFuture<byte[]> call =
          CompletableFuture.supplyAsync(
              () ->
                  ClientCalls.blockingUnaryCall(
                      ch, HANG, io.grpc.CallOptions.DEFAULT, new byte[] {7}));
      assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
      CompletableFuture.delayedExecutor(200, TimeUnit.MILLISECONDS)
          .execute(() -> release.complete(null));
      AtomicBoolean overrun = new AtomicBoolean();
      assertThat(Drain.stop(server, Duration.ofSeconds(20), () -> overrun.set(true))).isFalse();
      assertThat(overrun).isFalse();
      assertThat(call.get(10, TimeUnit.SECONDS)).containsExactly(7);
      assertThat(server.isTerminated()).isTrue();
    } finally {
      ch.shutdownNow();
    }
  }

  @Test
  void drainCancelsWhatIsStillRunningWhenTheGraceIsOver() throws Exception {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch cancelled = new CountDownLatch(1);
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name)
            .addService(
                ServerServiceDefinition.builder("test.Slow")
                    .addMethod(
                        HANG,
                        ServerCalls.asyncUnaryCall(
                            (req, out) -> {
                              ((io.grpc.stub.ServerCallStreamObserver<byte[]>) out)
                                  .setOnCancelHandler(cancelled::countDown);
                              started.countDown(); // never answers
                            }))
                    .build())
            .build()
            .start();
    ManagedChannel ch = InProcessChannelBuilder.forName(name).build();
    try {
      CompletableFuture<byte[]> call =
          CompletableFuture.supplyAsync(
              () ->
                  ClientCalls.blockingUnaryCall(
                      ch, HANG, io.grpc.CallOptions.DEFAULT, new byte[] {1}));
      assertThat(started.await(10, TimeUnit.SECONDS)).isTrue();
      AtomicBoolean overrun = new AtomicBoolean();
      assertThat(Drain.stop(server, Duration.ofMillis(100), () -> overrun.set(true))).isTrue();
      assertThat(overrun).isTrue();
      assertThat(cancelled.await(10, TimeUnit.SECONDS))
          .as("the call's cancel handler ran")
          .isTrue();
      StatusRuntimeException e =
          catchThrowableOfType(
              StatusRuntimeException.class,
              () -> {
                try {
                  call.get(10, TimeUnit.SECONDS);
                } catch (ExecutionException ex) {
                  throw ex.getCause();
                }
              });
      assertThat(e.getStatus().getCode()).isNotEqualTo(Status.Code.OK);
      assertThat(server.isTerminated()).isTrue();
    } finally {
      ch.shutdownNow();
    }
  }
}
