package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.sampling.ChiSquare;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
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
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Speculative sampling through the router emits the target's distribution.
 *
 * <p>Setup: temperature 1 and top_k 3 on both workers, so each position has exactly three possible
 * tokens and the first three generated tokens have at most 27 outcomes. The exact target joint
 * p(t1) p(t2 | t1) p(t3 | t1 t2) is read from the target worker itself (Open with the full
 * transformed distribution, on every prefix). The draft is {@code mixed}: the target's weights with
 * one MLP swapped, so its top-3 sets overlap the target's but its probabilities differ — rounds
 * accept some drafts and reject others, exercising acceptance, the residual norm(max(0, p − q)) and
 * (k = 1) the bonus token. The first token is the target's own (from Open), so tokens 2 and 3 are
 * the speculative ones; with k = 1 they span two rounds, with k = 2 one.
 *
 * <p>Why the test has power: the same samples are also tested against the distribution a broken
 * router would produce by streaming the draft's tokens unverified (t1 from the target, t2 and t3
 * from the draft), computed from the draft worker the same way; that alternative must be rejected
 * (p &lt; 1e-6) while the target passes (p &gt; 1e-3). Its total variation distance from the target
 * is about 0.5 with the same 27-cell support, so the rejection comes from probabilities, not from
 * impossible outcomes; the smallest expected cell count is above 30. A subtler bug is caught too:
 * seeding the draft with the target's own seed (so the draft samples and the target accepts with
 * the same uniforms) gave chi-square ≈ 700 on 26 df (p ≈ 1e-131) when tried. Seeds are fixed
 * (request i uses seed i), so the run is deterministic.
 */
class SamplingLosslessIT {
  static final int SAMPLES = 1000;
  static final int TOP_K = 3;
  static final float TEMPERATURE = 1f;
  static final int[] PROMPT = {17, 230, 5, 88, 402, 61};
  static TestMesh mesh;
  static ExecutorService pool;

  @BeforeAll
  static void start() {
    mesh = TestMesh.get();
    pool = Executors.newFixedThreadPool(6);
  }

  @AfterAll
  static void stop() {
    pool.shutdownNow();
  }

  /** The sampling transforms of one run: the workers' distributions and the requests use them. */
  record Transforms(float temperature, int topK, float topP, float minP) {}

  static final Transforms PLAIN = new Transforms(TEMPERATURE, TOP_K, 0f, 0f);

  /** The rule at T != 1 with top-p and min-p as well: the verifier sees transformed p and q. */
  static final Transforms SHAPED = new Transforms(0.7f, TOP_K, 0.95f, 0.02f);

  static Transforms transforms = PLAIN;

  @ParameterizedTest
  @ValueSource(ints = {1, 2})
  void speculativeSamplingMatchesTheTarget(int k) throws Exception {
    transforms = PLAIN;
    check(k);
  }

  @Test
  void speculativeSamplingMatchesTheTargetAtAnotherTemperatureWithTopPAndMinP() throws Exception {
    transforms = SHAPED;
    try {
      check(3);
    } finally {
      transforms = PLAIN;
    }
  }

  private void check(int k) throws Exception {
    Map<List<Integer>, Double> target = joint("target");
    Map<List<Integer>, Double> draftPassThrough = jointWithDraft("mixed");
    List<List<Integer>> cells = new ArrayList<>(target.keySet());
    for (List<Integer> c : draftPassThrough.keySet()) {
      if (!target.containsKey(c)) {
        cells.add(c);
      }
    }
    double tv = 0;
    for (List<Integer> c : cells) {
      tv += Math.abs(target.getOrDefault(c, 0.0) - draftPassThrough.getOrDefault(c, 0.0)) / 2;
    }

    List<Future<Result>> futures = new ArrayList<>();
    for (int i = 0; i < SAMPLES; i++) {
      GenerateRequest req =
          GenerateRequest.newBuilder()
              .setTokenIds(TokenIds.newBuilder().addAllIds(ids(PROMPT)))
              .setStrategy(Strategy.STRATEGY_SPECULATIVE)
              .setDraft("mixed")
              .setIgnoreEos(true)
              .setSampling(
                  Sampling.newBuilder()
                      .setTemperature(transforms.temperature())
                      .setTopK(transforms.topK())
                      .setTopP(transforms.topP())
                      .setMinP(transforms.minP())
                      .setSeed(1000L * k + i)
                      .setMaxTokens(3))
              .setSpeculative(SpeculativeOptions.newBuilder().setK(k))
              .build();
      futures.add(pool.submit(() -> mesh.generate(req)));
    }
    Map<List<Integer>, Integer> index = new HashMap<>();
    for (int i = 0; i < cells.size(); i++) {
      index.put(cells.get(i), i);
    }
    long[] observed = new long[cells.size() + 1]; // last cell: outcomes outside every support
    long drafted = 0;
    long accepted = 0;
    for (Future<Result> f : futures) {
      Result r = f.get();
      assertThat(r.ids()).hasSize(3);
      observed[index.getOrDefault(r.ids(), cells.size())]++;
      GenerationStats st = r.last().getStats();
      assertThat(st.getFallback()).isFalse();
      drafted += st.getDrafted();
      accepted += st.getAccepted();
    }
    double[] expectTarget = new double[observed.length];
    double[] expectDraft = new double[observed.length];
    for (int i = 0; i < cells.size(); i++) {
      expectTarget[i] = target.getOrDefault(cells.get(i), 0.0);
      expectDraft[i] = draftPassThrough.getOrDefault(cells.get(i), 0.0);
    }
    ChiSquare.Result vsTarget = ChiSquare.test(observed, normalized(expectTarget));
    ChiSquare.Result vsDraft = ChiSquare.test(observed, normalized(expectDraft));
    double alpha = (double) accepted / drafted;
    double minExpected =
        target.values().stream().mapToDouble(Double::doubleValue).min().orElse(0) * SAMPLES;
    System.out.printf(
        "sampling k=%d: alpha %.3f, TV(target, draft pass-through) %.3f, smallest expected count"
            + " %.1f, vs target %s, vs draft %s%n",
        k, alpha, tv, minExpected, vsTarget, vsDraft);
    // The test's own preconditions, asserted rather than printed: chi-square is only valid with
    // every expected count at 5 or more, and the negative control only shows power if it is far
    // from the target (the rejection must come from probabilities, not from a near-identical
    // alternative).
    assertThat(minExpected).as("smallest expected count").isGreaterThanOrEqualTo(5);
    assertThat(tv).as("TV distance of the negative control from the target").isGreaterThan(0.3);
    assertThat(alpha).as("acceptance rate").isBetween(0.1, 0.95);
    assertThat(observed[cells.size()]).as("outcomes outside the target's support").isZero();
    assertThat(vsTarget.pValue()).as("p-value against the target").isGreaterThan(1e-3);
    assertThat(vsDraft.pValue()).as("p-value against unverified drafts").isLessThan(1e-6);
    mesh.assertAllSessionsClosed();
  }

  /** p(t1) p(t2 | t1) p(t3 | t1 t2) of a worker, from its transformed distributions. */
  static Map<List<Integer>, Double> joint(String worker) {
    Map<List<Integer>, Double> out = new HashMap<>();
    Map<Integer, Double> p1 = next(worker, List.of());
    p1.forEach(
        (a, pa) ->
            next(worker, List.of(a))
                .forEach(
                    (b, pb) ->
                        next(worker, List.of(a, b))
                            .forEach((c, pc) -> out.put(List.of(a, b, c), pa * pb * pc))));
    return out;
  }

  /** t1 from the target, t2 and t3 from the draft: what streaming unverified drafts would give. */
  static Map<List<Integer>, Double> jointWithDraft(String draft) {
    Map<List<Integer>, Double> out = new HashMap<>();
    next("target", List.of())
        .forEach(
            (a, pa) ->
                next(draft, List.of(a))
                    .forEach(
                        (b, pb) ->
                            next(draft, List.of(a, b))
                                .forEach((c, pc) -> out.put(List.of(a, b, c), pa * pb * pc))));
    return out;
  }

  /** A worker's transformed next-token distribution after PROMPT + {@code suffix}. */
  static Map<Integer, Double> next(String worker, List<Integer> suffix) {
    ManagedChannel ch =
        Grpc.newChannelBuilder(
                "localhost:" + mesh.workers.get(worker).port(), InsecureChannelCredentials.create())
            .build();
    try {
      WorkerSession s = WorkerSession.start(ch, worker, worker);
      Open.Builder open =
          Open.newBuilder()
              .addAllPromptIds(ids(PROMPT))
              .addAllPromptIds(suffix)
              .setSampling(
                  SamplingParams.newBuilder()
                      .setTemperature(transforms.temperature())
                      .setTopK(transforms.topK())
                      .setTopP(transforms.topP())
                      .setMinP(transforms.minP()))
              .setOptions(ResultOptions.newBuilder().setFullDistribution(true));
      ProbDistribution d =
          s.call(SessionRequest.newBuilder().setOpen(open), Duration.ofSeconds(10), "open")
              .getOpened()
              .getNext()
              .getFull();
      s.close().join();
      return decode(d);
    } finally {
      ch.shutdownNow();
    }
  }

  /** The nonzero entries of a packed distribution (dense or sparse). */
  static Map<Integer, Double> decode(ProbDistribution d) {
    ByteBuffer probs = d.getProbs().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer tokenIds = d.getTokenIds().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    Map<Integer, Double> out = new HashMap<>();
    int n = d.getProbs().size() / 4;
    for (int i = 0; i < n; i++) {
      float p = probs.getFloat(4 * i);
      int id = d.getTokenIds().isEmpty() ? i : tokenIds.getInt(4 * i);
      if (p > 0) {
        out.put(id, (double) p);
      }
    }
    assertThat(out).isNotEmpty().hasSizeLessThanOrEqualTo(TOP_K);
    return out;
  }

  static double[] normalized(double[] p) {
    double sum = 0;
    for (double v : p) {
      sum += v;
    }
    double[] out = new double[p.length];
    for (int i = 0; i < p.length; i++) {
      out[i] = p[i] / sum;
    }
    return out;
  }

  static List<Integer> ids(int[] a) {
    return java.util.Arrays.stream(a).boxed().toList();
  }
}
