package io.draftmesh.bench;

import ai.djl.ndarray.NDManager;
import io.draftmesh.assembly.RandomModels;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.cpu.VectorModel;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.engine.runtime.ResultOptions;
import io.draftmesh.engine.runtime.Sequence;
import io.draftmesh.engine.sampling.SamplingParams;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Measures one model in one engine on one backend: step costs through the runtime (sessions on the
 * scheduler) and through the raw batched forward beside them, raw prefill of 256 and 512 tokens,
 * batched decode throughput, and (DJL only) the matmul floor of PyTorch's kernels.
 *
 * <p>Runtime and raw samples are taken interleaved (one of each per iteration) so that a noisy
 * neighbour shifts both alike and their difference, the runtime overhead, stays meaningful. Every
 * step runs at the same context: each session is truncated back to the prefill length between
 * phases.
 */
final class ModelBench {
  static final int PREFILL_TOKENS = 512;
  static final int[] LONG_PREFILLS = {256, 512}; // raw prefill lengths, capped by the model
  static final int DRAFT_K = 4; // verify feeds k + 1 = 5 tokens
  static final int MAX_SESSIONS = 8;
  static final int GROWTH = 100; // tokens a session grows by within a phase (verify: 18 x 5)
  private static final int KV_BLOCK = 16;
  private static final long OP_TIMEOUT_S = 300;
  private static final int RAW_BATCH_STEPS = 3;

  /** Iteration counts. */
  record Plan(
      int decodeWarmup,
      int decodeSamples,
      int verifyWarmup,
      int verifySamples,
      int rawPrefillSamples,
      int batchTokens,
      int batchReps,
      int[] sessionCounts) {

    static Plan full() {
      return new Plan(4, 32, 2, 16, 3, 16, 3, new int[] {1, 4, 8});
    }

    static Plan quick() {
      return new Plan(2, 6, 1, 4, 1, 4, 1, new int[] {1, 4, 8});
    }
  }

  /**
   * Aggregate decode throughput of {@code sessions} concurrent sessions through the runtime, the
   * average number of sequences per forward step it achieved, and the raw batched forward of as
   * many sequences (one token each) beside it: the ceiling the scheduler could reach.
   */
  record Batch(int sessions, Stats tokensPerSec, double avgBatch, Stats rawTokensPerSec) {}

  /** Raw prefill of {@code tokens} tokens (the model may cap a requested length). */
  record Prefill(int requested, int tokens, Stats ms) {}

  /** Everything measured for one model on one backend; times in ms. */
  record Result(
      String name,
      String label,
      String backend,
      String describe,
      long params,
      long weightBytesPerStep,
      long kvBytesPerStep,
      int context,
      Stats decodeRuntime,
      Stats decodeRaw,
      Stats verifyRuntime,
      Stats verifyRaw,
      Stats prefillRuntime,
      Stats prefillRaw,
      Stats matmulFloor, // null for the vector backend: PyTorch's kernels are not its floor
      long matmulFloorBytes,
      List<Prefill> prefills,
      List<Batch> batches) {

    /** Weight bytes one decode reads over the memory bandwidth {@code gbps}: the read floor. */
    double readFloorMs(double gbps) {
      return weightBytesPerStep / (gbps * 1e9) * 1e3;
    }

    double decodeOverReadFloor(double gbps) {
      return decodeRuntime.median() / readFloorMs(gbps);
    }

    double rawDecodeOverReadFloor(double gbps) {
      return decodeRaw.median() / readFloorMs(gbps);
    }

    double verifyOverDecode() {
      return verifyRuntime.median() / decodeRuntime.median();
    }

    double rawVerifyOverDecode() {
      return verifyRaw.median() / decodeRaw.median();
    }

    double runtimeOverheadMs() {
      return decodeRuntime.median() - decodeRaw.median();
    }

    /** Weight bytes per second during runtime decode, GB/s. */
    double weightGbps() {
      return weightBytesPerStep / (decodeRuntime.median() / 1e3) / 1e9;
    }

    double floorGbps() {
      return matmulFloorBytes / (matmulFloor.median() / 1e3) / 1e9;
    }

    double decodeOverFloor() {
      return decodeRuntime.median() / matmulFloor.median();
    }

    double rawDecodeOverFloor() {
      return decodeRaw.median() / matmulFloor.median();
    }

    Batch batch(int sessions) {
      return batches.stream().filter(b -> b.sessions() == sessions).findFirst().orElseThrow();
    }

    double batchSpeedup(int sessions) {
      return batch(sessions).tokensPerSec().median() / batch(1).tokensPerSec().median();
    }

    double rawBatchSpeedup(int sessions) {
      return batch(sessions).rawTokensPerSec().median() / batch(1).rawTokensPerSec().median();
    }
  }

  private final RandomModels.Spec spec;
  private final Path dir;
  private final Backend backend;
  private final KvDtype kv;
  private final String variant; // the backend, and "-kv16" with a float16 KV pool
  private final Plan plan;
  private final PrintStream progress;

  ModelBench(
      RandomModels.Spec spec,
      Path dir,
      Backend backend,
      KvDtype kv,
      Plan plan,
      PrintStream progress) {
    this.spec = spec;
    this.dir = dir;
    this.backend = backend;
    this.kv = kv;
    this.variant = backend.id() + (kv == KvDtype.FLOAT16 ? "-kv16" : "");
    this.plan = plan;
    this.progress = progress;
  }

  Result run(NDManager manager) {
    ModelConfig mc = spec.config();
    long perBlock =
        KvBlockPool.bytesPerBlock(mc.numLayers(), mc.numKvHeads(), mc.headDim(), KV_BLOCK, kv);
    int maxContext = Math.min(mc.maxPositionEmbeddings(), 4096);
    int context = Math.min(PREFILL_TOKENS, maxContext - GROWTH);
    long blocksPerSession = (context + GROWTH + KV_BLOCK - 1) / KV_BLOCK;
    EngineConfig config =
        EngineConfig.defaults(dir)
            .withBackend(backend)
            .withKvDtype(kv)
            .withKvBlockSize(KV_BLOCK)
            .withKvBudgetBytes(perBlock * blocksPerSession * MAX_SESSIONS)
            .withMaxSessions(MAX_SESSIONS)
            .withMaxBatchTokens(PREFILL_TOKENS);
    if (context < 2 * (DRAFT_K + 1)) {
      throw new IllegalStateException(
          spec.name() + ": max context " + maxContext + " (expected: >= " + (GROWTH + 10) + ")");
    }
    progress.printf("[%s %s] loading %s%n", spec.label(), variant, dir);
    try (InferenceEngine engine = InferenceEngine.load(config);
        MatmulFloor floor = backend == Backend.DJL ? new MatmulFloor(mc, manager) : null) {
      engine.warmUp();
      progress.printf("[%s %s] %s%n", spec.label(), variant, engine.model().describe());
      DecoderModel model = engine.model();
      int longest = 0;
      for (int n : LONG_PREFILLS) {
        longest = Math.max(longest, Math.min(n, model.maxContext() - 1));
      }
      int rawTokens = Math.max(context + DRAFT_K + 1, longest);
      int rawBlocksPerSeq = (rawTokens + KV_BLOCK - 1) / KV_BLOCK;
      KvBlockPool rawPool =
          KvBlockPool.withBudget(
              mc.numLayers(),
              mc.numKvHeads(),
              mc.headDim(),
              KV_BLOCK,
              perBlock * rawBlocksPerSeq * MAX_SESSIONS,
              kv);
      List<BlockTable> rawTables = new ArrayList<>();
      for (int i = 0; i < MAX_SESSIONS; i++) {
        BlockTable t = new BlockTable(rawPool);
        t.reserve(rawTokens);
        rawTables.add(t);
      }
      Raw raw = new Raw(model, rawPool, rawTables, context);

      // Prefill: one warm-up session, then every session's prefill is a sample.
      progress.printf(
          "[%s] prefill %d tokens x %d sessions%n", spec.label(), context, MAX_SESSIONS);
      Sequence warm =
          engine.open(prompt(context, 99, mc.vocabSize()), SamplingParams.GREEDY, "warm");
      await(warm.prefill(ResultOptions.NONE));
      await(warm.closeAsync());
      raw.prefill();
      List<Sequence> sessions = new ArrayList<>();
      long[] prefillRt = new long[MAX_SESSIONS];
      long[] prefillRaw = new long[plan.rawPrefillSamples()];
      for (int i = 0; i < MAX_SESSIONS; i++) {
        Sequence s =
            engine.open(prompt(context, i, mc.vocabSize()), SamplingParams.GREEDY, "s" + i);
        sessions.add(s);
        long t0 = System.nanoTime();
        await(s.prefill(ResultOptions.NONE));
        prefillRt[i] = System.nanoTime() - t0;
        if (i < prefillRaw.length) {
          prefillRaw[i] = raw.prefill();
        }
      }

      // Raw prefill at the long lengths (the model's context permitting), after a warm-up each.
      List<Prefill> prefills = new ArrayList<>();
      for (int n : LONG_PREFILLS) {
        int tokens = Math.min(n, model.maxContext() - 1);
        long[] ns = new long[plan.rawPrefillSamples()];
        raw.prefill(tokens);
        for (int i = 0; i < ns.length; i++) {
          ns[i] = raw.prefill(tokens);
        }
        prefills.add(new Prefill(n, tokens, Stats.ofNanosAsMillis(ns)));
      }

      // Decode: session 0 proposes one token at a time; raw forward and matmul floor beside it.
      progress.printf("[%s] decode x %d%n", spec.label(), plan.decodeSamples());
      Sequence s0 = sessions.get(0);
      long[] decodeRt = new long[plan.decodeSamples()];
      long[] decodeRaw = new long[plan.decodeSamples()];
      long[] floorNs = new long[plan.decodeSamples()];
      for (int i = -plan.decodeWarmup(); i < plan.decodeSamples(); i++) {
        long t0 = System.nanoTime();
        await(s0.propose(1, 0f, ResultOptions.NONE));
        long rt = System.nanoTime() - t0;
        long rw = raw.decode();
        long fl = floor == null ? 0 : floor.stepNanos();
        if (i >= 0) {
          decodeRt[i] = rt;
          decodeRaw[i] = rw;
          floorNs[i] = fl;
        }
      }
      await(s0.truncate(context));

      // Verify: k = 4 random drafts; after the first, each verify feeds the previous round's
      // correction token plus the drafts, 5 tokens with 5 logit rows.
      progress.printf("[%s] verify x %d%n", spec.label(), plan.verifySamples());
      long[] verifyRt = new long[plan.verifySamples()];
      long[] verifyRaw = new long[plan.verifySamples()];
      for (int i = -plan.verifyWarmup(); i < plan.verifySamples(); i++) {
        int[] draft = prompt(DRAFT_K, 1000 + i, mc.vocabSize());
        long t0 = System.nanoTime();
        await(s0.verify(draft, null, ResultOptions.NONE));
        long rt = System.nanoTime() - t0;
        long rw = raw.verify();
        if (i >= 0) {
          verifyRt[i] = rt;
          verifyRaw[i] = rw;
        }
      }

      if (model instanceof VectorModel vm && VectorModel.profiling()) {
        profile(vm, spec.label() + " decode", plan.decodeSamples(), raw::decode, progress);
        profile(vm, spec.label() + " verify-5", plan.verifySamples(), raw::verify, progress);
        int tokens = Math.min(LONG_PREFILLS[0], model.maxContext() - 1);
        profile(
            vm,
            spec.label() + " prefill-" + tokens,
            plan.rawPrefillSamples(),
            () -> raw.prefill(tokens),
            progress);
      }

      List<Batch> batches = new ArrayList<>();
      for (int n : plan.sessionCounts()) {
        progress.printf(
            "[%s] %d concurrent sessions x %d tokens x %d reps%n",
            spec.label(), n, plan.batchTokens(), plan.batchReps());
        batches.add(batch(engine, sessions.subList(0, n), raw, context));
      }
      for (Sequence s : sessions) {
        await(s.closeAsync());
      }
      rawTables.forEach(BlockTable::close);
      rawPool.close();
      return new Result(
          spec.name() + "_" + variant,
          spec.label() + " " + variant,
          variant,
          model.describe(),
          mc.numParameters(),
          weightBytesPerStep(model),
          context * KvBlockPool.bytesPerBlock(mc.numLayers(), mc.numKvHeads(), mc.headDim(), 1, kv),
          context,
          Stats.ofNanosAsMillis(decodeRt),
          Stats.ofNanosAsMillis(decodeRaw),
          Stats.ofNanosAsMillis(verifyRt),
          Stats.ofNanosAsMillis(verifyRaw),
          Stats.ofNanosAsMillis(prefillRt),
          Stats.ofNanosAsMillis(prefillRaw),
          floor == null ? null : Stats.ofNanosAsMillis(floorNs),
          floor == null ? 0 : floor.weightBytes(),
          prefills,
          batches);
    }
  }

  /**
   * Each session proposes {@code batchTokens} tokens one at a time; the next propose is submitted
   * from the previous one's completion (on the scheduler thread, so no client-thread wake-up is
   * measured). Sessions start as independent clients would: one after another, not in lockstep.
   * Wall time from the first submission to the last token. Each rep is followed by raw batched
   * forwards of as many sequences.
   */
  private Batch batch(InferenceEngine engine, List<Sequence> sessions, Raw raw, int context) {
    int n = sessions.size();
    double[] tps = new double[plan.batchReps()];
    double[] rawTps = new double[plan.batchReps() * RAW_BATCH_STEPS];
    long tokens = 0;
    long steps = 0;
    for (int rep = -1; rep < plan.batchReps(); rep++) {
      for (Sequence s : sessions) {
        await(s.truncate(context));
      }
      int perSession = rep < 0 ? 2 : plan.batchTokens(); // rep -1 warms this batch size
      long steps0 = engine.steps();
      long t0 = System.nanoTime();
      List<CompletableFuture<Void>> loops = new ArrayList<>();
      for (Sequence s : sessions) {
        loops.add(proposeLoop(s, perSession));
      }
      await(CompletableFuture.allOf(loops.toArray(new CompletableFuture<?>[0])));
      long dt = System.nanoTime() - t0;
      for (int i = 0; i < RAW_BATCH_STEPS; i++) {
        long rawNs = raw.decode(n);
        if (rep >= 0) {
          rawTps[rep * RAW_BATCH_STEPS + i] = n / (rawNs / 1e9);
        }
      }
      if (rep >= 0) {
        tps[rep] = (double) n * perSession / (dt / 1e9);
        tokens += (long) n * perSession;
        steps += engine.steps() - steps0;
      }
    }
    return new Batch(n, Stats.of(tps), (double) tokens / steps, Stats.of(rawTps));
  }

  private static CompletableFuture<Void> proposeLoop(Sequence s, int remaining) {
    return s.propose(1, 0f, ResultOptions.NONE)
        .thenCompose(
            p ->
                remaining > 1
                    ? proposeLoop(s, remaining - 1)
                    : CompletableFuture.completedFuture(null));
  }

  /**
   * Bytes of weights one decode step reads as the model holds them: the vector backend's own count
   * (float16 weights are half), else fp32 parameters minus the embedding gather.
   */
  static long weightBytesPerStep(DecoderModel model) {
    return model instanceof VectorModel v ? v.weightBytes() : weightBytesPerStep(model.config());
  }

  /**
   * fp32 bytes of parameters one decode step reads: every layer weight, the final norm and lm_head;
   * the input embedding is a one-row gather (a tied embedding is read once, as lm_head).
   */
  static long weightBytesPerStep(ModelConfig mc) {
    long untiedEmbed = mc.tieWordEmbeddings() ? 0 : (long) mc.vocabSize() * mc.hiddenSize();
    return (mc.numParameters() - untiedEmbed) * Float.BYTES;
  }

  /** {@code n} token ids drawn uniformly from the vocabulary; the same for the same seed. */
  private static int[] prompt(int n, int seed, int vocab) {
    int[] p = new int[n];
    SplittableRandom r = new SplittableRandom(seed);
    for (int i = 0; i < n; i++) {
      p[i] = r.nextInt(vocab);
    }
    return p;
  }

  /**
   * Prints where {@code samples} raw forwards spend their time, per phase of the vector backend
   * (run with {@code -Ddraftmesh.vector.profile=true}): mean ms per forward.
   */
  private static void profile(
      VectorModel model,
      String what,
      int samples,
      java.util.function.LongSupplier forward,
      PrintStream out) {
    model.profile(); // reset
    long total = 0;
    for (int i = 0; i < samples; i++) {
      total += forward.getAsLong();
    }
    long[] phases = model.profile();
    StringBuilder line = new StringBuilder();
    line.append(
        String.format(
            java.util.Locale.ROOT, "[profile] %s: %.3f ms/forward =", what, total / 1e6 / samples));
    for (int k = 0; k < phases.length; k++) {
      line.append(
          String.format(
              java.util.Locale.ROOT,
              " %s %.3f",
              VectorModel.PHASES.get(k),
              phases[k] / 1e6 / samples));
      line.append(k + 1 < phases.length ? "," : "");
    }
    out.println(line);
  }

  /** The model's batched forward with no scheduler, on a private KV pool; returns nanoseconds. */
  private static final class Raw {
    private final DecoderModel model;
    private final KvBlockPool pool;
    private final List<BlockTable> tables; // one per sequence, each reserved past the context
    private final int context;
    private final int vocab;

    Raw(DecoderModel model, KvBlockPool pool, List<BlockTable> tables, int context) {
      this.model = model;
      this.pool = pool;
      this.tables = tables;
      this.context = context;
      this.vocab = model.config().vocabSize();
    }

    long prefill() {
      return prefill(context);
    }

    long prefill(int tokens) {
      return time(List.of(step(0, prompt(tokens, 500, vocab), 0, new int[] {tokens - 1})));
    }

    long decode() {
      return decode(1);
    }

    /** One token for each of the first {@code sequences} sequences, at the context length. */
    long decode(int sequences) {
      List<SeqStep> batch = new ArrayList<>();
      for (int i = 0; i < sequences; i++) {
        batch.add(step(i, prompt(1, 501 + i, vocab), context, new int[] {0}));
      }
      return time(batch);
    }

    long verify() {
      int[] rows = new int[DRAFT_K + 1];
      for (int i = 0; i < rows.length; i++) {
        rows[i] = i;
      }
      return time(List.of(step(0, prompt(DRAFT_K + 1, 502, vocab), context, rows)));
    }

    private SeqStep step(int seq, int[] tokens, int startPos, int[] logitRows) {
      return new SeqStep(tokens, startPos, tables.get(seq), logitRows, false);
    }

    private long time(List<SeqStep> batch) {
      long t0 = System.nanoTime();
      model.forward(batch, pool);
      return System.nanoTime() - t0;
    }
  }

  private static <T> T await(CompletableFuture<T> f) {
    try {
      return f.get(OP_TIMEOUT_S, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("engine op failed: " + e.getCause(), e.getCause());
    } catch (TimeoutException e) {
      throw new IllegalStateException("engine op did not finish in " + OP_TIMEOUT_S + " s", e);
    }
  }
}
