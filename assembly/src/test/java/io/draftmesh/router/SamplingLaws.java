package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.sampling.ChiSquare;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.ResultOptions;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
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
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.LongFunction;

/**
 * The statistics of the sampling-losslessness tests through the mesh: exact laws of the first few
 * generated tokens, read from the workers themselves, and the goodness-of-fit checks run against
 * them (Pearson's chi-square with its validity condition, and the total-variation distance).
 */
final class SamplingLaws {
  private SamplingLaws() {}

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

  static GenerateRequest.Builder request(int[] prompt, Strategy strategy, Sampling.Builder s) {
    return GenerateRequest.newBuilder()
        .setTokenIds(TokenIds.newBuilder().addAllIds(ids(prompt)))
        .setStrategy(strategy)
        .setIgnoreEos(true)
        .setSampling(s);
  }

  /** {@code samples} runs of request(i) for i = 0 .. samples - 1, on {@code pool}. */
  static List<Result> sample(
      ExecutorService pool,
      int samples,
      LongFunction<GenerateRequest> request,
      Function<GenerateRequest, Result> via)
      throws Exception {
    List<Future<Result>> futures = new ArrayList<>();
    for (int i = 0; i < samples; i++) {
      GenerateRequest req = request.apply(i);
      futures.add(pool.submit(() -> via.apply(req)));
    }
    List<Result> out = new ArrayList<>();
    for (Future<Result> f : futures) {
      out.add(f.get());
    }
    return out;
  }

  /** One Generate call on {@code channel}, put together. */
  static Result generateVia(ManagedChannel channel, GenerateRequest request) {
    List<GenerateChunk> chunks = new ArrayList<>();
    RouterGrpc.newBlockingStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(request)
        .forEachRemaining(chunks::add);
    return Result.of(chunks);
  }

  /** The target's greedy continuation of {@code prompt}, appended to it. */
  static int[] greedyContinuation(TestMesh mesh, int[] prompt, int tokens) {
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
   * How well sampled outcomes fit a law: Pearson's chi-square over the law's support plus one cell
   * for everything outside it, the empirical total-variation distance {@code tv}, and {@code
   * tvNoise}, the TV that sampling alone gives on average when the outcomes do follow the law, E[½
   * Σ |n_i/N − p_i|] ≈ ½ Σ √(2 p_i (1 − p_i) / (π N)) (each count near-normal).
   *
   * @param minExpected the smallest expected count, N × min p_i: chi-square needs 5 or more
   * @param outside outcomes outside the law's support
   */
  record Fit(
      ChiSquare.Result chi,
      double tv,
      double tvNoise,
      double minExpected,
      long outside,
      int cells) {
    @Override
    public String toString() {
      return String.format(
          "%d cells, smallest expected count %.1f, TV %.3f (sampling noise %.3f), %d outside,"
              + " chi2 %.1f on %d df, p = %.3g",
          cells, minExpected, tv, tvNoise, outside, chi.statistic(), chi.df(), chi.pValue());
    }
  }

  static Fit fit(List<Result> results, Map<List<Integer>, Double> law) {
    List<List<Integer>> cells = new ArrayList<>(law.keySet());
    Map<List<Integer>, Integer> index = new HashMap<>();
    for (int i = 0; i < cells.size(); i++) {
      index.put(cells.get(i), i);
    }
    long[] observed = new long[cells.size() + 1]; // last cell: outcomes outside the support
    for (Result r : results) {
      observed[index.getOrDefault(r.ids(), cells.size())]++;
    }
    double[] expected = new double[observed.length];
    for (int i = 0; i < cells.size(); i++) {
      expected[i] = law.get(cells.get(i));
    }
    expected = normalized(expected);
    int n = results.size();
    double tv = 0;
    double noise = 0;
    double minP = 1;
    for (int i = 0; i < observed.length; i++) {
      tv += Math.abs((double) observed[i] / n - expected[i]) / 2;
      if (i < cells.size()) {
        noise += Math.sqrt(2 * expected[i] * (1 - expected[i]) / (Math.PI * n)) / 2;
        minP = Math.min(minP, expected[i]);
      }
    }
    return new Fit(
        ChiSquare.test(observed, expected),
        tv,
        noise,
        minP * n,
        observed[cells.size()],
        cells.size());
  }

  /**
   * Asserts the outcomes follow {@code law}: the test is valid (every expected count 5 or more),
   * nothing fell outside the support, chi-square does not reject at significance 1e-3, and the
   * empirical TV is within twice its sampling noise (its spread under the law is a small fraction
   * of its mean for 16 or more cells, so twice the mean is far in the tail).
   */
  static Fit assertFollows(String label, List<Result> results, Map<List<Integer>, Double> law) {
    Fit f = fit(results, law);
    System.out.printf("sampling %s vs the target: %s%n", label, f);
    assertThat(f.minExpected()).as(label + ": smallest expected count").isGreaterThanOrEqualTo(5);
    assertThat(f.outside()).as(label + ": outcomes outside the target's support").isZero();
    assertThat(f.chi().pValue()).as(label + ": p-value against the target").isGreaterThan(1e-3);
    assertThat(f.tv()).as(label + ": TV from the target").isLessThan(2 * f.tvNoise());
    return f;
  }

  /**
   * Asserts the outcomes of a deliberately broken run are rejected by the same test: chi-square
   * against {@code law} at p &lt; 1e-6, and an empirical TV beyond the bound {@link #assertFollows}
   * accepts (the rejection comes from a real difference, not from one stray outcome).
   */
  static Fit assertRejected(String label, List<Result> results, Map<List<Integer>, Double> law) {
    Fit f = fit(results, law);
    System.out.printf("sampling %s (negative control) vs the target: %s%n", label, f);
    assertThat(f.minExpected()).as(label + ": smallest expected count").isGreaterThanOrEqualTo(5);
    assertThat(f.chi().pValue()).as(label + ": p-value against the target").isLessThan(1e-6);
    assertThat(f.tv()).as(label + ": TV from the target").isGreaterThan(2 * f.tvNoise());
    return f;
  }

  /**
   * Tests the outputs of {@code results} against the exact {@code target} law (must pass, {@link
   * #assertFollows}) and a negative {@code control} law (must be rejected), after asserting that
   * the control only shows power if it is at least {@code minTv} from the target in total
   * variation.
   */
  static void assertDistributed(
      String label,
      List<Result> results,
      Map<List<Integer>, Double> target,
      Map<List<Integer>, Double> control,
      double minTv) {
    assertFollows(label, results, target);
    double tv = 0;
    for (List<Integer> c : target.keySet()) {
      tv += Math.abs(target.get(c) - control.getOrDefault(c, 0.0)) / 2;
    }
    for (List<Integer> c : control.keySet()) {
      if (!target.containsKey(c)) {
        tv += control.get(c) / 2;
      }
    }
    Fit vsControl = fit(results, control);
    System.out.printf(
        "sampling %s vs the control (TV %.3f from the target): %s%n", label, tv, vsControl);
    assertThat(tv).as("TV distance of the negative control from the target").isGreaterThan(minTv);
    assertThat(vsControl.chi().pValue())
        .as("p-value against the negative control")
        .isLessThan(1e-6);
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

  static List<Integer> append(List<Integer> a, int x) {
    List<Integer> out = new ArrayList<>(a);
    out.add(x);
    return List.copyOf(out);
  }

  /** A worker's exact transformed next-token distributions after a fixed prompt, read from it. */
  static final class Exact {
    final String worker;
    final int port;
    final int[] prompt;
    final Transforms transforms;
    private final Map<List<Integer>, Map<Integer, Double>> seen = new ConcurrentHashMap<>();

    /** The distributions of {@code mesh}'s worker of that name. */
    Exact(TestMesh mesh, String worker, int[] prompt, Transforms transforms) {
      this.worker = worker;
      this.port = mesh.workers.get(worker).port();
      this.prompt = prompt;
      this.transforms = transforms;
    }

    /** The distribution after prompt + {@code suffix}: its nonzero entries. */
    Map<Integer, Double> next(List<Integer> suffix) {
      return seen.computeIfAbsent(List.copyOf(suffix), this::read);
    }

    private Map<Integer, Double> read(List<Integer> suffix) {
      ManagedChannel ch =
          Grpc.newChannelBuilder("localhost:" + port, InsecureChannelCredentials.create()).build();
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
