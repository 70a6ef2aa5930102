package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.sampling.ChiSquare;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.RouterGrpc;
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
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongFunction;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Sampling through the router emits the target's distribution: speculative decoding, n-gram
 * drafting and a speculative run whose draft dies in the middle.
 *
 * <p>Setup: a small top_k on both workers, so each position has at most top_k possible tokens and
 * the first few generated tokens have few outcomes (27 for three tokens at top_k 3, 16 for four at
 * top_k 2). The exact target joint p(t1) p(t2 | t1) p(t3 | t1 t2) ... is read from the target
 * worker itself (Open with the full transformed distribution, on every prefix). The draft is {@code
 * mixed}: the target's weights with one MLP swapped, so its top-k sets overlap the target's but its
 * probabilities differ — rounds accept some drafts and reject others, exercising acceptance, the
 * residual norm(max(0, p − q)) and the bonus token. The first token is the target's own (from
 * Open), so the later ones are the speculative ones.
 *
 * <p>Why each test has power: the same samples are also tested against the distribution a broken
 * router (or verifier) would produce — streaming the draft's tokens unverified, or, for n-gram
 * drafts, resampling from p instead of the residual after a rejection — computed exactly from the
 * workers the same way; that alternative must be rejected (p &lt; 1e-6) while the target passes (p
 * &gt; 1e-3). Every test asserts its own preconditions: the smallest expected cell count
 * (chi-square needs 5 or more) and the total-variation distance of the negative control from the
 * target (the rejection must come from a real difference). A subtler bug is caught too: seeding the
 * draft with the target's own seed (so the draft samples and the target accepts with the same
 * uniforms) gave chi-square ≈ 700 on 26 df (p ≈ 1e-131) when tried. Seeds are fixed (request i uses
 * seed i), so every run is deterministic.
 */
class SamplingLosslessIT {
  static final int SAMPLES = 1000;
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
  record Transforms(float temperature, int topK, float topP, float minP) {
    Sampling.Builder sampling(long seed, int maxTokens) {
      return Sampling.newBuilder()
          .setTemperature(temperature)
          .setTopK(topK)
          .setTopP(topP)
          .setMinP(minP)
          .setSeed(seed)
          .setMaxTokens(maxTokens);
    }

    SamplingParams params() {
      return SamplingParams.newBuilder()
          .setTemperature(temperature)
          .setTopK(topK)
          .setTopP(topP)
          .setMinP(minP)
          .build();
    }
  }

  static final Transforms PLAIN = new Transforms(1f, 3, 0f, 0f);

  /** The rule at T != 1 with top-p and min-p as well: the verifier sees transformed p and q. */
  static final Transforms SHAPED = new Transforms(0.7f, 3, 0.95f, 0.02f);

  /** Two tokens per position, so four generated tokens still have only 16 outcomes. */
  static final Transforms NARROW = new Transforms(0.8f, 2, 0f, 0f);

  @ParameterizedTest
  @ValueSource(ints = {1, 2})
  void speculativeSamplingMatchesTheTarget(int k) throws Exception {
    speculative(k, PLAIN);
  }

  @Test
  void speculativeSamplingMatchesTheTargetAtAnotherTemperatureWithTopPAndMinP() throws Exception {
    speculative(3, SHAPED);
  }

  private void speculative(int k, Transforms t) throws Exception {
    Exact target = new Exact("target", PROMPT, t);
    Exact draft = new Exact("mixed", PROMPT, t);
    List<Result> results =
        sample(
            seed -> speculativeRequest(PROMPT, "mixed", k, t.sampling(1000L * k + seed, 3)).build(),
            mesh::generate);
    long drafted = 0;
    long accepted = 0;
    for (Result r : results) {
      GenerationStats st = r.last().getStats();
      assertThat(st.getFallback()).isFalse();
      drafted += st.getDrafted();
      accepted += st.getAccepted();
    }
    double alpha = (double) accepted / drafted;
    System.out.printf("sampling k=%d %s: alpha %.3f%n", k, t, alpha);
    assertThat(alpha).as("acceptance rate").isBetween(0.1, 0.95);
    // The negative control: t1 from the target, t2 and t3 streamed from the draft unverified.
    assertDistributed(
        "speculative k=" + k, results, chain(target, target, 3), chain(target, draft, 3), 0.3);
    mesh.assertAllSessionsClosed();
  }

  /**
   * N-gram drafting at T = 0.7 with top-p and min-p: the router drafts from the sequence itself and
   * sends the target one-hot draft distributions. The prompt is the target's own greedy
   * continuation of {@link #PROMPT} (a random model's greedy text repeats itself), so the n-gram
   * drafter finds matches and its proposals are often the target's likely token: some are accepted,
   * some rejected. The control is a verifier that resamples from p instead of norm(max(0, p −
   * onehot)) after a rejection — the same support, different probabilities.
   */
  @Test
  void ngramSamplingMatchesTheTargetAtAnotherTemperatureWithTopPAndMinP() throws Exception {
    Transforms t = SHAPED;
    int[] prompt = greedyContinuation(PROMPT, 40);
    NgramOptions options = NgramOptions.newBuilder().setN(3).setMinN(1).setMaxMatch(4).build();
    Exact target = new Exact("target", prompt, t);
    List<Result> results =
        sample(
            seed ->
                request(prompt, Strategy.STRATEGY_NGRAM, t.sampling(5000 + seed, 3))
                    .setNgram(options)
                    .build(),
            mesh::generate);
    long drafted = 0;
    long accepted = 0;
    long withProposal = 0;
    for (Result r : results) {
      GenerationStats st = r.last().getStats();
      drafted += st.getDrafted();
      accepted += st.getAccepted();
      withProposal += st.getDrafted() > 0 ? 1 : 0;
    }
    double alpha = (double) accepted / drafted;
    System.out.printf(
        "sampling ngram %s: %d of %d runs drafted, alpha %.3f%n", t, withProposal, SAMPLES, alpha);
    assertThat(withProposal).as("runs with an n-gram proposal").isGreaterThan(SAMPLES / 3);
    assertThat(alpha).as("acceptance rate of n-gram proposals").isBetween(0.1, 0.95);
    assertDistributed(
        "ngram",
        results,
        chain(target, target, 3),
        ngramResamplingFromP(target, new NgramDrafter(options.getN(), options.getMinN())),
        0.05);
    mesh.assertAllSessionsClosed();
  }

  /**
   * A draft that dies mid-stream: the {@code mixed} worker behind a proxy that fails each session
   * at its second Propose. With k = 1 and four tokens, a run whose first round is rejected needs a
   * second round, loses its draft there and finishes on the target alone; a run whose first round
   * is accepted (draft + bonus) finishes with one more target step and never sees the failure. The
   * output must be the target's distribution either way. Control: t1 from the target, the rest
   * streamed from the draft unverified.
   */
  @Test
  void speculativeSamplingAcrossAMidStreamDraftFallbackMatchesTheTarget() throws Exception {
    Transforms t = NARROW;
    Exact target = new Exact("target", PROMPT, t);
    Exact draft = new Exact("mixed", PROMPT, t);
    try (FailingDraftProxy proxy = new FailingDraftProxy(mesh.workers.get("mixed").port(), 2);
        RouterServer router =
            mesh.routerOnPort(
                Map.of("failing", "localhost:" + proxy.port()), Duration.ofSeconds(5))) {
      ManagedChannel channel =
          Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
              .build();
      try {
        List<Result> results =
            sample(
                seed ->
                    speculativeRequest(PROMPT, "failing", 1, t.sampling(9000 + seed, 4)).build(),
                req -> generateVia(channel, req));
        long fallbacks = 0;
        for (Result r : results) {
          GenerationStats st = r.last().getStats();
          // One verified round before the failure in every run: the fallback is mid-stream.
          assertThat(st.getDrafted()).as("draft tokens verified").isEqualTo(1);
          if (st.getFallback()) {
            fallbacks++;
            assertThat(st.getAccepted()).as("accepted before the fallback").isZero();
          } else {
            assertThat(st.getAccepted()).as("accepted without a fallback").isEqualTo(1);
          }
        }
        System.out.printf("sampling with a mid-stream fallback %s: %d fallbacks%n", t, fallbacks);
        assertThat(fallbacks).as("runs that fell back").isBetween(SAMPLES / 10L, SAMPLES * 9L / 10);
        assertThat(proxy.failures.get()).as("draft sessions failed").isEqualTo((int) fallbacks);
        assertDistributed(
            "fallback", results, chain(target, target, 4), chain(target, draft, 4), 0.3);
      } finally {
        channel.shutdownNow();
      }
    }
    mesh.assertAllSessionsClosed();
  }

  static GenerateRequest.Builder request(int[] prompt, Strategy strategy, Sampling.Builder s) {
    return GenerateRequest.newBuilder()
        .setTokenIds(TokenIds.newBuilder().addAllIds(ids(prompt)))
        .setStrategy(strategy)
        .setIgnoreEos(true)
        .setSampling(s);
  }

  static GenerateRequest.Builder speculativeRequest(
      int[] prompt, String draft, int k, Sampling.Builder s) {
    return request(prompt, Strategy.STRATEGY_SPECULATIVE, s)
        .setDraft(draft)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(k));
  }

  /** SAMPLES runs of request(i) for i = 0 .. SAMPLES - 1, six at a time. */
  static List<Result> sample(
      LongFunction<GenerateRequest> request, Function<GenerateRequest, Result> via)
      throws Exception {
    List<Future<Result>> futures = new ArrayList<>();
    for (int i = 0; i < SAMPLES; i++) {
      GenerateRequest req = request.apply(i);
      futures.add(pool.submit(() -> via.apply(req)));
    }
    List<Result> out = new ArrayList<>();
    for (Future<Result> f : futures) {
      out.add(f.get());
    }
    return out;
  }

  static Result generateVia(ManagedChannel channel, GenerateRequest request) {
    List<GenerateChunk> chunks = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(request)
        .forEachRemaining(chunks::add);
    return Result.of(chunks);
  }

  /** The target's greedy continuation of {@code prompt}, appended to it. */
  static int[] greedyContinuation(int[] prompt, int tokens) {
    Result r =
        mesh.generate(
            request(
                    prompt,
                    Strategy.STRATEGY_AUTOREGRESSIVE,
                    Sampling.newBuilder().setTemperature(0).setMaxTokens(tokens))
                .build());
    int[] out = Arrays.copyOf(prompt, prompt.length + r.ids().size());
    for (int i = 0; i < r.ids().size(); i++) {
      out[prompt.length + i] = r.ids().get(i);
    }
    return out;
  }

  /**
   * Tests the outputs of {@code results} against the exact {@code target} law (must pass) and a
   * negative {@code control} (must be rejected), after asserting the test's own preconditions:
   * chi-square is only valid with every expected count at 5 or more, and the control only shows
   * power if it is at least {@code minTv} from the target in total variation.
   */
  static void assertDistributed(
      String label,
      List<Result> results,
      Map<List<Integer>, Double> target,
      Map<List<Integer>, Double> control,
      double minTv) {
    List<List<Integer>> cells = new ArrayList<>(target.keySet());
    for (List<Integer> c : control.keySet()) {
      if (!target.containsKey(c)) {
        cells.add(c);
      }
    }
    double tv = 0;
    for (List<Integer> c : cells) {
      tv += Math.abs(target.getOrDefault(c, 0.0) - control.getOrDefault(c, 0.0)) / 2;
    }
    Map<List<Integer>, Integer> index = new HashMap<>();
    for (int i = 0; i < cells.size(); i++) {
      index.put(cells.get(i), i);
    }
    long[] observed = new long[cells.size() + 1]; // last cell: outcomes outside every support
    for (Result r : results) {
      observed[index.getOrDefault(r.ids(), cells.size())]++;
    }
    double[] expectTarget = new double[observed.length];
    double[] expectControl = new double[observed.length];
    for (int i = 0; i < cells.size(); i++) {
      expectTarget[i] = target.getOrDefault(cells.get(i), 0.0);
      expectControl[i] = control.getOrDefault(cells.get(i), 0.0);
    }
    ChiSquare.Result vsTarget = ChiSquare.test(observed, normalized(expectTarget));
    ChiSquare.Result vsControl = ChiSquare.test(observed, normalized(expectControl));
    double minExpected =
        target.values().stream().mapToDouble(Double::doubleValue).min().orElse(0) * results.size();
    System.out.printf(
        "sampling %s: %d cells, TV(target, control) %.3f, smallest expected count %.1f,"
            + " vs target %s, vs control %s%n",
        label, target.size(), tv, minExpected, vsTarget, vsControl);
    assertThat(minExpected).as("smallest expected count").isGreaterThanOrEqualTo(5);
    assertThat(tv).as("TV distance of the negative control from the target").isGreaterThan(minTv);
    assertThat(observed[cells.size()]).as("outcomes outside the target's support").isZero();
    assertThat(vsTarget.pValue()).as("p-value against the target").isGreaterThan(1e-3);
    assertThat(vsControl.pValue()).as("p-value against the negative control").isLessThan(1e-6);
  }

  /**
   * The law of n tokens whose first comes from {@code first} and the rest from {@code rest}:
   * chain(target, target, n) is the target's joint; chain(target, draft, n) what streaming the
   * draft's tokens unverified would give.
   */
  static Map<List<Integer>, Double> chain(Exact first, Exact rest, int n) {
    Map<List<Integer>, Double> out = new HashMap<>();
    extend(List.of(), 1.0, first, rest, n, out);
    return out;
  }

  private static void extend(
      List<Integer> prefix,
      double p,
      Exact first,
      Exact rest,
      int n,
      Map<List<Integer>, Double> out) {
    if (prefix.size() == n) {
      out.merge(prefix, p, Double::sum);
      return;
    }
    (prefix.isEmpty() ? first : rest)
        .next(prefix)
        .forEach((token, q) -> extend(append(prefix, token), p * q, first, rest, n, out));
  }

  /**
   * Three tokens from n-gram drafting with a wrong rejection rule: t1 from the target's Open; then
   * (two tokens left, so k = 1) the drafter's one-token proposal x after prompt + t1, accepted with
   * probability p(x) (q is one-hot), but after a rejection t2 is drawn from p again instead of from
   * p without x; t3 from the target (the bonus after an acceptance, one plain step otherwise).
   * Where the drafter finds no match, t2 is a plain target step.
   */
  static Map<List<Integer>, Double> ngramResamplingFromP(Exact target, NgramDrafter drafter) {
    Map<List<Integer>, Double> out = new HashMap<>();
    target
        .next(List.of())
        .forEach(
            (t1, p1) -> {
              int[] seq = Arrays.copyOf(target.prompt, target.prompt.length + 1);
              seq[seq.length - 1] = t1;
              int[] x = drafter.propose(seq, seq.length, 1);
              Map<Integer, Double> p2 = target.next(List.of(t1));
              Map<Integer, Double> law2 = new HashMap<>();
              double px = x.length == 0 ? 0 : p2.getOrDefault(x[0], 0.0);
              p2.forEach(
                  (y, py) -> law2.put(y, (1 - px) * py + (x.length > 0 && y == x[0] ? px : 0)));
              law2.forEach(
                  (t2, q2) ->
                      target
                          .next(List.of(t1, t2))
                          .forEach(
                              (t3, p3) ->
                                  out.merge(List.of(t1, t2, t3), p1 * q2 * p3, Double::sum)));
            });
    return out;
  }

  static List<Integer> append(List<Integer> a, int x) {
    List<Integer> out = new ArrayList<>(a);
    out.add(x);
    return List.copyOf(out);
  }

  /** A worker's exact transformed next-token distributions after a fixed prompt, read from it. */
  static final class Exact {
    final String worker;
    final int[] prompt;
    final Transforms transforms;
    private final Map<List<Integer>, Map<Integer, Double>> seen = new ConcurrentHashMap<>();

    Exact(String worker, int[] prompt, Transforms transforms) {
      this.worker = worker;
      this.prompt = prompt;
      this.transforms = transforms;
    }

    /** The distribution after prompt + {@code suffix}: its nonzero entries. */
    Map<Integer, Double> next(List<Integer> suffix) {
      return seen.computeIfAbsent(List.copyOf(suffix), this::read);
    }

    private Map<Integer, Double> read(List<Integer> suffix) {
      ManagedChannel ch =
          Grpc.newChannelBuilder(
                  "localhost:" + mesh.workers.get(worker).port(),
                  InsecureChannelCredentials.create())
              .build();
      try {
        WorkerSession s = WorkerSession.start(ch, worker, worker);
        Open.Builder open =
            Open.newBuilder()
                .addAllPromptIds(ids(prompt))
                .addAllPromptIds(suffix)
                .setSampling(transforms.params())
                .setOptions(ResultOptions.newBuilder().setFullDistribution(true));
        ProbDistribution d =
            s.call(SessionRequest.newBuilder().setOpen(open), Duration.ofSeconds(10), "open")
                .getOpened()
                .getNext()
                .getFull();
        s.close().join();
        Map<Integer, Double> out = decode(d);
        assertThat(out).isNotEmpty().hasSizeLessThanOrEqualTo(transforms.topK());
        return out;
      } finally {
        ch.shutdownNow();
      }
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
    return Arrays.stream(a).boxed().toList();
  }
}
