package io.draftmesh.engine.model.cpu;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import io.draftmesh.engine.model.TreeMask;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Llama-family decoder (Llama, Mistral, Qwen2) in plain Java over the Vector API, for CPUs: the
 * same math as {@link io.draftmesh.engine.model.LlamaModel} (RMSNorm, rotate-half RoPE with llama3
 * scaling, GQA attention with optional Q/K/V bias, SwiGLU, tied embeddings), with no per-op
 * overhead: each step is a handful of fused loops over preallocated scratch arrays.
 *
 * <p>A batched step sends all its rows (every sequence's new tokens: decode, k + 1 verify rows,
 * prefill chunks) through each weight matrix together, so a weight row is read once per step
 * however many rows there are. Attention reads keys and values where they are in the paged pool.
 * Matmuls and attention are split across a small persistent thread pool whose size is measured at
 * load ({@link ThreadChoice}).
 *
 * <p>Weights live on the heap: float32, or float16 as stored (widened in registers, float32
 * accumulation) when {@code keepF16} and the checkpoint is F16. Not thread-safe beyond one forward
 * at a time (forward is synchronized).
 */
public final class VectorModel implements DecoderModel {
  private static final Logger log = LoggerFactory.getLogger(VectorModel.class);
  private static final long CALIBRATION_BUDGET_NANOS = 400_000_000L;

  /**
   * Kernel warm-up rounds at load: each calls five matrices on one row count of 1..9, so a row
   * count's kernel gets 10,000 calls, twice C2's invocation threshold.
   */
  private static final int WARMUP_ROUNDS = 18_000;

  /**
   * Attention kernel calls at load, per KV dtype and kernel: a round runs every head of a five-row
   * chunk (the four-row kernels and a one-row tail) over eight keys, so it takes this many calls
   * divided by the heads; C2's invocation threshold is 5,000.
   */
  private static final int ATTENTION_WARMUP_CALLS = 12_000;

  /** Keys the attention warm-up attends over: room for its ten rows (the last ten positions). */
  private static final int WARMUP_KEYS = 16;

  /**
   * With {@code -Ddraftmesh.vector.profile=true} every forward adds the wall time of each phase to
   * {@link #profile()} (a static final flag: the timers compile away when it is off).
   */
  private static final boolean PROFILE = Boolean.getBoolean("draftmesh.vector.profile");

  /** The phases {@link #profile()} times, in forward order. */
  public static final List<String> PHASES =
      List.of(
          "setup",
          "norms",
          "qkv matmul",
          "rope+kv write",
          "attention",
          "o matmul",
          "gate/up matmul",
          "swiglu",
          "down matmul",
          "lm head",
          "logits out");

  private final long[] phaseNanos = new long[PHASES.size()];

  /**
   * Key reads per layer from which attention runs on every thread: ~2,000 reads take ~30 us on this
   * class of CPU, well above a hand-off (a few us).
   */
  private static final long PARALLEL_ATTENTION_KEYS = 2048;

  private final ModelConfig config;
  private final int maxContext;
  private final int hidden;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int inter;
  private final int vocab;
  private final int qkvDim; // (heads + 2 * kvHeads) * headDim
  private final float eps;

  private final Matrix embed; // (vocab, hidden)
  private final Matrix lmHead; // (vocab, hidden); the same matrix as embed when tied
  private final float[] finalNorm; // (hidden)
  private final Layer[] layers;
  private final Rope rope;
  private final PagedAttention attention;
  private final ComputePool compute;
  private final ThreadChoice threadChoice;
  private final String weightDtype;
  private final long weightBytes;
  private final Scratch scratch;

  /** One decoder layer's weights, torch's (out, in) layout, projections fused. */
  private record Layer(
      float[] attnNorm, // (hidden)
      Matrix wqkv, // ((heads + 2 * kvHeads) * headDim, hidden)
      float[] bqkv, // ((heads + 2 * kvHeads) * headDim) or null
      Matrix wo, // (hidden, heads * headDim)
      float[] mlpNorm, // (hidden)
      Matrix wGateUp, // (2 * intermediate, hidden)
      Matrix wDown) {} // (hidden, intermediate)

  /** Activations of one step, grown to the largest step seen and reused. */
  private static final class Scratch {
    float[] x = new float[0]; // (T, hidden) residual stream
    float[] h = new float[0]; // (T, hidden) normed
    float[] qkv = new float[0]; // (T, qkvDim)
    float[] att = new float[0]; // (T, heads * headDim)
    float[] gateUp = new float[0]; // (T, 2 * inter)
    float[] act = new float[0]; // (T, inter)
    float[] lastRows = new float[0]; // (R, hidden) normed rows whose logits are wanted
    float[] logits = new float[0]; // (R, vocab)
    float[][] scores; // per thread: (PagedAttention.MAX_GROUP_ROWS, maxContext)
  }

  private VectorModel(Checkpoint ckpt, int maxContext, int threads, boolean keepF16) {
    this.config = ckpt.config();
    this.maxContext = maxContext;
    this.hidden = config.hiddenSize();
    this.heads = config.numHeads();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.inter = config.intermediateSize();
    this.vocab = config.vocabSize();
    this.qkvDim = (heads + 2 * kvHeads) * headDim;
    this.eps = (float) config.rmsNormEps();
    Loader load = new Loader(ckpt, keepF16);
    this.embed = load.matrix(vocab, hidden, "model.embed_tokens.weight");
    this.lmHead = config.tieWordEmbeddings() ? embed : load.matrix(vocab, hidden, "lm_head.weight");
    this.finalNorm = load.vector("model.norm.weight");
    this.layers = new Layer[config.numLayers()];
    long bytes = embed.bytes() + (lmHead == embed ? 0 : lmHead.bytes());
    for (int l = 0; l < layers.length; l++) {
      String p = "model.layers." + l + ".";
      float[] bias =
          config.attentionBias()
              ? load.vector(
                  p + "self_attn.q_proj.bias",
                  p + "self_attn.k_proj.bias",
                  p + "self_attn.v_proj.bias")
              : null;
      layers[l] =
          new Layer(
              load.vector(p + "input_layernorm.weight"),
              load.matrix(
                  qkvDim,
                  hidden,
                  p + "self_attn.q_proj.weight",
                  p + "self_attn.k_proj.weight",
                  p + "self_attn.v_proj.weight"),
              bias,
              load.matrix(hidden, heads * headDim, p + "self_attn.o_proj.weight"),
              load.vector(p + "post_attention_layernorm.weight"),
              load.matrix(2 * inter, hidden, p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"),
              load.matrix(hidden, inter, p + "mlp.down_proj.weight"));
      Layer w = layers[l];
      bytes += w.wqkv.bytes() + w.wo.bytes() + w.wGateUp.bytes() + w.wDown.bytes();
    }
    this.weightDtype = embed.dtype();
    this.weightBytes = bytes;
    this.rope = new Rope(config, maxContext);
    this.attention = new PagedAttention(heads, kvHeads, headDim);
    int cores = Runtime.getRuntime().availableProcessors();
    int max = threads > 0 ? Math.min(threads, cores) : Math.min(2, cores);
    this.compute = new ComputePool(max, "vector-" + ckpt.dir().getFileName());
    this.scratch = new Scratch();
    scratch.scores = new float[max][PagedAttention.MAX_GROUP_ROWS * maxContext];
    ThreadChoice choice;
    try {
      choice =
          threads > 0
              ? ThreadChoice.fixed(max)
              : ThreadChoice.measure(compute, this::decodeMatmuls, CALIBRATION_BUDGET_NANOS);
    } catch (RuntimeException | Error e) {
      compute.close();
      throw e;
    }
    this.threadChoice = choice;
    warmKernels();
    warmAttention();
    log.info("{}: {}", ckpt.dir().getFileName(), describe());
  }

  /**
   * Loads the decoder from {@code ckpt} (which may be closed afterwards).
   *
   * @param maxContext positions to serve; capped at max_position_embeddings
   * @param threads compute threads; 0 measures 1 against 2 at load and keeps the faster
   * @param keepF16 hold F16 checkpoints as F16 (half the bytes per step) instead of widening
   */
  public static VectorModel load(Checkpoint ckpt, int maxContext, int threads, boolean keepF16) {
    if (!Backend.vectorAvailable()) {
      throw new IllegalStateException(
          "backend vector: the JVM lacks module jdk.incubator.vector"
              + " (expected: java --add-modules jdk.incubator.vector)");
    }
    ckpt.requireTensors();
    int context = Math.min(maxContext, ckpt.config().maxPositionEmbeddings());
    return new VectorModel(ckpt, context, threads, keepF16);
  }

  @Override
  public ModelConfig config() {
    return config;
  }

  @Override
  public int maxContext() {
    return maxContext;
  }

  @Override
  public Backend backend() {
    return Backend.VECTOR;
  }

  @Override
  public String weightDtype() {
    return weightDtype;
  }

  /** Bytes of weights one decode step reads (every matrix once; the embedding gather aside). */
  public long weightBytes() {
    return weightBytes;
  }

  /** Compute threads in use. */
  public int threads() {
    return threadChoice.threads();
  }

  @Override
  public String describe() {
    return String.format(
        Locale.ROOT,
        "vector: %s weights (%.1f MB), %d float lanes, %s",
        weightDtype,
        weightBytes / 1e6,
        FloatVector.SPECIES_PREFERRED.length(),
        threadChoice);
  }

  @Override
  public synchronized List<StepResult> forward(List<SeqStep> batch, KvBlockPool pool) {
    if (pool.layers() != layers.length || pool.kvHeads() != kvHeads || pool.headDim() != headDim) {
      throw new IllegalArgumentException(
          "kv pool of "
              + pool.layers()
              + " layers x "
              + pool.kvHeads()
              + " heads x "
              + pool.headDim()
              + " (expected: "
              + layers.length
              + " x "
              + kvHeads
              + " x "
              + headDim
              + ")");
    }
    int b = batch.size();
    int total = 0;
    int logitRowCount = 0;
    for (SeqStep s : batch) {
      total += s.tokens().length;
      logitRowCount += s.logitRows().length;
      if (s.positionEnd() > maxContext) {
        throw new IllegalArgumentException(
            "sequence length " + s.positionEnd() + " exceeds max context " + maxContext);
      }
    }
    long keyReads = 0; // (query row, head, key) triples of one layer's attention
    for (SeqStep s : batch) {
      keyReads += (long) heads * s.tokens().length * s.length();
    }
    long tick = PROFILE ? System.nanoTime() : 0;
    Scratch sc = grow(total, logitRowCount);
    int[] rowPos = new int[total]; // (T) cache slot index of each row in its sequence
    int[] ropePos = new int[total]; // (T) RoPE position of each row (slot + positionShift)
    int[] rowSlot = new int[total]; // (T) pool slot its KV goes to
    int[][] rowSlots = new int[total][]; // (T) its sequence's slot per position
    int[] lastRow = new int[logitRowCount]; // flat row of each wanted logit row
    float[][][] captured = new float[b][][];
    float[][] capture = null; // per row: its sequence's capture array of the current layer
    int[] captureRow = null;
    int[] captureRows = null;
    int t = 0;
    int lr = 0;
    for (int i = 0; i < b; i++) {
      SeqStep s = batch.get(i);
      int n = s.tokens().length;
      int[] slots = new int[s.length()];
      for (int p = 0; p < slots.length; p++) {
        slots[p] = (int) s.table().slot(p);
      }
      for (int r : s.logitRows()) {
        lastRow[lr++] = t + r;
      }
      for (int r = 0; r < n; r++) {
        rowPos[t + r] = s.slotPosition(r);
        ropePos[t + r] = s.position(r);
        rowSlot[t + r] = slots[s.startPos() + r];
        rowSlots[t + r] =
            s.tree() == null ? slots : visibleSlots(s.tree(), s.startPos() + r, slots);
        embed.row(s.tokens()[r], sc.x, (t + r) * hidden);
      }
      if (s.captureAttention()) {
        captured[i] = new float[layers.length][];
        if (capture == null) {
          capture = new float[total][];
          captureRow = new int[total];
          captureRows = new int[total];
        }
        for (int r = 0; r < n; r++) {
          captureRow[t + r] = r;
          captureRows[t + r] = n;
        }
      }
      t += n;
    }

    int[] chunkStart = PagedAttention.chunks(rowSlots, total);
    KvRows kv = attention.rows(pool.dtype());

    tick = tick(0, tick);
    for (int l = 0; l < layers.length; l++) {
      Layer w = layers[l];
      Kernels.rmsNorm(sc.x, w.attnNorm, eps, sc.h, total, hidden);
      tick = tick(1, tick);
      matmul(w.wqkv, sc.h, total, sc.qkv, false);
      if (w.bqkv != null) {
        Kernels.addBias(sc.qkv, w.bqkv, total, qkvDim);
      }
      tick = tick(2, tick);
      for (int r = 0; r < total; r++) {
        rope.apply(sc.qkv, r * qkvDim, heads + kvHeads, ropePos[r]);
      }
      ByteBuffer keys = pool.keys(l);
      ByteBuffer values = pool.values(l);
      int slots = pool.slots();
      attention.writeKv(kv, sc.qkv, qkvDim, total, rowSlot, keys, values, slots);
      if (capture != null) {
        t = 0;
        for (int i = 0; i < b; i++) {
          SeqStep s = batch.get(i);
          int n = s.tokens().length;
          if (captured[i] != null) {
            float[] probs = new float[heads * n * s.length()]; // (heads, n, length)
            captured[i][l] = probs;
            for (int r = 0; r < n; r++) {
              capture[t + r] = probs;
            }
          }
          t += n;
        }
      }
      tick = tick(3, tick);
      float[] qkv = sc.qkv;
      float[] att = sc.att;
      float[][] cap = capture;
      int[] capRow = captureRow;
      int[] capRows = captureRows;
      // Attention reads every sequence's keys and values: at long contexts it is the larger read
      // of a small model's step and splits well, whatever the matmuls' measured choice.
      ComputePool.Task attend =
          (worker, from, to) ->
              attention.attend(
                  kv,
                  qkv,
                  qkvDim,
                  rowPos,
                  rowSlots,
                  chunkStart,
                  keys,
                  values,
                  slots,
                  att,
                  cap,
                  capRow,
                  capRows,
                  sc.scores[worker],
                  from,
                  to);
      int units = (chunkStart.length - 1) * heads;
      if (keyReads >= PARALLEL_ATTENTION_KEYS) {
        compute.parallelForAll(units, 1, attend);
      } else {
        compute.parallelFor(units, 1, attend);
      }
      tick = tick(4, tick);
      matmul(w.wo, sc.att, total, sc.x, true); // x += attention output
      tick = tick(5, tick);
      Kernels.rmsNorm(sc.x, w.mlpNorm, eps, sc.h, total, hidden);
      tick = tick(1, tick);
      matmul(w.wGateUp, sc.h, total, sc.gateUp, false);
      tick = tick(6, tick);
      float[] gateUp = sc.gateUp;
      float[] act = sc.act;
      compute.parallelFor(
          total, 1, (worker, from, to) -> Kernels.swiGlu(gateUp, act, from, to, inter));
      tick = tick(7, tick);
      matmul(w.wDown, sc.act, total, sc.x, true); // x += mlp output
      tick = tick(8, tick);
    }

    for (int r = 0; r < logitRowCount; r++) {
      System.arraycopy(sc.x, lastRow[r] * hidden, sc.lastRows, r * hidden, hidden);
    }
    Kernels.rmsNorm(sc.lastRows, finalNorm, eps, sc.lastRows, logitRowCount, hidden);
    matmul(lmHead, sc.lastRows, logitRowCount, sc.logits, false);
    tick = tick(9, tick);

    List<StepResult> results = new ArrayList<>(b);
    int offset = 0;
    for (int i = 0; i < b; i++) {
      SeqStep s = batch.get(i);
      float[][] rows = new float[s.logitRows().length][];
      for (int r = 0; r < rows.length; r++) {
        rows[r] = new float[vocab];
        System.arraycopy(sc.logits, (offset + r) * vocab, rows[r], 0, vocab);
      }
      offset += rows.length;
      results.add(new StepResult(rows, captured[i]));
    }
    tick(10, tick);
    return results;
  }

  /**
   * A tree node's slots in the order it attends to them (the prefix, then its path): attention
   * reads keys {@code 0..rowPos}, and a node at depth d sees base + d + 1 of them.
   */
  private static int[] visibleSlots(TreeMask tree, int index, int[] slots) {
    int[] visible = tree.visible(index - tree.base());
    int[] out = new int[visible.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = slots[visible[i]];
    }
    return out;
  }

  /** Whether forwards time their phases ({@code -Ddraftmesh.vector.profile=true}). */
  public static boolean profiling() {
    return PROFILE;
  }

  /** Adds the time since {@code since} to phase {@code phase}; returns now. */
  private long tick(int phase, long since) {
    if (!PROFILE) {
      return 0;
    }
    long now = System.nanoTime();
    phaseNanos[phase] += now - since;
    return now;
  }

  /**
   * Nanoseconds spent per phase ({@link #PHASES}) since the last call, which resets them; all zero
   * unless {@code draftmesh.vector.profile} is set.
   */
  public synchronized long[] profile() {
    long[] out = phaseNanos.clone();
    java.util.Arrays.fill(phaseNanos, 0);
    return out;
  }

  /** out (n, m.rows()) = in (n, m.cols()) times m transposed; accumulates into out if asked. */
  private void matmul(Matrix m, float[] in, int n, float[] out, boolean accumulate) {
    int stride = m.rows();
    compute.parallelFor(
        m.rows(),
        Panels.WIDTH,
        (worker, from, to) -> m.multiply(in, n, out, stride, accumulate, from, to));
  }

  /**
   * Calls every matrix kernel on 1..9 activation rows over two panels of outputs, thousands of
   * times at load, so that C2 compiles each kernel (each row count's is its own method) as a whole
   * method before serving. A warm-up of whole matmuls for a time budget was not enough: on the zoo
   * draft (matmuls of microseconds) C2 compiled the 4-row kernel only on-stack-replaced, its later
   * calls entered through the interpreter, and a 4-sequence batched step took 7.8 ms instead of 0.2
   * ms for a whole bench (same with the 5-row kernel and 5-token verifies). Two panels (so the
   * panel loop turns) keep a call at a few microseconds once compiled; the kernels are shared by
   * every model in the JVM, so only the first model's load pays for compiling them.
   */
  private void warmKernels() {
    Scratch sc = grow(9, 9);
    Layer l0 = layers[0];
    Matrix[] matrices = {l0.wqkv, l0.wo, l0.wGateUp, l0.wDown, lmHead};
    float[][] inputs = {sc.h, sc.att, sc.h, sc.act, sc.lastRows};
    float[][] outputs = {sc.qkv, sc.x, sc.gateUp, sc.x, sc.logits};
    for (int round = 0; round < WARMUP_ROUNDS; round++) {
      int n = 1 + round % 9;
      for (int i = 0; i < matrices.length; i++) {
        Matrix m = matrices[i];
        m.multiply(
            inputs[i],
            n,
            outputs[i],
            m.rows(),
            round / 9 % 2 == 1, // each row count with and without accumulation
            0,
            Math.min(m.rows(), 2 * Panels.WIDTH));
      }
    }
    java.util.Arrays.fill(sc.x, 0f);
  }

  /**
   * Runs attention over both KV dtypes (its writes, the five-, four- and one-row kernels, the
   * softmax), the norms and SwiGLU on a few synthetic rows at load, thousands of times, for the
   * reason {@link #warmKernels} gives: until C2 compiles them, Vector API code runs interpreted or
   * C1-compiled and allocates every vector. Without it the first forwards a worker served paid for
   * that: on the zoo target (AVX2 machine) a first 128-token prefill took 0.95-1.5 s, the first
   * decodes 7 ms, and the tiny model's decodes were still 4-8x their compiled time after 200 steps.
   */
  private void warmAttention() {
    // Three chunks over equal keys (their own slot arrays, as three sequences' rows would be):
    // five rows, four and one, so that each of the group kernels and the one-row one is warmed.
    int five = PagedAttention.MAX_GROUP_ROWS;
    int rows = five + PagedAttention.GROUP_ROWS + 1;
    int keys = WARMUP_KEYS;
    float[] qkv = new float[rows * qkvDim];
    for (int i = 0; i < qkv.length; i++) {
      qkv[i] = (i % 7 - 3) * 0.01f; // small: a float16 pool holds them
    }
    int[] slots = new int[keys];
    for (int j = 0; j < keys; j++) {
      slots[j] = j;
    }
    int[] rowPos = new int[rows];
    int[] rowSlot = new int[rows];
    int[][] rowSlots = new int[rows][];
    int[] four = slots.clone();
    int[] one = slots.clone();
    for (int r = 0; r < rows; r++) {
      rowPos[r] = keys - rows + r; // a chain's rows: each attends to the keys up to its own
      rowSlot[r] = rowPos[r];
      rowSlots[r] = r < five ? slots : r < rows - 1 ? four : one;
    }
    int[] chunkStart = PagedAttention.chunks(rowSlots, rows);
    int units = (chunkStart.length - 1) * heads;
    int rounds = (ATTENTION_WARMUP_CALLS + heads - 1) / heads;
    float[] out = new float[rows * heads * headDim];
    float[] scores = new float[PagedAttention.MAX_GROUP_ROWS * keys];
    float[] x = java.util.Arrays.copyOf(qkv, hidden);
    float[] weight = new float[hidden];
    java.util.Arrays.fill(weight, 1f);
    float[] normed = new float[hidden];
    float[] gateUp = new float[2 * inter];
    float[] act = new float[inter];
    for (KvDtype dtype : KvDtype.values()) {
      KvRows kv = attention.rows(dtype);
      ByteBuffer k =
          ByteBuffer.allocateDirect(kvHeads * keys * kv.rowBytes()).order(ByteOrder.nativeOrder());
      ByteBuffer v =
          ByteBuffer.allocateDirect(kvHeads * keys * kv.rowBytes()).order(ByteOrder.nativeOrder());
      for (int round = 0; round < rounds; round++) {
        attention.writeKv(kv, qkv, qkvDim, rows, rowSlot, k, v, keys);
        attention.attend(
            kv,
            qkv,
            qkvDim,
            rowPos,
            rowSlots,
            chunkStart,
            k,
            v,
            keys,
            out,
            null,
            null,
            null,
            scores,
            0,
            units);
        Kernels.rmsNorm(x, weight, eps, normed, 1, hidden);
        Kernels.swiGlu(gateUp, act, 0, 1, inter);
      }
    }
  }

  /** One decode step's matmuls on dummy activations: the work {@link ThreadChoice} times. */
  private void decodeMatmuls() {
    Scratch sc = grow(1, 1);
    for (Layer w : layers) {
      matmul(w.wqkv, sc.h, 1, sc.qkv, false);
      matmul(w.wo, sc.att, 1, sc.x, false);
      matmul(w.wGateUp, sc.h, 1, sc.gateUp, false);
      matmul(w.wDown, sc.act, 1, sc.x, false);
    }
    matmul(lmHead, sc.lastRows, 1, sc.logits, false);
  }

  private Scratch grow(int rows, int logitRows) {
    Scratch sc = scratch;
    if (sc.x.length < rows * hidden) {
      int n = Math.max(rows, sc.x.length / hidden * 2);
      sc.x = new float[n * hidden];
      sc.h = new float[n * hidden];
      sc.qkv = new float[n * qkvDim];
      sc.att = new float[n * heads * headDim];
      sc.gateUp = new float[n * 2 * inter];
      sc.act = new float[n * inter];
    }
    if (sc.lastRows.length < logitRows * hidden) {
      int n = Math.max(logitRows, sc.lastRows.length / hidden * 2);
      sc.lastRows = new float[n * hidden];
      sc.logits = new float[n * vocab];
    }
    return sc;
  }

  @Override
  public void close() {
    compute.close();
  }

  /** Reads tensors into heap arrays, fusing projections by concatenating their rows. */
  private static final class Loader {
    private final Checkpoint ckpt;
    private final boolean keepF16;

    Loader(Checkpoint ckpt, boolean keepF16) {
      this.ckpt = ckpt;
      this.keepF16 = keepF16;
    }

    float[] vector(String... names) {
      int n = 0;
      for (String name : names) {
        n += Math.toIntExact(ckpt.info(name).numElements());
      }
      float[] out = new float[n];
      FloatBuffer dst = FloatBuffer.wrap(out);
      for (String name : names) {
        ckpt.tensor(name, dst);
      }
      return out;
    }

    /**
     * The named tensors' rows stacked: (rows, cols). F16 stays F16 when every part is F16 and
     * finite (a matrix holding infinity or NaN is widened here, where the widening is exact).
     */
    Matrix matrix(int rows, int cols, String... names) {
      boolean allF16 = keepF16;
      for (String name : names) {
        allF16 &= ckpt.info(name).floatType() == DType.F16;
      }
      if (allF16) {
        short[] bits = new short[Math.multiplyExact(rows, cols)];
        int off = 0;
        for (String name : names) {
          ByteBuffer raw = ckpt.raw(name);
          int n = raw.remaining() / 2;
          raw.order(java.nio.ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(bits, off, n);
          off += n;
        }
        if (Half.finite(bits)) {
          return new F16Matrix(bits, rows, cols);
        }
      }
      return new F32Matrix(vector(names), rows, cols);
    }
  }
}
