package io.draftmesh.engine.model;

import static org.assertj.core.api.Assertions.assertThat;

import ai.djl.ndarray.NDManager;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.cpu.VectorModel;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A token tree fed in one step with a {@link TreeMask} gives, for every node, the logits that
 * feeding its root-to-node path as a chain gives: on both backends, for trees of several shapes, in
 * a batch with another sequence (whose logits the tree must not disturb), and when the tree is fed
 * in two chunks.
 *
 * <p>Tolerance 1e-4 absolute on logits of magnitude ~1, as in {@link BackendEqualityTest}: the
 * chain and the tree sum the same terms (the DJL backend in another order). A node that saw a
 * sibling, or sat at the wrong position, moves its logits by O(0.1); the last check makes sure the
 * data can show that.
 */
class TreeForwardTest {
  private static final float TOLERANCE = 1e-4f;

  @TempDir static Path dir;
  private static NDManager manager;
  private static final List<DecoderModel> models = new ArrayList<>();
  private static ModelConfig config;

  @BeforeAll
  static void load() throws IOException {
    config = RandomCheckpoint.tinyGqa();
    Path modelDir = dir.resolve("gqa");
    RandomCheckpoint.write(modelDir, config, 21, DType.F32, 0);
    manager = NDManager.newBaseManager();
    try (Checkpoint ckpt = Checkpoint.load(modelDir)) {
      models.add(LlamaModel.load(ckpt, manager, 256));
      models.add(VectorModel.load(ckpt, 256, 2, true));
    }
  }

  @AfterAll
  static void close() {
    models.forEach(DecoderModel::close);
    manager.close();
  }

  static Stream<Arguments> shapes() {
    List<Arguments> out = new ArrayList<>();
    for (int backend = 0; backend < 2; backend++) {
      out.add(Arguments.of(backend, "chain", new int[] {-1, 0, 1, 2}));
      out.add(Arguments.of(backend, "star", new int[] {-1, -1, -1, -1, -1}));
      out.add(Arguments.of(backend, "binary", new int[] {-1, 0, 0, 1, 1, 2, 2}));
      out.add(Arguments.of(backend, "forest", new int[] {-1, -1, 0, 1, 1, 2, 4, -1, 7}));
      out.add(Arguments.of(backend, "random16", randomParents(16, 5)));
    }
    return out.stream();
  }

  static int[] randomParents(int n, long seed) {
    Random r = new Random(seed);
    int[] p = new int[n];
    for (int j = 0; j < n; j++) {
      p[j] = r.nextInt(j + 1) - 1;
    }
    return p;
  }

  @ParameterizedTest(name = "{1} on backend {0}")
  @MethodSource("shapes")
  void treeNodesMatchTheirPathsFedAsChains(int backend, String shape, int[] parents)
      throws Exception {
    DecoderModel model = models.get(backend);
    try (KvBlockPool pool =
        KvBlockPool.withBudget(
            config.numLayers(),
            config.numKvHeads(),
            config.headDim(),
            8,
            8L << 20,
            KvDtype.FLOAT32)) {
      Random rnd = new Random(shape.hashCode());
      int[] prefix = tokens(rnd, 13);
      int[] other = tokens(rnd, 9);
      int[] nodes = tokens(rnd, parents.length);
      // The tree's sequence: prefix fed, then the tree in one step beside another sequence's chunk.
      BlockTable tree = new BlockTable(pool);
      BlockTable neighbour = new BlockTable(pool);
      prefill(model, pool, tree, prefix);
      prefill(model, pool, neighbour, new int[] {other[0], other[1]});
      TreeMask mask = new TreeMask(prefix.length, parents);
      tree.reserve(prefix.length + nodes.length);
      neighbour.reserve(other.length);
      int[] neighbourRows = allRows(other.length - 2);
      List<StepResult> batch =
          model.forward(
              List.of(
                  new SeqStep(
                      java.util.Arrays.copyOfRange(other, 2, other.length),
                      2,
                      neighbour,
                      neighbourRows,
                      false),
                  new SeqStep(nodes, prefix.length, tree, allRows(nodes.length), false, 0, mask)),
              pool);
      float[][] treeLogits = batch.get(1).logits();

      // Reference: each node's path fed as a chain after the same prefix, in a sequence of its own.
      BlockTable chain = new BlockTable(pool);
      prefill(model, pool, chain, prefix);
      float worstOther = 0;
      for (int j = 0; j < nodes.length; j++) {
        int[] path = mask.path(j);
        int[] ids = new int[path.length];
        for (int d = 0; d < path.length; d++) {
          ids[d] = nodes[path[d]];
        }
        chain.reserve(prefix.length + ids.length);
        float[] expected =
            model
                .forward(
                    List.of(
                        new SeqStep(ids, prefix.length, chain, new int[] {ids.length - 1}, false)),
                    pool)
                .get(0)
                .logits()[0];
        chain.truncate(prefix.length);
        assertThat(maxAbsDiff(treeLogits[j], expected))
            .as("%s node %d (path of %d)", shape, j, path.length)
            .isLessThan(TOLERANCE);
        if (j > 0) {
          worstOther = Math.max(worstOther, maxAbsDiff(treeLogits[j - 1], expected));
        }
      }
      // The data can show a mistake: a neighbouring node's logits are far from this node's.
      assertThat(worstOther).isGreaterThan(100 * TOLERANCE);

      // The neighbour in the batch computed what it computes alone.
      BlockTable alone = new BlockTable(pool);
      prefill(model, pool, alone, new int[] {other[0], other[1]});
      alone.reserve(other.length);
      float[][] solo =
          model
              .forward(
                  List.of(
                      new SeqStep(
                          java.util.Arrays.copyOfRange(other, 2, other.length),
                          2,
                          alone,
                          neighbourRows,
                          false)),
                  pool)
              .get(0)
              .logits();
      for (int r = 0; r < solo.length; r++) {
        assertThat(maxAbsDiff(batch.get(0).logits()[r], solo[r])).isLessThan(TOLERANCE);
      }

      // Fed in two chunks (a batch budget smaller than the tree), the tree computes the same.
      BlockTable chunked = new BlockTable(pool);
      prefill(model, pool, chunked, prefix);
      chunked.reserve(prefix.length + nodes.length);
      int half = nodes.length / 2;
      float[][] first =
          model
              .forward(
                  List.of(
                      new SeqStep(
                          java.util.Arrays.copyOf(nodes, half),
                          prefix.length,
                          chunked,
                          allRows(half),
                          false,
                          0,
                          mask)),
                  pool)
              .get(0)
              .logits();
      float[][] second =
          model
              .forward(
                  List.of(
                      new SeqStep(
                          java.util.Arrays.copyOfRange(nodes, half, nodes.length),
                          prefix.length + half,
                          chunked,
                          allRows(nodes.length - half),
                          false,
                          0,
                          mask)),
                  pool)
              .get(0)
              .logits();
      for (int j = 0; j < nodes.length; j++) {
        float[] got = j < half ? first[j] : second[j - half];
        assertThat(maxAbsDiff(got, treeLogits[j])).as("chunked node %d", j).isLessThan(TOLERANCE);
      }
      for (BlockTable t : List.of(tree, neighbour, chain, alone, chunked)) {
        t.close();
      }
      assertThat(pool.freeBlocks()).isEqualTo(pool.totalBlocks());
    }
  }

  private static void prefill(DecoderModel model, KvBlockPool pool, BlockTable table, int[] ids) {
    table.reserve(ids.length);
    model.forward(List.of(new SeqStep(ids, 0, table, new int[] {ids.length - 1}, false)), pool);
  }

  private static int[] tokens(Random rnd, int n) {
    int[] t = new int[n];
    for (int i = 0; i < n; i++) {
      t[i] = 2 + rnd.nextInt(config.vocabSize() - 2);
    }
    return t;
  }

  private static int[] allRows(int n) {
    int[] rows = new int[n];
    for (int i = 0; i < n; i++) {
      rows[i] = i;
    }
    return rows;
  }

  private static float maxAbsDiff(float[] a, float[] b) {
    float m = 0;
    for (int i = 0; i < a.length; i++) {
      m = Math.max(m, Math.abs(a[i] - b[i]));
    }
    return m;
  }
}
