package io.draftmesh.router;

import static io.draftmesh.router.SamplingLaws.assertDistributed;
import static io.draftmesh.router.SamplingLaws.assertFollows;
import static io.draftmesh.router.SamplingLaws.assertRejected;
import static io.draftmesh.router.SamplingLaws.chain;
import static io.draftmesh.router.SamplingLaws.generateVia;
import static io.draftmesh.router.SamplingLaws.greedyContinuation;
import static io.draftmesh.router.SamplingLaws.request;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.ProbDistribution;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.router.SamplingLaws.Exact;
import io.draftmesh.router.SamplingLaws.Transforms;
import io.draftmesh.router.TestMesh.Result;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Sampling through tree speculation emits the target's distribution, end to end on real ports
 * (router, target worker, draft worker), for every tree drafter: DySpec and RSD drafting from the
 * {@code mixed} draft worker (the target's weights with one MLP swapped, so its trees are partly
 * accepted), Token Recycling and lookahead drafting model-free in the router.
 *
 * <p>Statistic: the first {@link #TOKENS} generated tokens of {@link #SAMPLES} requests (seeds
 * fixed: request i of a drafter has seed 10,000 × (drafter + 1) + i), at T = 0.7 with top-k 3,
 * top-p 0.95 and min-p 0.02, so every outcome has a nonzero exact probability and there are at most
 * 3^4 of them. The exact joint law p(t1) p(t2 | t1) ... is read from the target worker itself (Open
 * with the full transformed distribution, on every prefix). The first token is the target's own
 * (from Open); the other three come from tree rounds of depth up to 2 (the last token of a request
 * is always the target's), so both siblings (the multi-draft rule's residuals) and paths are
 * exercised. Checks ({@link SamplingLaws#assertFollows}): every expected count ≥ 5, no outcome
 * outside the support, chi-square p &gt; 1e-3, and total-variation distance below twice its
 * sampling noise.
 *
 * <p>Negative control, the same test on a run that must fail: the same requests through a router
 * whose target sits behind a {@link WorkerProxy} that rewrites every tree Verify's draft
 * distributions to the uniform one — the bug of a router that states the wrong q. The target then
 * accepts almost every drafted node whatever its probability, and the output leans towards the
 * drafts; it must be rejected (p &lt; 1e-6, TV beyond the bound the honest run met). For the two
 * model-backed drafters the honest samples must also reject the exact law of the draft's tokens
 * streamed unverified.
 *
 * <p>Cost: 2,000 + 1,000 requests of 4 tokens per drafter, ~30 s for the class on the suite's tiny
 * models. The outcome of a seed is not bit-reproducible across runs (batch composition changes
 * float rounding, and Token Recycling's table is shared by every request of the router), but the
 * law is, and that is what is tested.
 */
class TreeSamplingLosslessIT {
  static final int SAMPLES = 2000;
  static final int CONTROL_SAMPLES = 1000; // its bias is large: half the samples still reject
  static final int TOKENS = 4;
  static final int NODES = 8;
  static final Transforms SHAPED = new Transforms(0.7f, 3, 0.95f, 0.02f);
  static final int[] PROMPT = {17, 230, 5, 88, 402, 61};

  static TestMesh mesh;
  static ExecutorService pool;
  static int[] prompt;
  static Map<List<Integer>, Double> target;

  @BeforeAll
  static void start() {
    mesh = TestMesh.get();
    pool = Executors.newFixedThreadPool(6);
    // A random model's greedy text repeats itself, so lookahead's trie and Token Recycling's
    // table find continuations to propose.
    prompt = greedyContinuation(mesh, PROMPT, 40);
    target = chain(exact("target"), exact("target"), TOKENS);
  }

  @AfterAll
  static void stop() {
    pool.shutdownNow();
  }

  static Exact exact(String worker) {
    return new Exact(mesh, worker, prompt, SHAPED);
  }

  static boolean modelFree(Drafter d) {
    return d == Drafter.DRAFTER_TOKEN_RECYCLING || d == Drafter.DRAFTER_LOOKAHEAD;
  }

  static GenerateRequest tree(Drafter drafter, long seed) {
    GenerateRequest.Builder b =
        request(prompt, Strategy.STRATEGY_SPECULATIVE, SHAPED.sampling(seed, TOKENS))
            .setSpeculative(
                SpeculativeOptions.newBuilder().setDrafter(drafter).setTreeNodes(NODES));
    if (!modelFree(drafter)) {
      b.setDraft("mixed");
    }
    return b.build();
  }

  @ParameterizedTest
  @EnumSource(
      value = Drafter.class,
      names = {"DRAFTER_DYSPEC", "DRAFTER_RSD", "DRAFTER_TOKEN_RECYCLING", "DRAFTER_LOOKAHEAD"})
  void treeSamplingMatchesTheTargetAndABiasedVerifyIsCaught(Drafter drafter) throws Exception {
    String label = drafter.name();
    List<Result> honest = sample(drafter, SAMPLES, mesh::generate);
    assertTreesWereVerified(label, honest);
    if (modelFree(drafter)) {
      assertFollows(label, honest, target);
    } else {
      assertDistributed(label, honest, target, chain(exact("target"), exact("mixed"), TOKENS), 0.3);
    }
    mesh.assertAllSessionsClosed();

    AtomicInteger lies = new AtomicInteger();
    int vocab = mesh.targetInfo.getVocabSize();
    try (WorkerProxy proxy =
            new WorkerProxy(
                mesh.workers.get("target").port(), () -> op -> claimUniform(op, vocab, lies));
        RouterServer router = mesh.routerOnPort(pools(proxy), Duration.ofSeconds(5))) {
      ManagedChannel channel =
          Grpc.newChannelBuilder("localhost:" + router.port(), InsecureChannelCredentials.create())
              .build();
      try {
        List<Result> biased = sample(drafter, CONTROL_SAMPLES, req -> generateVia(channel, req));
        assertTreesWereVerified(label + " behind the lying proxy", biased);
        assertThat(lies.get()).as("tree verifies rewritten").isPositive();
        assertRejected(label + " with q stated uniform", biased, target);
      } finally {
        channel.shutdownNow();
      }
    }
    mesh.assertAllSessionsClosed();
  }

  private static List<Result> sample(
      Drafter drafter, int samples, Function<GenerateRequest, Result> via) throws Exception {
    long base = 10_000L * (drafter.getNumber() + 1);
    return SamplingLaws.sample(pool, samples, seed -> tree(drafter, base + seed), via);
  }

  /** The proxied target, and the draft worker the model-backed drafters draw from. */
  private static Map<String, String> pools(WorkerProxy proxy) {
    Map<String, String> pools = new LinkedHashMap<>();
    pools.put("target", "localhost:" + proxy.port());
    pools.put("mixed", "localhost:" + mesh.workers.get("mixed").port());
    return pools;
  }

  /**
   * The op, with a tree Verify's draft distributions replaced by the uniform one: each drafted
   * token then looks unlikely to the draft, so min(1, p/q) accepts it whenever the target allows it
   * at all.
   */
  private static SessionRequest claimUniform(SessionRequest op, int vocab, AtomicInteger lies) {
    if (!op.hasVerify() || op.getVerify().getTreeParentsCount() == 0) {
      return op;
    }
    lies.incrementAndGet();
    ByteBuffer probs = ByteBuffer.allocate(4 * vocab).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < vocab; i++) {
      probs.putFloat(1f / vocab);
    }
    ProbDistribution uniform =
        ProbDistribution.newBuilder().setProbs(ByteString.copyFrom(probs.array())).build();
    int n = op.getVerify().getDraftDistributionsCount();
    return op.toBuilder()
        .setVerify(
            op.getVerify().toBuilder()
                .clearDraftDistributions()
                .addAllDraftDistributions(Collections.nCopies(n, uniform)))
        .build();
  }

  /**
   * The test's premise: the runs did go through tree rounds that accepted nodes (not only plain
   * steps), and nothing fell back to the target alone.
   */
  private static void assertTreesWereVerified(String label, List<Result> results) {
    long withTree = 0;
    long drafted = 0;
    long accepted = 0;
    long rounds = 0;
    for (Result r : results) {
      GenerationStats st = r.last().getStats();
      assertThat(r.ids()).as(label).hasSize(TOKENS);
      assertThat(st.getFallback()).as("%s: %s", label, st.getFallbackReason()).isFalse();
      withTree += st.getDrafted() > 0 ? 1 : 0;
      drafted += st.getDrafted();
      accepted += st.getAccepted();
      rounds += st.getRounds();
    }
    System.out.printf(
        "sampling %s: %d of %d runs verified a tree; %d rounds, %d nodes drafted, %d accepted%n",
        label, withTree, results.size(), rounds, drafted, accepted);
    assertThat(withTree)
        .as(label + ": runs that verified a tree")
        .isGreaterThan(results.size() / 4);
    assertThat(accepted).as(label + ": accepted tree nodes").isGreaterThan(results.size() / 10);
  }
}
