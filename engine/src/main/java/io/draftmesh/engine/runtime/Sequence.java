package io.draftmesh.engine.runtime;

import io.draftmesh.engine.compaction.AttentionRows;
import io.draftmesh.engine.compaction.CapturedAttention;
import io.draftmesh.engine.compaction.CompactedCache;
import io.draftmesh.engine.compaction.KvCompactor;
import io.draftmesh.engine.compaction.KvPolicy;
import io.draftmesh.engine.compaction.KvSelection;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.SlotMoves;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import io.draftmesh.engine.model.TreeMask;
import io.draftmesh.engine.sampling.Distributions;
import io.draftmesh.engine.sampling.ProbDist;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.engine.sampling.SamplingPipeline;
import io.draftmesh.engine.sampling.TokenSampler;
import io.draftmesh.engine.speculative.SpeculationMath;
import io.draftmesh.engine.speculative.SpeculativeVerifier;
import io.draftmesh.engine.speculative.TreeVerifier;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.random.RandomGenerator;

/**
 * One sequence's state in an engine: its tokens, the KV blocks for a prefix of them, and the queue
 * of operations a client asked for.
 *
 * <p>Tokens that are known but have no KV yet are "unfed"; the next operation that needs a
 * distribution feeds them in the same forward pass, so {@link #append} costs nothing and a verified
 * correction token is fed together with the next round's work. When every token has KV, {@code
 * pending} holds the raw logits for the position after the last token.
 *
 * <p>The public methods are thread-safe: they queue an operation on the engine's scheduler thread,
 * which alone reads and writes the state, and return a future completed on that thread.
 */
public final class Sequence implements AutoCloseable {
  private final InferenceEngine engine;
  private final String label;
  private final int vocab;
  private final int maxContext;
  private final int maxTokensPerOp;
  private final SamplingParams params;
  private final SamplingPipeline pipeline;
  private final RandomGenerator rng;

  // Scheduler-thread state.
  private int[] tokens;
  private int size;
  private int kvLen; // tokens[0, kvLen) have KV in table
  private int shift; // positions KV compaction dropped: the cache holds kvLen - shift slots
  private int compactedUpTo; // tokens[0, compactedUpTo) were compacted; no rollback below it
  private float[]
      pending; // (vocab) raw logits after tokens[size - 1]; non-null only if kvLen == size
  private final BlockTable table;
  private final ArrayDeque<Op<?>> ops = new ArrayDeque<>();
  private boolean closed;
  private SeqStep planned; // the head op's next step, planned right after the last forward
  private boolean inFlight; // a step of this sequence is in the batch being formed or run
  private EngineException closeAfterStep; // a close that arrived while a step was in flight
  private long settledAtStep = -1; // scheduler step after which an op last completed
  private final CompletableFuture<Integer> closedFuture = new CompletableFuture<>();
  private int cachedPromptTokens; // leading prompt tokens whose KV came from the prefix cache

  Sequence(
      InferenceEngine engine,
      BlockTable table,
      int[] prompt,
      SamplingParams params,
      String label,
      int maxContext,
      int maxTokensPerOp) {
    this.engine = engine;
    this.table = table;
    this.label = label;
    this.vocab = engine.vocabSize();
    this.maxContext = maxContext;
    this.maxTokensPerOp = maxTokensPerOp;
    this.params = params;
    this.pipeline = params.isGreedy() ? null : SamplingPipeline.of(params);
    this.rng = TokenSampler.seeded(params.seed());
    this.tokens = Arrays.copyOf(prompt, Math.max(16, prompt.length * 2));
    this.size = prompt.length;
  }

  public String label() {
    return label;
  }

  /** Starts the sequence on {@code tokens} prompt tokens whose KV its table already holds. */
  void startCached(int tokens) {
    kvLen = tokens;
    cachedPromptTokens = tokens;
  }

  /** Leading prompt tokens whose KV came from the prefix cache (not prefilled by this sequence). */
  public int cachedPromptTokens() {
    return cachedPromptTokens;
  }

  public SamplingParams sampling() {
    return params;
  }

  /** Runs the prompt through the model (chunked) and returns the next-token prediction. */
  public CompletableFuture<Position> prefill(ResultOptions options) {
    checkOptions("open.options", options);
    return submit(new ScoreOp(new int[0], options)).thenApply(p -> p.get(0));
  }

  /** Adds tokens to the sequence; they are fed by the next operation that runs the model. */
  public CompletableFuture<Void> append(int[] ids) {
    checkTokens("append.token_ids", ids, 1);
    return submit(new AppendOp(ids));
  }

  /**
   * Adds the rest of a prompt after its compacted prefix (see {@link #compact}): as {@link
   * #append}, but up to the max context rather than max_tokens_per_op; the next op prefills them.
   */
  public CompletableFuture<Void> appendPrompt(int[] ids) {
    checkTokens("open.prompt_ids", ids, 1, maxContext);
    return submit(new AppendOp(ids));
  }

  /** Feeds ids and returns k + 1 predictions: after the current last token and after each id. */
  public CompletableFuture<List<Position>> score(int[] ids, ResultOptions options) {
    checkTokens("score.token_ids", ids, 0);
    checkOptions("score.options", options);
    return submit(new ScoreOp(ids, options));
  }

  /**
   * Generates up to k tokens with the sequence's sampling params and appends them. Stops early
   * (after at least one token) when the most likely next token's probability falls below {@code
   * minTokenProb} (decided before the token is drawn, which keeps sampled drafts lossless: {@link
   * SpeculationMath#draftsOn}).
   */
  public CompletableFuture<Proposal> propose(int k, float minTokenProb, ResultOptions options) {
    if (k < 1 || k > maxTokensPerOp) {
      throw EngineException.invalid("propose.k: " + k + " (expected: 1.." + maxTokensPerOp + ")");
    }
    if (!(minTokenProb >= 0f && minTokenProb <= 1f)) {
      throw EngineException.invalid(
          "propose.min_token_prob: " + minTokenProb + " (expected: [0, 1])");
    }
    checkOptions("propose.options", options);
    return submit(new ProposeOp(k, minTokenProb, options));
  }

  /**
   * Verifies draft tokens with one forward pass and the exact acceptance rule; keeps the accepted
   * tokens plus the correction or bonus token.
   *
   * @param draftDists the draft's transformed distributions, one per draft token; ignored when
   *     greedy
   */
  public CompletableFuture<Verification> verify(
      int[] draft, List<ProbDist> draftDists, ResultOptions options) {
    checkTokens("verify.draft_token_ids", draft, 1);
    checkOptions("verify.options", options);
    if (!params.isGreedy()) {
      checkDraftDists(draftDists, draft.length);
    }
    return submit(new VerifyOp(draft, draftDists, options));
  }

  /**
   * Compacts the prompt's KV cache to {@code budget} slots per KV head chosen by {@code policy}
   * (papers.md §2) and returns the prediction after the prompt; decoding then continues on the
   * compacted cache at the original positions, with no further eviction. The sequence's tokens are
   * the prompt's {@code promptLength} tokens, optionally followed by a draft's answer (SpecKV),
   * which is fed for scoring and then dropped. Once per sequence, before anything is fed past the
   * prompt.
   */
  public CompletableFuture<Compaction> compact(
      KvPolicy policy, int budget, int promptLength, ResultOptions options) {
    return compact(policy, budget, promptLength, options, false);
  }

  /**
   * As {@link #compact(KvPolicy, int, int, ResultOptions)}; with {@code export}, the compacted
   * cache is also copied out ({@link Compaction#cache}) when the compaction dropped slots and
   * re-fed nothing, so that it can be stored and {@linkplain InferenceEngine#openCompacted
   * restored} by a later sequence.
   */
  public CompletableFuture<Compaction> compact(
      KvPolicy policy, int budget, int promptLength, ResultOptions options, boolean export) {
    if (budget < 1) {
      throw EngineException.invalid("compaction.budget: " + budget + " (expected: >= 1)");
    }
    checkOptions("compact.options", options);
    return submit(new CompactOp(policy, budget, promptLength, options, export));
  }

  /**
   * Starts the sequence on a restored compacted cache of its first {@code cache.promptTokens()}
   * tokens, already written into its table's first {@code cache.kept()} slots: as after {@link
   * #compact}, the next token goes to position {@code promptTokens}, and nothing below it can be
   * rolled back.
   */
  void startCompacted(CompactedCache cache) {
    kvLen = cache.promptTokens();
    shift = cache.promptTokens() - cache.kept();
    compactedUpTo = cache.promptTokens();
  }

  private void checkDraftDists(List<ProbDist> draftDists, int count) {
    if (draftDists == null || draftDists.size() != count) {
      throw EngineException.invalid(
          "verify.draft_distributions: "
              + (draftDists == null ? 0 : draftDists.size())
              + " given (expected: "
              + count
              + ", one per draft token, for a sampling session)");
    }
    for (int i = 0; i < draftDists.size(); i++) {
      if (draftDists.get(i).vocabSize() != vocab) {
        throw EngineException.invalid(
            "verify.draft_distributions["
                + i
                + "]: vocab size "
                + draftDists.get(i).vocabSize()
                + " (expected: "
                + vocab
                + ")");
      }
    }
  }

  /**
   * Verifies a token tree in one forward pass (chunked only if the batch budget is smaller than the
   * tree): each node sees the prefix and its ancestors ({@link TreeMask}); the acceptance rule is
   * {@link TreeVerifier}'s. Afterwards the sequence holds the prefix, the accepted path (its KV
   * moved to consecutive slots) and the correction or bonus token (unfed); the other nodes' KV
   * blocks are freed.
   *
   * @param parents per node, its parent (an earlier node) or -1 for a child of the last token
   * @param draftDists per node, the distribution it was drawn from given its earlier siblings;
   *     ignored when greedy
   */
  public CompletableFuture<TreeVerification> verifyTree(
      int[] nodes, int[] parents, List<ProbDist> draftDists, ResultOptions options) {
    checkTokens("verify.draft_token_ids", nodes, 1);
    checkTreeVerifyOptions("verify.options", options);
    TreeVerifier.validate("verify", nodes, parents);
    if (!params.isGreedy()) {
      checkDraftDists(draftDists, nodes.length);
    }
    return submit(new TreeVerifyOp(nodes, parents, draftDists, options));
  }

  /**
   * Scores a token tree in one forward pass and keeps none of it: returns the predictions after the
   * current last token and after each node (nodes + 1), as if each node's path had been fed as a
   * chain; the sequence afterwards is as before (its unfed tokens now fed). A draft model's view of
   * a candidate tree, for drafters that grow one (DySpec, RSD).
   */
  public CompletableFuture<List<Position>> scoreTree(
      int[] nodes, int[] parents, ResultOptions options) {
    checkTokens("score.token_ids", nodes, 1);
    checkOptions("score.options", options);
    TreeVerifier.validate("score", nodes, parents);
    return submit(new TreeScoreOp(nodes, parents, options));
  }

  /** Rolls the sequence back to its first {@code length} tokens, freeing KV blocks past them. */
  public CompletableFuture<Void> truncate(int length) {
    return submit(new TruncateOp(length));
  }

  /** Tokens in the sequence, as seen by the scheduler after every queued op (racy outside it). */
  public int length() {
    return size;
  }

  public int kvBlocks() {
    return table.blockCount();
  }

  /** Cancels queued work and frees every KV block. Idempotent. Completes with the blocks freed. */
  public CompletableFuture<Integer> closeAsync() {
    try {
      engine.scheduler().submit(this::closeNow);
    } catch (EngineException shutDown) {
      // The engine closed every sequence when it shut down.
      closedFuture.complete(0);
    }
    return closedFuture;
  }

  @Override
  public void close() {
    closeAsync();
  }

  // ---- scheduler-thread side ----

  private <T> CompletableFuture<T> submit(Op<T> op) {
    engine
        .scheduler()
        .submit(
            () -> {
              if (closed) {
                op.future.completeExceptionally(
                    new EngineException(
                        EngineException.Kind.NOT_FOUND, "session " + label + " is closed"));
              } else {
                ops.add(op);
              }
            });
    return op.future;
  }

  void closeNow() {
    closeNow(
        new EngineException(EngineException.Kind.CANCELLED, "session " + label + " was closed"));
  }

  /**
   * Fails every queued op with {@code reason} and frees the KV blocks. A step already planned into
   * the current batch will write KV into those blocks, so the close waits until it is delivered.
   */
  void closeNow(EngineException reason) {
    if (closed) {
      return;
    }
    if (inFlight) {
      closeAfterStep = reason;
      return;
    }
    closed = true;
    planned = null;
    for (Op<?> op : ops) {
      op.future.completeExceptionally(reason);
    }
    ops.clear();
    int freed = table.blockCount();
    table.close();
    engine.released(this);
    closedFuture.complete(freed);
  }

  int unfedCount() {
    return size - kvLen;
  }

  boolean hasWork() {
    return !closed && !ops.isEmpty();
  }

  /** Whether an op of this sequence completed after scheduler step {@code step}. */
  boolean settledAfter(long step) {
    return settledAtStep >= step;
  }

  /**
   * The step this sequence adds to the batch being formed (the one planned after the last forward,
   * or the next), or null if it has none. A non-null step keeps the sequence in flight until {@link
   * #deliver} or {@link #failHead}.
   */
  SeqStep plan(int budget) {
    SeqStep step = planned != null ? planned : nextStep(budget);
    planned = null;
    inFlight = step != null;
    return step;
  }

  /**
   * Completes every queued op that needs no forward pass and returns the step the head op needs
   * next (feeding at most {@code budget} tokens), or null if the queue ran dry.
   */
  private SeqStep nextStep(int budget) {
    while (!ops.isEmpty()) {
      Op<?> op = ops.peek();
      try {
        SeqStep step = op.next(budget);
        if (step != null) {
          return step;
        }
      } catch (EngineException e) {
        op.future.completeExceptionally(e);
      } catch (RuntimeException e) {
        op.future.completeExceptionally(
            new EngineException(EngineException.Kind.INTERNAL, "session " + label + ": " + e, e));
      }
      if (op.future.isDone()) {
        ops.poll();
      }
    }
    return null;
  }

  /**
   * Delivers the result of the step returned by {@link #plan}, then settles at once: ops that can
   * now complete do (so their callers can submit follow-ups before the next step is planned), and
   * the head op's next step is planned.
   */
  void deliver(SeqStep step, StepResult result, int budget, long stepNumber) {
    inFlight = false;
    if (closeAfterStep != null) {
      closeNow(closeAfterStep);
      return;
    }
    Op<?> op = ops.peek();
    kvLen += step.tokens().length;
    // Only a causal chain's KV is what its tokens' block keys promise: a tree step's blocks hold
    // siblings (the accepted path is published once it is moved into place and fed past).
    if (step.tree() == null) {
      table.publish(tokens, kvLen);
    }
    op.absorb(step, result);
    if (kvLen == size) {
      float[][] rows = result.logits();
      pending = rows[rows.length - 1];
    }
    int before = ops.size();
    planned = nextStep(budget);
    if (ops.size() < before || (planned == null && ops.isEmpty())) {
      settledAtStep = stepNumber;
    }
  }

  /** The step planned for this sequence will not run (the scheduler thread is failing). */
  void unplan() {
    inFlight = false;
    planned = null;
  }

  /** Fails the head op after a failed forward; the state is as before the step. */
  void failHead(EngineException e) {
    unplan();
    Op<?> op = ops.poll();
    if (op != null) {
      op.future.completeExceptionally(e);
    }
    if (closeAfterStep != null) {
      closeNow(closeAfterStep);
    }
  }

  // ---- shared mechanics ----

  private void checkTokens(String field, int[] ids, int min) {
    checkTokens(field, ids, min, maxTokensPerOp);
  }

  private void checkTokens(String field, int[] ids, int min, int max) {
    if (ids.length < min || ids.length > max) {
      throw EngineException.invalid(
          field + ": " + ids.length + " tokens (expected: " + min + ".." + max + ")");
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw EngineException.invalid(
            field + "[" + i + "]: " + ids[i] + " (expected: 0.." + (vocab - 1) + ")");
      }
    }
  }

  /** Options of any op but a tree verify: node_top_k must be 0. */
  private void checkOptions(String field, ResultOptions options) {
    checkTopK(field, options);
    if (options.nodeTopK() != 0) {
      throw EngineException.invalid(
          field
              + ".node_top_k: "
              + options.nodeTopK()
              + " (expected: 0; only a tree verify, with tree_parents, reports every node)");
    }
  }

  /** A tree verify's options: node_top_k in 0..vocab. */
  private void checkTreeVerifyOptions(String field, ResultOptions options) {
    checkTopK(field, options);
    if (options.nodeTopK() < 0 || options.nodeTopK() > vocab) {
      throw EngineException.invalid(
          field + ".node_top_k: " + options.nodeTopK() + " (expected: 0.." + vocab + ")");
    }
  }

  private void checkTopK(String field, ResultOptions options) {
    if (options.topKProbs() < 0 || options.topKProbs() > vocab) {
      throw EngineException.invalid(
          field + ".top_k_probs: " + options.topKProbs() + " (expected: 0.." + vocab + ")");
    }
  }

  private void requireRoom(String field, int more) {
    if (size + more > maxContext) {
      throw EngineException.invalid(
          field
              + ": sequence would be "
              + (size + more)
              + " tokens (expected: at most max context "
              + maxContext
              + ")");
    }
  }

  private void push(int[] ids) {
    if (ids.length == 0) {
      return; // nothing new: the prediction after the last token still stands
    }
    if (size + ids.length > tokens.length) {
      tokens = Arrays.copyOf(tokens, Math.max(tokens.length * 2, size + ids.length));
    }
    System.arraycopy(ids, 0, tokens, size, ids.length);
    size += ids.length;
    pending = null;
  }

  /**
   * The next chunk of unfed tokens, with logit rows for every position at or after {@code from}.
   */
  private SeqStep feed(int from, int budget) {
    return feed(from, Math.min(size - kvLen, budget), false);
  }

  /**
   * Feeds the next {@code n} unfed tokens, with logit rows for positions at or after {@code from}.
   */
  private SeqStep feed(int from, int n, boolean capture) {
    table.reserve(kvLen - shift + n);
    int first = Math.max(from, kvLen);
    int last = kvLen + n - 1;
    int[] rows = new int[Math.max(0, last - first + 1)];
    for (int i = 0; i < rows.length; i++) {
      rows[i] = first + i - kvLen;
    }
    return new SeqStep(
        Arrays.copyOfRange(tokens, kvLen, kvLen + n),
        kvLen - shift,
        table,
        rows,
        capture,
        shift,
        null);
  }

  private Position position(float[] logits, ResultOptions options, int forcedToken) {
    return position(logits, pipeline == null ? null : pipeline.probs(logits), options, forcedToken);
  }

  /**
   * The position for {@code logits}, whose transformed distribution {@code dist} the caller already
   * has (null for greedy sessions).
   */
  private Position position(float[] logits, ProbDist dist, ResultOptions options, int forcedToken) {
    Distributions.RawStats stats = Distributions.rawStats(logits);
    int argmax = stats.argmax();
    float maxProb = stats.maxProb();
    float entropy = stats.entropyBits();
    float[] raw = null;
    int token;
    float tokenProb;
    if (forcedToken >= 0) {
      token = forcedToken;
    } else {
      token = dist == null ? argmax : TokenSampler.sample(dist, rng);
    }
    if (dist != null) {
      tokenProb = dist.prob(token);
    } else if (token == argmax) {
      tokenProb = maxProb;
    } else {
      raw = Distributions.softmax(logits);
      tokenProb = raw[token];
    }
    ProbDist full = null;
    ProbDist top = null;
    if (options.fullDistribution() || options.topKProbs() > 0) {
      ProbDist shown = shown(logits, dist, raw);
      full = options.fullDistribution() ? shown : null;
      top = options.topKProbs() > 0 ? Distributions.topK(shown, options.topKProbs()) : null;
    }
    return new Position(token, tokenProb, argmax, maxProb, entropy, top, full);
  }

  /**
   * The distribution reported for {@code logits}: the transformed {@code dist}, or for greedy
   * sessions (null) the raw softmax ({@code raw} if the caller has it), since the one-hot they
   * decode with says nothing.
   */
  private static ProbDist shown(float[] logits, ProbDist dist, float[] raw) {
    return dist != null ? dist : ProbDist.dense(raw != null ? raw : Distributions.softmax(logits));
  }

  /**
   * An operation on the scheduler thread: {@link #next} either finishes it or asks for a forward.
   */
  private abstract static class Op<T> {
    final CompletableFuture<T> future = new CompletableFuture<>();

    abstract SeqStep next(int budget);

    void absorb(SeqStep step, StepResult result) {}
  }

  private final class AppendOp extends Op<Void> {
    private final int[] ids;

    AppendOp(int[] ids) {
      this.ids = ids;
    }

    @Override
    SeqStep next(int budget) {
      requireRoom("append.token_ids", ids.length);
      push(ids);
      future.complete(null);
      return null;
    }
  }

  private final class TruncateOp extends Op<Void> {
    private final int length;

    TruncateOp(int length) {
      this.length = length;
    }

    @Override
    SeqStep next(int budget) {
      if (length < 1 || length > size) {
        throw EngineException.invalid(
            "truncate.length: " + length + " (expected: 1.." + size + ", the current length)");
      }
      if (length < size) {
        if (kvLen >= length && length - 1 < compactedUpTo) {
          throw EngineException.precondition(
              "truncate.length: "
                  + length
                  + " (expected: above "
                  + compactedUpTo
                  + ", the KV-compacted prompt, which cannot be re-fed)");
        }
        size = length;
        pending = null;
        if (kvLen >= length) {
          // The logits after the new last token are not kept: re-feed that token next time.
          kvLen = length - 1;
          table.truncate(kvLen - shift);
        }
      }
      future.complete(null);
      return null;
    }
  }

  /** Feeds ids and collects the k + 1 predictions after tokens[start - 1 ..]. */
  private class ScoreOp extends Op<List<Position>> {
    final int[] ids;
    final ResultOptions options;
    float[][] collected; // (k + 1, vocab) raw logits
    int start =
        -1; // index of the first prediction's prefix end, i.e. the sequence length before ids

    ScoreOp(int[] ids, ResultOptions options) {
      this.ids = ids;
      this.options = options;
    }

    @Override
    SeqStep next(int budget) {
      if (start < 0) {
        requireRoom(fieldName(), ids.length);
        table.reserve(Math.min(size + ids.length, kvLen + budget) - shift);
        start = size;
        collected = new float[ids.length + 1][];
        if (pending != null) {
          collected[0] = pending;
        }
        push(ids);
      }
      if (kvLen < size) {
        return feed(start - 1, budget);
      }
      finish();
      return null;
    }

    String fieldName() {
      return "score.token_ids";
    }

    @Override
    void absorb(SeqStep step, StepResult result) {
      for (int r = 0; r < step.logitRows().length; r++) {
        int index = step.firstPosition() + step.logitRows()[r];
        collected[index - (start - 1)] = result.logits()[r];
      }
    }

    void finish() {
      List<Position> out = new ArrayList<>(collected.length);
      for (float[] row : collected) {
        out.add(position(row, options, -1));
      }
      future.complete(out);
    }
  }

  private final class VerifyOp extends Op<Verification> {
    private final ScoreOp score;
    private final List<ProbDist> draftDists;

    VerifyOp(int[] draft, List<ProbDist> draftDists, ResultOptions options) {
      this.draftDists = draftDists;
      this.score =
          new ScoreOp(draft, options) {
            @Override
            String fieldName() {
              return "verify.draft_token_ids";
            }

            @Override
            void finish() {}
          };
    }

    @Override
    SeqStep next(int budget) {
      SeqStep step = score.next(budget);
      if (step != null) {
        return step;
      }
      int[] draft = score.ids;
      int k = draft.length;
      SpeculativeVerifier.Outcome outcome;
      ProbDist[] p = null; // the target's transformed distributions; sampling only
      if (params.isGreedy()) {
        int[] argmax = new int[k + 1];
        for (int i = 0; i <= k; i++) {
          argmax[i] = Distributions.argmax(score.collected[i]);
        }
        outcome = SpeculativeVerifier.greedy(draft, argmax);
      } else {
        p = new ProbDist[k + 1];
        for (int i = 0; i <= k; i++) {
          p[i] = pipeline.probs(score.collected[i]);
        }
        outcome = SpeculativeVerifier.sample(draft, draftDists.toArray(new ProbDist[0]), p, rng);
      }
      // Per emitted token: the raw stats (entropy for EAD-style signals and displays), plus top-k
      // or the full distribution when asked.
      List<Position> positions = new ArrayList<>(outcome.accepted() + 1);
      for (int i = 0; i <= outcome.accepted(); i++) {
        int emitted = i < outcome.accepted() ? draft[i] : outcome.nextToken();
        positions.add(
            position(score.collected[i], p == null ? null : p[i], score.options, emitted));
      }
      // Keep KV for the prefix and the accepted drafts; the correction/bonus token stays unfed.
      size = score.start + outcome.accepted();
      kvLen = size;
      table.truncate(kvLen - shift);
      push(new int[] {outcome.nextToken()});
      future.complete(
          new Verification(outcome.accepted(), outcome.nextToken(), outcome.bonus(), positions));
      return null;
    }

    @Override
    void absorb(SeqStep step, StepResult result) {
      score.absorb(step, result);
    }
  }

  /**
   * Feeds the prompt (and any draft answer), capturing the rows the policy observes, compacts the
   * cache, drops the answer, and re-feeds what the policy asks for.
   */
  private final class CompactOp extends Op<Compaction> {
    private final KvPolicy policy;
    private final int budget;
    private final int promptLength;
    private final ResultOptions options;
    private boolean started;
    private boolean compacted;
    private int answer; // draft-answer tokens after the prompt
    private int observedFrom; // first captured row
    private AttentionRows rows; // null when the policy reads no attention
    private int keptSlots;
    private int freedBlocks;
    private final boolean export;
    private CompactedCache cache; // copied out when exported

    CompactOp(
        KvPolicy policy, int budget, int promptLength, ResultOptions options, boolean export) {
      this.policy = policy;
      this.budget = budget;
      this.promptLength = promptLength;
      this.options = options;
      this.export = export;
    }

    @Override
    SeqStep next(int stepBudget) {
      if (!started) {
        start();
      }
      if (!compacted) {
        if (kvLen < size) {
          int end = kvLen < observedFrom ? observedFrom : size;
          int n = Math.min(end - kvLen, stepBudget);
          return feed(size - 1, n, kvLen >= observedFrom && rows != null);
        }
        compactNow();
      }
      if (pending == null) {
        return feed(size - 1, stepBudget);
      }
      DecoderModel model = engine.model();
      KvBlockPool pool = engine.pool();
      future.complete(
          new Compaction(
              position(pending, options, -1),
              policy.name(),
              promptLength,
              keptSlots,
              promptLength - keptSlots,
              answer,
              freedBlocks,
              KvBlockPool.bytesPerBlock(
                  model.config().numLayers(), pool.kvHeads(), pool.headDim(), 1, pool.dtype()),
              cache));
      return null;
    }

    private void start() {
      started = true;
      if (compactedUpTo > 0) {
        throw EngineException.precondition(
            "compact: session " + label + " was already compacted (expected: once)");
      }
      if (promptLength < 1 || promptLength > size) {
        throw EngineException.invalid(
            "compact.prompt_length: "
                + promptLength
                + " (expected: 1.."
                + size
                + ", the session's tokens)");
      }
      answer = size - promptLength;
      boolean keepAll = promptLength <= budget;
      int observed = keepAll ? 0 : Math.min(policy.observedQueries(answer), size);
      observedFrom = size - observed;
      // The rows the policy observes must be fed here to be captured, and with nothing to drop
      // the answer's KV must not stay: KV the prefix cache supplied past that point is re-fed.
      int fedUpTo = keepAll ? promptLength - 1 : observed > 0 ? observedFrom : size - 1;
      if (kvLen > fedUpTo) {
        kvLen = fedUpTo;
        table.truncate(kvLen);
        pending = null;
        cachedPromptTokens = Math.min(cachedPromptTokens, kvLen);
      }
      if (keepAll) {
        // Nothing to drop: the answer (if any) goes unread and the prompt is prefilled as is.
        if (answer > 0) {
          size = promptLength;
          pending = null;
        }
        compacted = true;
        keptSlots = promptLength;
        return;
      }
      if (observed > 0) {
        int layers = engine.model().config().numLayers();
        int heads = engine.model().config().numHeads();
        int kvHeads = engine.pool().kvHeads();
        rows =
            policy.summedQueries()
                ? AttentionRows.summed(layers, heads, kvHeads, observed, size)
                : new AttentionRows(layers, heads, kvHeads, observed, size);
      }
    }

    private void compactNow() {
      CapturedAttention attention = rows == null ? null : rows.build();
      KvSelection selection =
          policy.select(
              engine.model().config().numLayers(),
              engine.pool().kvHeads(),
              attention,
              promptLength,
              budget);
      int cached = promptLength - selection.refeed();
      for (int[][] layer : selection.kept()) {
        for (int[] head : layer) {
          if (head.length > 0 && head[head.length - 1] >= cached) {
            throw new IllegalStateException(
                policy.name() + " kept position " + head[head.length - 1] + " of " + cached);
          }
        }
      }
      KvCompactor.Outcome outcome = KvCompactor.apply(engine.pool(), table, selection, kvLen);
      boolean keepsLogits = selection.refeed() == 0 && answer == 0;
      size = promptLength;
      kvLen = cached;
      shift = cached - outcome.keptSlots();
      compactedUpTo = cached;
      if (!keepsLogits) {
        pending = null; // the prefill's logits were after the answer, or read the re-fed token
      }
      keptSlots = outcome.keptSlots() + selection.refeed();
      freedBlocks = outcome.freedBlocks();
      compacted = true;
      if (export && selection.refeed() == 0 && answer == 0) {
        cache =
            new CompactedCache(
                promptLength,
                selection.kept(),
                KvCompactor.export(engine.pool(), table, outcome.keptSlots()));
      }
    }

    @Override
    void absorb(SeqStep step, StepResult result) {
      if (!compacted && step.captureAttention()) {
        rows.add(result.attention(), step.tokens().length, step.length());
      }
    }
  }

  /**
   * Feeds the unfed tokens and a tree's nodes as one tree (the unfed tokens as a chain in front of
   * it), collecting the logits after the prefix and after every node; {@link #finish} then decides
   * what the sequence keeps.
   */
  private abstract class TreeFeedOp<T> extends Op<T> {
    final int[] nodes;
    final int[] parents;
    final ResultOptions options;
    private TreeMask mask; // over slots [base, start + nodes); set when the op starts
    int start; // the sequence length before the nodes: node j goes to index start + j
    float[][] collected; // (nodes + 1, vocab) raw logits after the prefix and each node

    TreeFeedOp(int[] nodes, int[] parents, ResultOptions options) {
      this.nodes = nodes;
      this.parents = parents;
      this.options = options;
    }

    abstract String field();

    @Override
    SeqStep next(int budget) {
      if (mask == null) {
        TreeMask shape = new TreeMask(0, parents);
        int depth = 0; // nodes on the longest path
        for (int j = 0; j < nodes.length; j++) {
          depth = Math.max(depth, shape.depth(j) + 1);
        }
        if (size + depth > maxContext) {
          throw EngineException.invalid(
              field()
                  + ".tree_parents: a path of "
                  + depth
                  + " nodes after "
                  + size
                  + " tokens (expected: at most max context "
                  + maxContext
                  + ")");
        }
        requireRoom(field() + ".draft_token_ids", nodes.length); // every node takes a slot
        int base = kvLen - shift; // slots: a compacted cache holds fewer than its positions
        int unfed = size - kvLen;
        int[] all = new int[unfed + nodes.length];
        for (int j = 0; j < all.length; j++) {
          int p = j < unfed ? -1 : parents[j - unfed];
          all[j] = j < unfed ? j - 1 : p < 0 ? unfed - 1 : p + unfed;
        }
        mask = new TreeMask(base, all);
        start = size;
        collected = new float[nodes.length + 1][];
        if (pending != null) {
          collected[0] = pending;
        }
        table.reserve(start - shift + nodes.length);
        push(nodes);
      }
      if (kvLen < size) {
        int n = Math.min(size - kvLen, budget);
        int first = Math.max(start - 1, kvLen);
        int[] rows = new int[Math.max(0, kvLen + n - first)];
        for (int i = 0; i < rows.length; i++) {
          rows[i] = first + i - kvLen;
        }
        return new SeqStep(
            Arrays.copyOfRange(tokens, kvLen, kvLen + n),
            kvLen - shift,
            table,
            rows,
            false,
            shift,
            mask);
      }
      finish();
      return null;
    }

    @Override
    void absorb(SeqStep step, StepResult result) {
      for (int r = 0; r < step.logitRows().length; r++) {
        int index = step.firstPosition() + step.logitRows()[r];
        collected[index - (start - 1)] = result.logits()[r];
      }
    }

    abstract void finish();
  }

  /** Scores a tree and keeps none of it: the sequence is as before, its unfed tokens fed. */
  private final class TreeScoreOp extends TreeFeedOp<List<Position>> {
    TreeScoreOp(int[] nodes, int[] parents, ResultOptions options) {
      super(nodes, parents, options);
    }

    @Override
    String field() {
      return "score";
    }

    @Override
    void finish() {
      List<Position> out = new ArrayList<>(collected.length);
      for (float[] row : collected) {
        out.add(position(row, options, -1));
      }
      size = start;
      kvLen = start;
      table.truncate(kvLen - shift);
      pending = collected[0];
      future.complete(out);
    }
  }

  /** Verifies a tree, keeping the accepted path and the correction or bonus token. */
  private final class TreeVerifyOp extends TreeFeedOp<TreeVerification> {
    private final List<ProbDist> draftDists;

    TreeVerifyOp(int[] nodes, int[] parents, List<ProbDist> draftDists, ResultOptions options) {
      super(nodes, parents, options);
      this.draftDists = draftDists;
    }

    @Override
    String field() {
      return "verify";
    }

    @Override
    void finish() {
      int k = nodes.length;
      TreeVerifier.Outcome outcome;
      ProbDist[] p = null; // the target's transformed distributions; sampling only
      if (params.isGreedy()) {
        int[] argmax = new int[k + 1];
        for (int i = 0; i <= k; i++) {
          argmax[i] = Distributions.argmax(collected[i]);
        }
        outcome = TreeVerifier.greedy(nodes, parents, argmax);
      } else {
        p = new ProbDist[k + 1];
        for (int i = 0; i <= k; i++) {
          p[i] = pipeline.probs(collected[i]);
        }
        outcome = TreeVerifier.sample(nodes, parents, draftDists.toArray(new ProbDist[0]), p, rng);
      }
      int[] path = outcome.path();
      List<Position> positions = new ArrayList<>(path.length + 1);
      for (int d = 0; d <= path.length; d++) {
        int row = d == 0 ? 0 : path[d - 1] + 1;
        int emitted = d < path.length ? nodes[path[d]] : outcome.nextToken();
        positions.add(position(collected[row], p == null ? null : p[row], options, emitted));
      }
      // The path's KV moves to consecutive slots (ascending, so no source is overwritten before
      // it is read: node path[d] >= d); the slots past it are rolled back.
      for (int d = 0; d < path.length; d++) {
        tokens[start + d] = nodes[path[d]];
        SlotMoves.move(
            engine.pool(), table.slot(start - shift + path[d]), table.slot(start - shift + d));
      }
      List<ProbDist> nodeTop = new ArrayList<>(options.nodeTopK() > 0 ? k : 0);
      for (int j = 0; j < k && options.nodeTopK() > 0; j++) {
        ProbDist shown = shown(collected[j + 1], p == null ? null : p[j + 1], null);
        nodeTop.add(Distributions.topK(shown, options.nodeTopK()));
      }
      size = start + path.length;
      kvLen = size;
      table.truncate(kvLen - shift);
      push(new int[] {outcome.nextToken()});
      future.complete(
          new TreeVerification(path, outcome.nextToken(), outcome.bonus(), positions, nodeTop));
    }
  }

  private final class ProposeOp extends Op<Proposal> {
    private final int k;
    private final float minTokenProb;
    private final ResultOptions options;
    private final int[] proposed;
    private final List<Position> positions = new ArrayList<>();
    private boolean checked;

    ProposeOp(int k, float minTokenProb, ResultOptions options) {
      this.k = k;
      this.minTokenProb = minTokenProb;
      this.options = options;
      this.proposed = new int[k];
    }

    @Override
    SeqStep next(int budget) {
      if (!checked) {
        requireRoom("propose.k", k);
        checked = true;
      }
      while (positions.size() < k) {
        if (pending == null) {
          return feed(size - 1, budget);
        }
        Position p = position(pending, options, -1);
        if (!positions.isEmpty() && !SpeculationMath.draftsOn(p.argmaxProb(), minTokenProb)) {
          break;
        }
        proposed[positions.size()] = p.tokenId();
        positions.add(p);
        push(new int[] {p.tokenId()});
      }
      future.complete(new Proposal(Arrays.copyOf(proposed, positions.size()), positions));
      return null;
    }
  }
}
