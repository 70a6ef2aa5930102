package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TokenIds;
import io.draftmesh.router.TestMesh.Result;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A draft that answers garbage is treated like a dead one: the router checks every proposal before
 * any of it reaches the target, drops the draft and finishes on the target alone with exactly the
 * target's output. The target never sees the garbage (it would refuse the whole request).
 */
class GarbageDraftIT {
  static TestMesh mesh;
  static final Map<String, GarbageDraft> drafts = new LinkedHashMap<>();
  static RouterServer router;
  static ManagedChannel channel;

  static Proposed tokens(int... ids) {
    Proposed.Builder p = Proposed.newBuilder();
    for (int id : ids) {
      p.addTokenIds(id);
    }
    return p.build();
  }

  static int[] repeat(int id, int n) {
    int[] a = new int[n];
    java.util.Arrays.fill(a, id);
    return a;
  }

  static ProbDistribution dense(float[] probs) {
    ByteBuffer b = ByteBuffer.allocate(probs.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    b.asFloatBuffer().put(probs);
    return ProbDistribution.newBuilder().setProbs(ByteString.copyFrom(b.array())).build();
  }

  /** k copies of token 5, each with {@code dist} as its full distribution. */
  static Proposed withDistribution(int k, ProbDistribution dist) {
    Proposed.Builder p = Proposed.newBuilder();
    for (int i = 0; i < k; i++) {
      p.addTokenIds(5).addPositions(Position.newBuilder().setTokenId(5).setFull(dist));
    }
    return p.build();
  }

  static final Map<String, BiFunction<Integer, Integer, Proposed>> KINDS =
      Map.of(
          "outside-vocab", (k, vocab) -> tokens(repeat(vocab + 7, k)),
          "negative-id", (k, vocab) -> tokens(repeat(-1, k)),
          "more-than-k", (k, vocab) -> tokens(repeat(5, k + 40)),
          "dense-wrong-size", (k, vocab) -> withDistribution(k, dense(new float[vocab - 1])),
          "dense-nan",
              (k, vocab) -> {
                float[] q = new float[vocab];
                java.util.Arrays.fill(q, Float.NaN);
                return withDistribution(k, dense(q));
              },
          "dense-not-normalized",
              (k, vocab) -> {
                float[] q = new float[vocab];
                java.util.Arrays.fill(q, 0.5f);
                return withDistribution(k, dense(q));
              },
          "token-without-mass",
              (k, vocab) -> {
                float[] q = new float[vocab];
                q[6] = 1f; // all mass on 6, but the drafted token is 5
                return withDistribution(k, dense(q));
              });

  @BeforeAll
  static void start() throws Exception {
    mesh = TestMesh.get();
    Map<String, String> pools = new LinkedHashMap<>();
    for (Map.Entry<String, BiFunction<Integer, Integer, Proposed>> e : KINDS.entrySet()) {
      GarbageDraft d = new GarbageDraft(mesh.targetInfo, e.getValue());
      drafts.put(e.getKey(), d);
      pools.put(e.getKey(), "localhost:" + d.port());
    }
    router = mesh.routerOnPort(pools, Duration.ofSeconds(5));
    channel =
        Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
            .build();
  }

  @AfterAll
  static void stop() {
    channel.shutdownNow();
    router.close();
    drafts.values().forEach(GarbageDraft::close);
  }

  static GenerateRequest request(Strategy strategy, String draft, float temperature) {
    GenerateRequest.Builder b =
        GenerateRequest.newBuilder()
            .setTokenIds(TokenIds.newBuilder().addIds(42).addIds(7).addIds(300).addIds(12))
            .setStrategy(strategy)
            .setIgnoreEos(true)
            .setSampling(
                Sampling.newBuilder().setMaxTokens(24).setTemperature(temperature).setSeed(3))
            .setSpeculative(SpeculativeOptions.newBuilder().setK(4));
    if (draft != null) {
      b.setDraft(draft);
    }
    return b.build();
  }

  static Result run(GenerateRequest r) {
    List<io.draftmesh.proto.v1.GenerateChunk> out = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(r)
        .forEachRemaining(out::add);
    return Result.of(out);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "outside-vocab",
        "negative-id",
        "more-than-k",
        "dense-wrong-size",
        "dense-nan",
        "dense-not-normalized",
        "token-without-mass"
      })
  void aDraftAnsweringGarbageIsDroppedLikeADeadOne(String kind) {
    // Distributions are only asked for (and checked) when sampling.
    float temperature = kind.startsWith("dense") || kind.startsWith("token") ? 0.8f : 0f;
    List<Integer> expected =
        run(request(Strategy.STRATEGY_AUTOREGRESSIVE, null, temperature)).ids();
    Result r = run(request(Strategy.STRATEGY_SPECULATIVE, kind, temperature));
    assertThat(r.ids()).isEqualTo(expected);
    assertThat(r.last().getStats().getFallback()).isTrue();
    assertThat(r.last().getStats().getFallbackReason()).contains("draft");
    assertThat(drafts.get(kind).proposals.get()).isEqualTo(1);
    TestMesh.assertFreed("target", mesh.workers.get("target").port());
  }
}
