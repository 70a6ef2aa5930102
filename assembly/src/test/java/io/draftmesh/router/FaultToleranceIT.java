package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.router.TestMesh.Result;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.grpc.Context;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Faults, on real ports: the router, the workers and a stalling test double all listen on Netty
 * ports. The draft is an accelerator, never a dependency: killed, stalled or unreachable, the
 * stream completes and equals the target's autoregressive output. Client cancel and deadlines close
 * both worker sessions and free their KV.
 */
class FaultToleranceIT {
  static TestMesh mesh;
  static WorkerServer killable;
  static FakeWorker stalled;
  static RouterServer router;
  static ManagedChannel channel;

  @BeforeAll
  static void start() throws Exception {
    mesh = TestMesh.get();
    killable = TestMesh.newWorker(mesh.modelA, WorkerConfig.Role.DRAFT);
    stalled = new FakeWorker(mesh.targetInfo);
    killable.awaitReady(Duration.ofMinutes(2));
    router =
        mesh.routerOnPort(
            Map.of(
                "same", "localhost:" + mesh.workers.get("same").port(),
                "killable", "localhost:" + killable.port(),
                "stalled", "localhost:" + stalled.port(),
                "dead", "localhost:" + TestMesh.deadPort(),
                "dns", "dns:///localhost:" + mesh.workers.get("target").port()),
            Duration.ofMillis(300));
    channel =
        Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
            .build();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    router.close();
    killable.close();
    stalled.close();
  }

  static GenerateRequest request(Strategy strategy, String draft, int maxTokens) {
    GenerateRequest.Builder b =
        GenerateRequest.newBuilder()
            .setTokenIds(TokenIds.newBuilder().addIds(42).addIds(7).addIds(300).addIds(12))
            .setStrategy(strategy)
            .setIgnoreEos(true)
            .setSampling(Sampling.newBuilder().setMaxTokens(maxTokens))
            .setSpeculative(SpeculativeOptions.newBuilder().setK(4));
    if (draft != null) {
      b.setDraft(draft);
    }
    return b.build();
  }

  static RouterGrpc.RouterBlockingStub stub() {
    return RouterGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  static List<Integer> autoregressive(int maxTokens) {
    return mesh.generate(request(Strategy.STRATEGY_AUTOREGRESSIVE, null, maxTokens)).ids();
  }

  @Test
  void killingTheDraftMidStreamFallsBackWithoutLosingOrRepeatingATokens() {
    int n = 600;
    List<Integer> expected = autoregressive(n);
    List<GenerateChunk> chunks = new ArrayList<>();
    Iterator<GenerateChunk> it =
        stub().generate(request(Strategy.STRATEGY_SPECULATIVE, "killable", n));
    while (it.hasNext()) {
      chunks.add(it.next());
      if (chunks.size() == 3) {
        killable.close(); // no drain grace: open sessions are cut off at once
      }
    }
    Result r = Result.of(chunks);
    assertThat(r.ids()).isEqualTo(expected);
    GenerationStats st = r.last().getStats();
    assertThat(st.getFallback()).isTrue();
    assertThat(st.getFallbackReason()).contains("draft worker");
    // Drafts were accepted before the kill; everything after it came from the target alone.
    int firstDraft = r.provenance().indexOf(Provenance.PROVENANCE_DRAFT_ACCEPTED_VALUE);
    int lastDraft = r.provenance().lastIndexOf(Provenance.PROVENANCE_DRAFT_ACCEPTED_VALUE);
    assertThat(firstDraft).isNotNegative();
    assertThat(lastDraft).isLessThan(n - 50);
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
  }

  @Test
  void aStalledDraftIsDroppedAfterItsRoundDeadline() throws InterruptedException {
    List<Integer> expected = autoregressive(40);
    Result r = Result.of(collect(request(Strategy.STRATEGY_SPECULATIVE, "stalled", 40)));
    assertThat(r.ids()).isEqualTo(expected);
    assertThat(r.last().getStats().getFallback()).isTrue();
    assertThat(r.last().getStats().getFallbackReason()).contains("did not answer propose");
    assertThat(stalled.opened.get()).isPositive();
    assertThat(stalled.awaitCancelled(5)).as("the router tore the stalled session down").isTrue();
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
  }

  @Test
  void anUnreachableDraftMeansTargetOnly() {
    List<Integer> expected = autoregressive(30);
    Result r = Result.of(collect(request(Strategy.STRATEGY_SPECULATIVE, "dead", 30)));
    assertThat(r.ids()).isEqualTo(expected);
    assertThat(r.last().getStats().getFallback()).isTrue();
    assertThat(r.last().getStats().getFallbackReason()).contains("unreachable");
  }

  @Test
  void aDnsNamedPoolWorksLikeAStaticOne() {
    GenerateRequest req =
        request(Strategy.STRATEGY_AUTOREGRESSIVE, null, 12).toBuilder().setTarget("dns").build();
    assertThat(Result.of(collect(req)).ids()).isEqualTo(autoregressive(12));
  }

  @Test
  void anUnreachableTargetIsUnavailable() {
    GenerateRequest req =
        request(Strategy.STRATEGY_AUTOREGRESSIVE, null, 5).toBuilder().setTarget("dead").build();
    assertThatThrownBy(() -> collect(req))
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
              assertThat(e.getStatus().getDescription()).contains("unreachable");
            });
  }

  /**
   * A target that answers Open and then nothing: the generation cannot finish on its own, so only
   * the cancel can end it, and the outcome must be CANCELLED (a completion would mean the test did
   * not test cancellation at all).
   */
  @Test
  void cancellingWhileTheTargetIsDeterministicallySlowIsCancelled() throws Exception {
    try (FakeWorker slowTarget = new FakeWorker(mesh.targetInfo);
        RouterServer r =
            mesh.routerOnPort(
                Map.of("slow", "localhost:" + slowTarget.port()), Duration.ofMillis(300))) {
      ManagedChannel ch =
          Grpc.newChannelBuilder("localhost:" + r.port(), InsecureChannelCredentials.create())
              .build();
      try {
        CountDownLatch firstChunk = new CountDownLatch(1);
        java.util.concurrent.CompletableFuture<Status> outcome =
            new java.util.concurrent.CompletableFuture<>();
        Context.CancellableContext ctx = Context.current().withCancellation();
        ctx.run(
            () ->
                RouterGrpc.newStub(ch)
                    .generate(
                        request(Strategy.STRATEGY_AUTOREGRESSIVE, null, 50).toBuilder()
                            .setTarget("slow")
                            .build(),
                        new StreamObserver<>() {
                          @Override
                          public void onNext(GenerateChunk c) {
                            firstChunk.countDown();
                          }

                          @Override
                          public void onError(Throwable t) {
                            outcome.complete(Status.fromThrowable(t));
                          }

                          @Override
                          public void onCompleted() {
                            outcome.complete(Status.OK);
                          }
                        }));
        assertThat(firstChunk.await(30, TimeUnit.SECONDS)).isTrue(); // the token from Open
        ctx.cancel(null);
        assertThat(outcome.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);
        assertThat(slowTarget.awaitCancelled(10)).as("the target's session was torn down").isTrue();
      } finally {
        ch.shutdownNow();
      }
    }
  }

  @Test
  void cancellingMidStreamClosesBothSessionsAndFreesTheirKv() throws Exception {
    CountDownLatch firstChunk = new CountDownLatch(1);
    java.util.concurrent.CompletableFuture<Status> outcome =
        new java.util.concurrent.CompletableFuture<>();
    Context.CancellableContext ctx = Context.current().withCancellation();
    ctx.run(
        () ->
            RouterGrpc.newStub(channel)
                .generate(
                    request(Strategy.STRATEGY_SPECULATIVE, "same", 900),
                    new StreamObserver<>() {
                      @Override
                      public void onNext(GenerateChunk c) {
                        firstChunk.countDown();
                      }

                      @Override
                      public void onError(Throwable t) {
                        outcome.complete(Status.fromThrowable(t));
                      }

                      @Override
                      public void onCompleted() {
                        outcome.complete(Status.OK);
                      }
                    }));
    assertThat(firstChunk.await(30, TimeUnit.SECONDS)).isTrue();
    // Both workers hold a session now.
    assertThat(mesh.info("target").getActiveSessions()).isEqualTo(1);
    assertThat(mesh.info("same").getActiveSessions()).isEqualTo(1);
    ctx.cancel(null);
    // 900 tokens take seconds; a completion here would mean the cancel was never exercised.
    assertThat(outcome.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
    TestMesh.assertFreed("same", mesh.workers.get("same").port());
  }

  @Test
  void aDeadlineMidStreamClosesBothSessionsAndFreesTheirKv() {
    GenerateRequest req = request(Strategy.STRATEGY_SPECULATIVE, "same", 900);
    long whole = System.nanoTime();
    stub().generate(req).forEachRemaining(c -> {});
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
    TestMesh.deadlineMidStream(
        channel,
        req,
        Duration.ofNanos(System.nanoTime() - whole),
        () -> {
          TestMesh.assertFreed("target", mesh.workers.get("target").port());
          TestMesh.assertFreed("same", mesh.workers.get("same").port());
        });
  }

  static List<GenerateChunk> collect(GenerateRequest req) {
    List<GenerateChunk> out = new ArrayList<>();
    stub().generate(req).forEachRemaining(out::add);
    return out;
  }
}
