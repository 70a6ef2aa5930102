package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.ProbDistribution;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.PriorityQueue;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

/**
 * DySpec builds the best-first tree in a few tree Scores: the same tree, node for node, as growing
 * it one node per draft call (the algorithm before, kept below as the reference), with at most one
 * draft call per level of the tree plus the root's.
 */
class DySpecDrafterTest {
  private static final int VOCAB = 24;
  private static final int[] BUDGETS = {1, 2, 3, 5, 8, 13, 16, 32};
  private static final int[] DEPTHS = {1, 2, 3, 6, 64};

  /**
   * A deterministic draft: its distribution after a context is a function of the context alone,
   * confident after some contexts and flat after others, so trees come out both deep and bushy.
   */
  private static final class FakeDraft implements DraftScorer {
    final boolean greedy;
    final List<Integer> scoredSizes = new ArrayList<>();
    int[] prefix;
    int calls;

    FakeDraft(boolean greedy) {
      this.greedy = greedy;
    }

    @Override
    public Position root(int[] seq, int len) {
      prefix = Arrays.copyOf(seq, len);
      calls++;
      return predict(prefix);
    }

    @Override
    public List<Position> score(DraftTree tree) {
      calls++;
      scoredSizes.add(tree.size());
      List<Position> out = new ArrayList<>();
      out.add(predict(prefix));
      for (int j = 0; j < tree.size(); j++) {
        int[] path = tree.pathTokens(j);
        int[] ctx = Arrays.copyOf(prefix, prefix.length + path.length);
        System.arraycopy(path, 0, ctx, prefix.length, path.length);
        out.add(predict(ctx));
      }
      return out.subList(1, out.size());
    }

    Position predict(int[] ctx) {
      SplittableRandom r = new SplittableRandom(Arrays.hashCode(ctx) * 0x9E3779B97F4A7C15L);
      double sharpness = r.nextDouble() < 0.5 ? 6 : 1.5; // confident or unsure
      float[] p = new float[VOCAB];
      double sum = 0;
      for (int i = 0; i < VOCAB; i++) {
        p[i] = (float) Math.exp(sharpness * r.nextGaussian());
        sum += p[i];
      }
      for (int i = 0; i < VOCAB; i++) {
        p[i] /= (float) sum;
      }
      if (!greedy) {
        return Position.newBuilder().setFull(dense(p)).build();
      }
      Integer[] order = new Integer[VOCAB];
      for (int i = 0; i < VOCAB; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Float.compare(p[b], p[a]));
      int k = DySpecDrafter.MAX_CHILDREN;
      ByteBuffer ids = ByteBuffer.allocate(4 * k).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer probs = ByteBuffer.allocate(4 * k).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < k; i++) {
        ids.putInt(order[i]);
        probs.putFloat(p[order[i]]);
      }
      return Position.newBuilder()
          .setTop(
              ProbDistribution.newBuilder()
                  .setTokenIds(ByteString.copyFrom(ids.array()))
                  .setProbs(ByteString.copyFrom(probs.array())))
          .build();
    }

    private static ProbDistribution dense(float[] p) {
      ByteBuffer b = ByteBuffer.allocate(4 * p.length).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : p) {
        b.putFloat(v);
      }
      return ProbDistribution.newBuilder().setProbs(ByteString.copyFrom(b.array())).build();
    }

    @Override
    public int vocab() {
      return VOCAB;
    }

    @Override
    public int calls() {
      return calls;
    }

    @Override
    public void close() {}
  }

  @Test
  void greedyTreesAreTheOneNodePerCallTreesWithAtMostOneCallPerLevel() {
    check(true);
  }

  @Test
  void sampledTreesAreTheOneNodePerCallTreesDrawForDraw() {
    check(false);
  }

  @Test
  void atSixteenNodesARoundTakesFewerCallsThanEightWaves() {
    int batched = 0;
    int waves = 0;
    for (int c = 0; c < 40; c++) {
      int[] seq = {c, 7, c % 5};
      FakeDraft a = new FakeDraft(true);
      new DySpecDrafter(a, true, new SplittableRandom(c)).draft(seq, seq.length, 16, 64);
      batched += a.calls;
      FakeDraft b = new FakeDraft(true);
      reference(b, true, new SplittableRandom(c), seq, 16, 64, 8);
      waves += b.calls;
    }
    // Eight waves of two nodes: the root's call and up to 7 Scores, 8 per round on this draft.
    assertThat(waves).isEqualTo(40 * 8);
    // This draft is confident after half its contexts, so its trees run deep (5.9 calls a round
    // measured); the zoo draft's bushier trees take fewer (README, "Token trees").
    assertThat(batched).isLessThan(waves * 3 / 4);
  }

  private static void check(boolean greedy) {
    int rounds = 0;
    int deep = 0;
    for (int c = 0; c < 30; c++) {
      int[] seq = {3, c, 11, c * 7 % VOCAB};
      for (int budget : BUDGETS) {
        for (int maxDepth : DEPTHS) {
          long seed = 1000L * c + 31L * budget + maxDepth;
          FakeDraft batchedDraft = new FakeDraft(greedy);
          DraftTree got =
              new DySpecDrafter(batchedDraft, greedy, new SplittableRandom(seed))
                  .draft(seq, seq.length, budget, maxDepth);
          FakeDraft oneByOne = new FakeDraft(greedy);
          DraftTree want =
              reference(oneByOne, greedy, new SplittableRandom(seed), seq, budget, maxDepth, 0);

          String where = "context " + c + ", budget " + budget + ", max depth " + maxDepth;
          assertThat(got.tokens()).as(where).isEqualTo(want.tokens());
          assertThat(got.parents()).as(where).isEqualTo(want.parents());
          assertThat(got.q()).as(where).isEqualTo(want.q());
          int depth = 0;
          for (int j = 0; j < got.size(); j++) {
            depth = Math.max(depth, got.depth(j));
            assertThat(got.depth(j)).as(where).isLessThanOrEqualTo(maxDepth);
          }
          // The root's prediction, then a Score per level that needs children: below the tree's
          // deepest level only when it may still grow.
          int levels = depth < maxDepth ? depth : depth - 1;
          assertThat(batchedDraft.calls).as(where).isLessThanOrEqualTo(1 + levels);
          for (int size : batchedDraft.scoredSizes) {
            assertThat(size).as(where).isLessThanOrEqualTo(budget);
          }
          rounds++;
          deep += depth >= 4 ? 1 : 0;
        }
      }
    }
    assertThat(rounds).isEqualTo(30 * BUDGETS.length * DEPTHS.length);
    assertThat(deep).as("rounds with trees of depth >= 4").isGreaterThan(rounds / 20);
  }

  // ---- the reference: DySpecDrafter before batching, one tree Score after every wave ----

  private record Candidate(
      double value, long seq, int parent, int token, double pathProb, Draws draws) {}

  /** Children of one node drawn without replacement, from a generator keyed by the node's place. */
  private record Draws(WithoutReplacement w, RandomGenerator rng, long key, int[] drawn) {}

  /**
   * Best-first with {@code waves} waves of nodes between draft calls ({@code 0}: one node per wave,
   * the exact best-first tree); the same keyed draws as the drafter, so trees compare draw for
   * draw. Ties go to the candidate offered first.
   */
  private static DraftTree reference(
      FakeDraft model,
      boolean greedy,
      RandomGenerator rng,
      int[] seq,
      int budget,
      int maxDepth,
      int waves) {
    DraftTree tree = new DraftTree();
    long[] counter = {0};
    PriorityQueue<Candidate> frontier =
        new PriorityQueue<>(
            (a, b) ->
                a.value() != b.value()
                    ? Double.compare(b.value(), a.value())
                    : Long.compare(a.seq(), b.seq()));
    long[] keys = new long[budget];
    long rootKey = rng.nextLong();
    offer(frontier, counter, model.root(seq, seq.length), -1, 1.0, rootKey, budget, greedy);
    int wave = waves == 0 ? 1 : Math.max(1, (budget + waves - 1) / waves);
    double[] pathProb = new double[budget];
    while (tree.size() < budget && !frontier.isEmpty()) {
      List<Integer> added = new ArrayList<>();
      while (added.size() < wave && tree.size() < budget && !frontier.isEmpty()) {
        Candidate c = frontier.poll();
        if (c.parent() >= 0 && tree.depth(c.parent()) >= maxDepth) {
          continue;
        }
        int node;
        if (c.draws() == null) {
          node = tree.add(c.token(), c.parent(), null);
          pathProb[node] = c.pathProb();
          keys[node] = c.token(); // unused for greedy
        } else {
          double parentProb = c.parent() < 0 ? 1.0 : pathProb[c.parent()];
          WithoutReplacement.Draw d = c.draws().w().next(c.draws().rng());
          if (d == null) {
            continue;
          }
          int rank = c.draws().drawn()[0]++;
          node = tree.add(d.token(), c.parent(), d.from());
          pathProb[node] = parentProb * d.prob();
          keys[node] = RouterService.mix(c.draws().key() + 0x9E3779B97F4A7C15L * (rank + 1));
          if (c.draws().w().massLeft() > 1e-6) {
            frontier.add(
                new Candidate(
                    parentProb * c.draws().w().massLeft(),
                    counter[0]++,
                    c.parent(),
                    -1,
                    0,
                    c.draws()));
          }
        }
        added.add(node);
      }
      if (added.isEmpty() || tree.size() >= budget) {
        break;
      }
      List<Position> scored = model.score(tree);
      for (int node : added) {
        if (tree.depth(node) < maxDepth) {
          offer(
              frontier,
              counter,
              scored.get(node),
              node,
              pathProb[node],
              keys[node],
              budget,
              greedy);
        }
      }
    }
    return tree;
  }

  private static void offer(
      PriorityQueue<Candidate> frontier,
      long[] counter,
      Position at,
      int parent,
      double prob,
      long key,
      int budget,
      boolean greedy) {
    if (greedy) {
      int[] ids = ProbCodec.ids(at.getTop());
      float[] probs = ProbCodec.probs(at.getTop());
      for (int i = 0; i < Math.min(ids.length, Math.min(DySpecDrafter.MAX_CHILDREN, budget)); i++) {
        frontier.add(
            new Candidate(prob * probs[i], counter[0]++, parent, ids[i], prob * probs[i], null));
      }
    } else {
      WithoutReplacement w = new WithoutReplacement(ProbCodec.dense(at.getFull(), VOCAB));
      Draws draws = new Draws(w, new SplittableRandom(key), key, new int[1]);
      frontier.add(new Candidate(prob * w.massLeft(), counter[0]++, parent, -1, 0, draws));
    }
  }
}
