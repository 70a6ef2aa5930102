package io.draftmesh.router;

import static io.draftmesh.router.SamplingLaws.assertDistributed;
import static io.draftmesh.router.SamplingLaws.chain;
import static io.draftmesh.router.SamplingLaws.generateVia;
import static io.draftmesh.router.SamplingLaws.greedyContinuation;
import static io.draftmesh.router.SamplingLaws.request;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.SamplingLaws.Exact;
import io.draftmesh.router.SamplingLaws.Transforms;
import io.draftmesh.router.TestMesh.Result;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
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
    Exact target = new Exact(mesh, "target", PROMPT, t);
    Exact draft = new Exact(mesh, "mixed", PROMPT, t);
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
   * Draft-ahead (docs/speculative.md): with k = 1 and five tokens, the first round's Propose ahead
   * brings the second round's draft token whenever the first draft and the bonus guess were right,
   * and that round verifies it with no draft call of its own. The output must be the target's law
   * whichever way each run went. Control: t1 from the target, the rest from the draft unverified.
   */
  @Test
  void speculativeSamplingWithDraftAheadMatchesTheTarget() throws Exception {
    Transforms t = NARROW;
    Exact target = new Exact(mesh, "target", PROMPT, t);
    Exact draft = new Exact(mesh, "mixed", PROMPT, t);
    List<Result> results =
        sample(
            seed -> {
              GenerateRequest.Builder r =
                  speculativeRequest(PROMPT, "mixed", 1, t.sampling(13_000 + seed, 5));
              r.getSpeculativeBuilder().setDraftAhead(true);
              return r.build();
            },
            mesh::generate);
    long hits = 0;
    long aheadCalls = 0;
    for (Result r : results) {
      GenerationStats st = r.last().getStats();
      assertThat(st.getFallback()).isFalse();
      hits += st.getDraftAheadHits();
      aheadCalls += st.getDraftAheadCalls();
    }
    System.out.printf("sampling with draft-ahead %s: %d of %d used%n", t, hits, aheadCalls);
    // Both branches ran often: rounds fed by a Propose ahead, and ones that discarded it.
    assertThat(hits).as("Proposes ahead used").isGreaterThan(SAMPLES / 10L);
    assertThat(aheadCalls - hits).as("Proposes ahead discarded").isGreaterThan(SAMPLES / 10L);
    assertDistributed(
        "draft-ahead", results, chain(target, target, 5), chain(target, draft, 5), 0.3);
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
    int[] prompt = greedyContinuation(mesh, PROMPT, 40);
    NgramOptions options = NgramOptions.newBuilder().setN(3).setMinN(1).setMaxMatch(4).build();
    Exact target = new Exact(mesh, "target", prompt, t);
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
    Exact target = new Exact(mesh, "target", PROMPT, t);
    Exact draft = new Exact(mesh, "mixed", PROMPT, t);
    try (WorkerProxy proxy = WorkerProxy.failingAtPropose(mesh.workers.get("mixed").port(), 2);
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

  static GenerateRequest.Builder speculativeRequest(
      int[] prompt, String draft, int k, Sampling.Builder s) {
    return request(prompt, Strategy.STRATEGY_SPECULATIVE, s)
        .setDraft(draft)
        .setSpeculative(SpeculativeOptions.newBuilder().setK(k));
  }

  static List<Result> sample(
      LongFunction<GenerateRequest> request, Function<GenerateRequest, Result> via)
      throws Exception {
    return SamplingLaws.sample(pool, SAMPLES, request, via);
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
}
