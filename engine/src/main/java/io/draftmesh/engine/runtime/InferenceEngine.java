package io.draftmesh.engine.runtime;

import ai.djl.ndarray.NDManager;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.compaction.CompactedCache;
import io.draftmesh.engine.compaction.KvCompactor;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.PrefixCache;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.model.cpu.VectorModel;
import io.draftmesh.engine.sampling.SamplingParams;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One loaded model ready to serve sequences: the decoder, its tokenizer, the paged KV pool and the
 * continuous-batching scheduler. Workers and in-process benchmarks use it alike.
 */
public final class InferenceEngine implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(InferenceEngine.class);

  private final EngineConfig config;
  private final NDManager manager;
  private final DecoderModel model;
  private final TextTokenizer tokenizer;
  private final KvBlockPool pool;
  private final Scheduler scheduler;
  private final AtomicInteger active = new AtomicInteger();
  private final AtomicInteger opened = new AtomicInteger();
  private final AtomicLong promptTokensCached = new AtomicLong();
  private final AtomicLong promptTokensComputed = new AtomicLong();
  private final String modelId;

  private InferenceEngine(EngineConfig config, NDManager manager, Checkpoint ckpt) {
    this.config = config;
    this.manager = manager;
    this.modelId = ckpt.dir().getFileName().toString();
    this.model = loadModel(config, ckpt, manager);
    TextTokenizer tok = null;
    KvBlockPool kv = null;
    try {
      tok = TextTokenizer.load(ckpt.tokenizerJson());
      kv = pool(config, model.config());
    } catch (RuntimeException | Error e) {
      if (tok != null) {
        tok.close();
      }
      model.close();
      throw e;
    }
    this.tokenizer = tok;
    this.pool = kv;
    log.info("{}: {}", modelId, model.describe());
    this.scheduler = new Scheduler(model, pool, config.maxBatchTokens(), "engine-" + modelId);
  }

  /**
   * The decoder for {@code config.backend()}: auto takes the Vector API backend when this JVM has
   * the module (it supports every checkpoint the DJL one does), else DJL.
   */
  private static DecoderModel loadModel(EngineConfig config, Checkpoint ckpt, NDManager manager) {
    Backend backend = config.backend().resolve();
    if (config.backend() == Backend.AUTO && backend == Backend.DJL) {
      log.warn(
          "backend auto: module jdk.incubator.vector is not in this JVM (start it with"
              + " --add-modules jdk.incubator.vector); using djl");
    }
    if (backend == Backend.VECTOR) {
      return VectorModel.load(ckpt, config.maxContext(), config.threads(), true);
    }
    return LlamaModel.load(ckpt, manager, config.maxContext());
  }

  private static KvBlockPool pool(EngineConfig config, ModelConfig mc) {
    return KvBlockPool.withBudget(
        mc.numLayers(),
        mc.numKvHeads(),
        mc.headDim(),
        config.kvBlockSize(),
        config.kvBudgetBytes(),
        config.kvDtype());
  }

  /** Loads the checkpoint in {@code config.modelDir()} and starts the scheduler. */
  public static InferenceEngine load(EngineConfig config) {
    NDManager manager = NDManager.newBaseManager();
    try (Checkpoint ckpt = Checkpoint.load(config.modelDir())) {
      return new InferenceEngine(config, manager, ckpt);
    } catch (IOException e) {
      manager.close();
      throw new UncheckedIOException(
          "cannot load model from " + config.modelDir() + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /**
   * Starts a sequence with a prompt; nothing runs until its first operation (usually {@link
   * Sequence#prefill}). Fails with INVALID_ARGUMENT for a bad prompt or sampling params and
   * RESOURCE_EXHAUSTED when {@code maxSessions} sequences are open.
   */
  public Sequence open(int[] prompt, SamplingParams sampling, String label) {
    return open(prompt, sampling, label, null);
  }

  /**
   * Starts a sequence whose first {@code cache.promptTokens()} prompt tokens have the compacted KV
   * {@code cache} (e.g. restored from kvcache-service): it is written into the sequence's own
   * blocks, and the next operation feeds only the rest of the prompt, at the original positions, on
   * the compacted cache, as after {@link Sequence#compact}. Fails as {@link #open} does, and with
   * IllegalArgumentException when the cache does not fit this model or prompt (at least the last
   * prompt token must follow it: its logits are not part of the cache).
   */
  public Sequence openCompacted(
      int[] prompt, CompactedCache cache, SamplingParams sampling, String label) {
    checkCache(prompt, cache);
    return open(prompt, sampling, label, cache);
  }

  private void checkCache(int[] prompt, CompactedCache cache) {
    int n = cache.promptTokens();
    if (n < 1 || n >= prompt.length) {
      throw new IllegalArgumentException(
          "compacted cache of "
              + n
              + " tokens (expected: 1.."
              + (prompt.length - 1)
              + ", shorter than the prompt)");
    }
    int[][][] positions = cache.positions();
    int kept = cache.kept();
    if (positions.length != pool.layers() || kept < 1) {
      throw new IllegalArgumentException(
          "compacted cache of " + positions.length + " layers (expected: " + pool.layers() + ")");
    }
    for (int[][] layer : positions) {
      if (layer.length != pool.kvHeads()) {
        throw new IllegalArgumentException(
            "compacted cache of " + layer.length + " kv heads (expected: " + pool.kvHeads() + ")");
      }
      for (int[] head : layer) {
        if (head.length != kept) {
          throw new IllegalArgumentException(
              "compacted cache: heads keep " + head.length + " and " + kept + " slots");
        }
        for (int i = 0; i < kept; i++) {
          if (head[i] < 0 || head[i] >= n || (i > 0 && head[i] <= head[i - 1])) {
            throw new IllegalArgumentException(
                "compacted cache: position " + head[i] + " at " + i + " (expected: ascending)");
          }
        }
      }
    }
  }

  private Sequence open(
      int[] prompt, SamplingParams sampling, String label, CompactedCache compacted) {
    int maxContext = model.maxContext();
    if (prompt.length < 1 || prompt.length > maxContext) {
      throw EngineException.invalid(
          "open.prompt_ids: " + prompt.length + " tokens (expected: 1.." + maxContext + ")");
    }
    int vocab = vocabSize();
    for (int i = 0; i < prompt.length; i++) {
      if (prompt[i] < 0 || prompt[i] >= vocab) {
        throw EngineException.invalid(
            "open.prompt_ids[" + i + "]: " + prompt[i] + " (expected: 0.." + (vocab - 1) + ")");
      }
    }
    sampling.validate(vocab);
    if (active.incrementAndGet() > config.maxSessions()) {
      active.decrementAndGet();
      throw EngineException.exhausted(
          "sessions: all " + config.maxSessions() + " are in use (expected: a free session)");
    }
    String name = label == null || label.isEmpty() ? "seq-" + opened.incrementAndGet() : label;
    BlockTable table = new BlockTable(pool);
    Sequence s =
        new Sequence(this, table, prompt, sampling, name, maxContext, config.maxTokensPerOp());
    int cached = 0;
    try {
      if (compacted != null) {
        // Private blocks, never keyed: their KV is not that of the tokens a block key names.
        table.reserve(compacted.kept());
        table.ownForRewrite(compacted.kept());
        KvCompactor.restore(pool, table, compacted.kept(), compacted.kv());
        s.startCompacted(compacted);
      } else {
        // The last prompt token is always fed, so the prefill yields its logits: a fully cached
        // prompt reuses every block but the one holding it.
        int reusable = (prompt.length - 1) / pool.blockSize();
        cached = reusable == 0 ? 0 : table.adopt(pool.prefixCache().keys(prompt, reusable));
        s.startCached(cached);
      }
      scheduler.register(s);
    } catch (RuntimeException e) {
      table.close();
      active.decrementAndGet(); // the engine is down or the pool full: the session was never taken
      throw e;
    }
    int restored = compacted == null ? 0 : compacted.promptTokens();
    promptTokensCached.addAndGet(cached);
    promptTokensComputed.addAndGet(prompt.length - cached - restored);
    return s;
  }

  /**
   * Completes with the Error (e.g. OutOfMemoryError) that ended the scheduler thread: every session
   * was failed with UNAVAILABLE and freed, and every later call is refused with UNAVAILABLE. Never
   * completes when the engine is closed normally.
   */
  public java.util.concurrent.CompletableFuture<Throwable> failure() {
    return scheduler.failure();
  }

  /** Runs a short sequence through every code path once, so the first client pays no warm-up. */
  public void warmUp() {
    Sequence s = open(new int[] {0, 1, 2}, SamplingParams.GREEDY, "warm-up");
    try {
      s.prefill(ResultOptions.NONE).join();
      s.propose(2, 0f, ResultOptions.NONE).join();
      s.verify(new int[] {1, 2}, null, ResultOptions.NONE).join();
    } finally {
      s.closeAsync().join();
    }
  }

  public EngineInfo info() {
    ModelConfig mc = model.config();
    return new EngineInfo(
        modelId,
        mc.architecture(),
        mc.vocabSize(),
        tokenizer.sha256(),
        model.maxContext(),
        mc.numParameters(),
        mc.numLayers(),
        mc.eosTokenId(),
        mc.bosTokenId(),
        config.maxSessions(),
        config.maxTokensPerOp(),
        pool.blockSize(),
        pool.totalBlocks(),
        pool.freeBlocks(),
        active.get(),
        model.weightDtype(),
        model.backend() == Backend.DJL ? manager.getDevice().toString() : "cpu()",
        model.describe(),
        pool.prefixCache().stats().cachedBlocks(),
        promptTokensCached.get(),
        promptTokensComputed.get(),
        pool.dtype().id());
  }

  public int vocabSize() {
    return model.config().vocabSize();
  }

  public TextTokenizer tokenizer() {
    return tokenizer;
  }

  public DecoderModel model() {
    return model;
  }

  public EngineConfig config() {
    return config;
  }

  public int activeSessions() {
    return active.get();
  }

  public int freeBlocks() {
    return pool.freeBlocks();
  }

  /** Forward steps run so far (a batched step counts once). */
  public long steps() {
    return scheduler.steps();
  }

  /** Prompt tokens opened sequences took from the prefix cache instead of prefilling. */
  public long promptTokensCached() {
    return promptTokensCached.get();
  }

  /** Prompt tokens opened sequences prefill (every prompt token not cached). */
  public long promptTokensComputed() {
    return promptTokensComputed.get();
  }

  /** The KV pool's prefix cache (full blocks shared between sequences by content). */
  public PrefixCache prefixCache() {
    return pool.prefixCache();
  }

  /** The paged KV pool the engine's sequences share. */
  public KvBlockPool pool() {
    return pool;
  }

  /**
   * NDArrays alive under the engine's manager tree: constant between steps unless something leaks
   * (the DJL backend's weights and KV views; none for the vector backend).
   */
  public int liveArrays() {
    return countArrays(manager);
  }

  private static int countArrays(NDManager m) {
    return m.getManagedArrays().size();
  }

  Scheduler scheduler() {
    return scheduler;
  }

  void released(Sequence s) {
    scheduler.unregister(s);
    active.decrementAndGet();
  }

  @Override
  public void close() {
    boolean stopped = scheduler.close();
    tokenizer.close();
    if (stopped) {
      // A scheduler thread that did not stop may still be in a forward over the pool's memory.
      pool.close();
    }
    model.close();
    manager.close();
  }
}
