package io.draftmesh.engine.runtime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * {@link Sequence#verifyTree} on both backends: greedy tree verification emits what greedy decoding
 * emits, the accepted path's KV serves later steps (so the move to consecutive slots is right),
 * exactly the blocks past the accepted path are freed, and bad trees are INVALID_ARGUMENT naming
 * the field.
 */
class TreeVerifyEngineTest {
  @TempDir static Path dir;
  private static final Map<Backend, InferenceEngine> engines = new EnumMap<>(Backend.class);

  @BeforeAll
  static void load() throws Exception {
    RandomCheckpoint.write(dir.resolve("tiny"), RandomCheckpoint.tinyLlama(), 11, DType.F32, 0);
    for (Backend b : Backend.values()) {
      engines.put(
          b,
          InferenceEngine.load(
              EngineConfig.defaults(dir.resolve("tiny"))
                  .withBackend(b)
                  .withKvBudgetBytes(4L << 20)
                  .withMaxSessions(8)));
    }
  }

  @AfterAll
  static void close() {
    engines.values().forEach(InferenceEngine::close);
  }

  private static int[] prompt(InferenceEngine engine, int n, int seed) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = (i * 37 + seed * 101) % engine.vocabSize();
    }
    return p;
  }

  /** A token that is not {@code t}. */
  private static int other(InferenceEngine engine, int t, int shift) {
    return (t + shift) % engine.vocabSize();
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void greedyTreeVerifyEmitsWhatGreedyDecodingEmits(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    int[] p = prompt(engine, 12, 3);
    Sequence reference = engine.open(p, SamplingParams.GREEDY, "reference");
    reference.prefill(ResultOptions.NONE).join();
    int[] expected = reference.propose(20, 0f, ResultOptions.NONE).join().tokens();
    reference.closeAsync().join();

    Sequence s = engine.open(p, SamplingParams.GREEDY, "tree");
    int first = s.prefill(ResultOptions.NONE).join().tokenId();
    assertThat(first).isEqualTo(expected[0]);
    // Round 1: the right path is e1 -> e2 -> e3, with wrong siblings before it at every level and
    // a wrong deeper branch.
    int[] e = expected;
    int[] nodes = {
      other(engine, e[1], 1), e[1], other(engine, e[2], 2), e[2], e[3], other(engine, e[4], 3)
    };
    int[] parents = {-1, -1, 1, 1, 3, 4};
    // The tree follows the first token, which the prefill chose: appended, it is fed as the
    // tree's trunk.
    s.append(new int[] {first}).join();
    TreeVerification v = s.verifyTree(nodes, parents, null, ResultOptions.NONE).join();
    assertThat(v.path()).containsExactly(1, 3, 4);
    assertThat(v.nextToken()).isEqualTo(e[4]);
    assertThat(v.bonus()).isFalse();
    assertThat(s.length()).isEqualTo(p.length + 5);
    // Round 2: the correction e4 is unfed, so it joins the tree as its trunk. A star of guesses,
    // the right one last.
    int[] star = {other(engine, e[5], 5), other(engine, e[5], 6), e[5]};
    TreeVerification w =
        s.verifyTree(star, new int[] {-1, -1, -1}, null, ResultOptions.NONE).join();
    assertThat(w.path()).containsExactly(2);
    assertThat(w.nextToken()).isEqualTo(e[6]);
    assertThat(w.bonus()).isTrue();
    // Plain decoding goes on from the kept KV and still agrees.
    int[] rest = s.propose(8, 0f, ResultOptions.NONE).join().tokens();
    assertThat(rest).containsExactly(Arrays.copyOfRange(e, 7, 15));
    s.closeAsync().join();
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void scoreTreeReturnsEachPathsPredictionsAndKeepsNothing(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    ResultOptions full = new ResultOptions(0, true);
    int[] p = prompt(engine, 9, 8);
    int[] nodes = {5, 6, 7, 8, 9};
    int[] parents = {-1, -1, 0, 0, 2};
    Sequence s = engine.open(p, SamplingParams.GREEDY, "scored");
    s.prefill(ResultOptions.NONE).join();
    s.append(new int[] {4}).join();
    List<Position> tree = s.scoreTree(nodes, parents, full).join();
    assertThat(tree).hasSize(nodes.length + 1);
    assertThat(s.length()).isEqualTo(p.length + 1);
    Sequence chain = engine.open(p, SamplingParams.GREEDY, "chain");
    chain.prefill(ResultOptions.NONE).join();
    chain.append(new int[] {4}).join();
    // Node 4's path is 0 -> 2 -> 4: tokens 5, 7, 9.
    List<Position> path = chain.score(new int[] {5, 7, 9}, full).join();
    for (int[] pair : new int[][] {{0, 0}, {1, 1}, {3, 2}, {5, 3}}) {
      float[] a = tree.get(pair[0]).full().toDense();
      float[] b = path.get(pair[1]).full().toDense();
      for (int i = 0; i < a.length; i++) {
        assertThat(Math.abs(a[i] - b[i])).isLessThan(1e-5f);
      }
    }
    chain.truncate(p.length + 1).join();
    // Nothing of the tree stayed: both go on alike.
    assertThat(s.propose(5, 0f, ResultOptions.NONE).join().tokens())
        .containsExactly(chain.propose(5, 0f, ResultOptions.NONE).join().tokens());
    assertThatThrownBy(() -> s.scoreTree(nodes, new int[] {-1, 3, 0, 0, 2}, full))
        .hasMessageContaining("score.tree_parents[1]: 3");
    s.closeAsync().join();
    chain.closeAsync().join();
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
  }

  /**
   * Every node's top-k (accepted or not) is the target's prediction after that node's path: the
   * same as scoring the path as a chain, for the raw softmax of a greedy session and for the
   * transformed distribution of a sampling one.
   */
  @ParameterizedTest
  @EnumSource(Backend.class)
  void treeVerifyReportsEveryNodesTopKAsItsPathScoredAsAChain(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    int[] p = prompt(engine, 9, 12);
    int[] nodes = {5, 6, 7, 8, 9, 10, 11};
    int[] parents = {-1, -1, 0, 0, 2, 4, 1};
    int k = 6;
    for (SamplingParams sampling :
        List.of(SamplingParams.GREEDY, new SamplingParams(0.7f, 0, 0.9f, 0, 21))) {
      Sequence s = engine.open(p, sampling, "tree");
      s.prefill(ResultOptions.NONE).join();
      s.append(new int[] {4}).join();
      List<ProbDist> q = new ArrayList<>();
      for (int n : nodes) {
        q.add(ProbDist.oneHot(engine.vocabSize(), n));
      }
      TreeVerification v = s.verifyTree(nodes, parents, q, new ResultOptions(0, false, k)).join();
      assertThat(v.nodeTop()).hasSize(nodes.length);
      for (int j = 0; j < nodes.length; j++) {
        Sequence chain = engine.open(p, sampling, "chain " + j);
        chain.prefill(ResultOptions.NONE).join();
        chain.append(new int[] {4}).join();
        List<Position> scored =
            chain.score(path(nodes, parents, j), new ResultOptions(k, false)).join();
        ProbDist expected = scored.get(scored.size() - 1).top();
        ProbDist got = v.nodeTop().get(j);
        assertThat(got.ids()).as("node %d", j).containsExactly(expected.ids());
        for (int i = 0; i < k; i++) {
          assertThat(Math.abs(got.probs()[i] - expected.probs()[i])).isLessThan(1e-5f);
        }
        chain.closeAsync().join();
      }
      // Without node_top_k nothing more comes back.
      assertThat(
              s.verifyTree(new int[] {5}, new int[] {-1}, q.subList(0, 1), ResultOptions.NONE)
                  .join()
                  .nodeTop())
          .isEmpty();
      s.closeAsync().join();
    }
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
  }

  /** The tokens on node {@code j}'s root-to-node path, root first. */
  private static int[] path(int[] nodes, int[] parents, int j) {
    List<Integer> out = new ArrayList<>();
    for (int n = j; n >= 0; n = parents[n]) {
      out.add(0, nodes[n]);
    }
    return out.stream().mapToInt(Integer::intValue).toArray();
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void nodeTopKOutsideATreeVerifyOrTheVocabularyIsInvalidArgument(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    int vocab = engine.vocabSize();
    Sequence s = engine.open(prompt(engine, 6, 13), SamplingParams.GREEDY, "bad options");
    s.prefill(ResultOptions.NONE).join();
    int[] two = {3, 4};
    int[] tree = {-1, 0};
    assertInvalid(
        () -> s.verifyTree(two, tree, null, new ResultOptions(0, false, vocab + 1)),
        "verify.options.node_top_k: " + (vocab + 1) + " (expected: 0.." + vocab + ")");
    assertInvalid(
        () -> s.verifyTree(two, tree, null, new ResultOptions(0, false, -1)),
        "verify.options.node_top_k: -1");
    String onlyTrees = "(expected: 0; only a tree verify, with tree_parents, reports every node)";
    assertInvalid(
        () -> s.verify(two, null, new ResultOptions(0, false, 4)),
        "verify.options.node_top_k: 4 " + onlyTrees);
    assertInvalid(
        () -> s.propose(1, 0f, new ResultOptions(0, false, 4)),
        "propose.options.node_top_k: 4 " + onlyTrees);
    assertInvalid(
        () -> s.scoreTree(two, tree, new ResultOptions(0, false, 4)),
        "score.options.node_top_k: 4 " + onlyTrees);
    // Nothing was run: the session is as it was.
    assertThat(s.length()).isEqualTo(6);
    s.closeAsync().join();
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void rollbackFreesExactlyTheBlocksPastTheAcceptedPath(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    int bs = engine.info().kvBlockSize();
    int[] p = prompt(engine, 10, 4);
    Sequence reference = engine.open(p, SamplingParams.GREEDY, "reference");
    reference.prefill(ResultOptions.NONE).join();
    int[] e = reference.propose(4, 0f, ResultOptions.NONE).join().tokens();
    reference.closeAsync().join();

    Sequence s = engine.open(p, SamplingParams.GREEDY, "tree");
    s.prefill(ResultOptions.NONE).join();
    s.append(new int[] {e[0]}).join();
    // 40 nodes: the right two tokens, then a long wrong branch of 38 that needs 3 more blocks.
    int[] nodes = new int[40];
    int[] parents = new int[40];
    nodes[0] = e[1];
    parents[0] = -1;
    nodes[1] = e[2];
    parents[1] = 0;
    for (int j = 2; j < 40; j++) {
      nodes[j] = other(engine, e[3], 7);
      parents[j] = j == 2 ? -1 : j - 1;
    }
    int freeBefore = engine.freeBlocks();
    int heldBefore = s.kvBlocks();
    TreeVerification v = s.verifyTree(nodes, parents, null, ResultOptions.NONE).join();
    assertThat(v.path()).containsExactly(0, 1);
    // KV for prompt + e0 + e1 + e2 (the correction e3 is unfed).
    int kept = (p.length + 3 + bs - 1) / bs;
    assertThat(s.kvBlocks()).isEqualTo(kept);
    assertThat(engine.freeBlocks()).isEqualTo(freeBefore - (kept - heldBefore));
    assertThat(s.length()).isEqualTo(p.length + 4);
    s.closeAsync().join();
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void samplingTreeVerifyKeepsAConsistentSequence(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    SamplingParams sampling = new SamplingParams(0.8f, 0, 0, 0, 7);
    Sequence s = engine.open(prompt(engine, 8, 5), sampling, "sampled");
    s.prefill(ResultOptions.NONE).join();
    int vocab = engine.vocabSize();
    List<ProbDist> q = new ArrayList<>();
    int[] nodes = {3, 4, 5, 6};
    for (int n : nodes) {
      q.add(ProbDist.oneHot(vocab, n));
    }
    TreeVerification v =
        s.verifyTree(nodes, new int[] {-1, -1, 0, 1}, q, new ResultOptions(0, true)).join();
    assertThat(v.positions()).hasSize(v.accepted() + 1);
    assertThat(s.length()).isEqualTo(8 + v.accepted() + 1);
    // The reported distributions are the target's: the emitted token has mass under them.
    for (int d = 0; d <= v.accepted(); d++) {
      Position pos = v.positions().get(d);
      assertThat(pos.full().prob(pos.tokenId())).isGreaterThan(0f);
    }
    assertThatThrownBy(
            () -> s.verifyTree(nodes, new int[] {-1, -1, 0, 1}, null, ResultOptions.NONE))
        .hasMessageContaining("verify.draft_distributions");
    s.closeAsync().join();
  }

  @ParameterizedTest
  @EnumSource(Backend.class)
  void badTreesAreInvalidArgumentNamingTheField(Backend backend) {
    InferenceEngine engine = engines.get(backend);
    Sequence s = engine.open(prompt(engine, 6, 6), SamplingParams.GREEDY, "bad");
    s.prefill(ResultOptions.NONE).join();
    int[] three = {3, 4, 5};
    assertInvalid(
        () -> s.verifyTree(three, new int[] {-1, 2, 0}, null, ResultOptions.NONE),
        "verify.tree_parents[1]: 2");
    assertInvalid(
        () -> s.verifyTree(three, new int[] {-1, 0, 2}, null, ResultOptions.NONE),
        "verify.tree_parents[2]: 2");
    assertInvalid(
        () -> s.verifyTree(three, new int[] {-1, 0}, null, ResultOptions.NONE),
        "verify.tree_parents: 2 given");
    int limit = engine.info().maxTokensPerOp();
    assertInvalid(
        () -> s.verifyTree(new int[limit + 1], new int[limit + 1], null, ResultOptions.NONE),
        "verify.draft_token_ids: " + (limit + 1) + " tokens");
    s.closeAsync().join();

    int max = engine.info().maxContext();
    Sequence full = engine.open(prompt(engine, max - 3, 7), SamplingParams.GREEDY, "full");
    full.prefill(ResultOptions.NONE).join();
    int[] chain = {3, 4, 5, 6, 7};
    assertThatThrownBy(
            () ->
                full.verifyTree(chain, new int[] {-1, 0, 1, 2, 3}, null, ResultOptions.NONE).join())
        .hasCauseInstanceOf(EngineException.class)
        .hasMessageContaining("verify.tree_parents: a path of 5 nodes");
    full.closeAsync().join();
    assertThat(engine.freeBlocks()).isEqualTo(engine.info().kvBlocksTotal());
  }

  private static void assertInvalid(Runnable call, String message) {
    assertThatThrownBy(call::run)
        .isInstanceOfSatisfying(
            EngineException.class,
            e -> assertThat(e.kind()).isEqualTo(EngineException.Kind.INVALID_ARGUMENT))
        .hasMessageContaining(message);
  }
}
