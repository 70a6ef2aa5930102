package io.draftmesh.engine.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.ModelConfig.RopeScaling;
import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.kv.KvDtype;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Llama-family decoder (Llama, Mistral, Qwen2): RMSNorm, rotate-half RoPE (with llama3
 * scaling), GQA attention with optional Q/K/V bias, SwiGLU MLP. fp32 compute.
 *
 * <p>Two forwards share every layer function: {@link #forward} runs a batch of sequences against
 * the paged KV cache (the serving path), {@link #forwardFull} runs whole sequences with no cache
 * (the reference for tests and the training path, differentiable).
 *
 * <p>Q/K/V and gate/up projections are fused at load (one matmul each instead of three and two);
 * {@link #exportTensors} splits them back into Hugging Face names.
 *
 * <p>The KV pool's off-heap buffers are wrapped zero-copy as NDArrays (one view per layer, made on
 * the first step over a pool), so both backends share one pool layout.
 */
public final class LlamaModel implements DecoderModel {
  private final ModelConfig config;
  private final NDManager manager;
  private final int maxContext;
  private final int heads;
  private final int kvHeads;
  private final int headDim;
  private final int group; // query heads per KV head

  private final NDArray embed; // (vocab, hidden)
  private final NDArray lmHead; // (vocab, hidden); the same array as embed when tied
  private final NDArray finalNorm; // (hidden)
  private final Layer[] layers;
  private final NDArray cos; // (maxContext, headDim): cos(pos * invFreq[i mod headDim/2])
  private final NDArray sin; // (maxContext, headDim)
  private final NDArray eps; // () rms_norm_eps
  private final NDArray attnScale; // () 1/sqrt(headDim)
  private PoolViews views; // the pool of the last step, wrapped; replaced when the pool changes

  /** A pool's per-layer buffers as NDArrays sharing their memory. */
  private record PoolViews(
      KvBlockPool pool,
      NDManager manager,
      NDArray[] keys, // per layer: (kvHeads, slots, headDim), the pool's bytes
      NDArray[] values) {} // per layer: (kvHeads, slots, headDim)

  /** One decoder layer's weights, in torch's (out, in) layout. */
  private record Layer(
      NDArray attnNorm, // (hidden)
      NDArray wqkv, // ((heads + 2 * kvHeads) * headDim, hidden)
      NDArray bqkv, // ((heads + 2 * kvHeads) * headDim) or null
      NDArray wo, // (hidden, heads * headDim)
      NDArray mlpNorm, // (hidden)
      NDArray wGateUp, // (2 * intermediate, hidden)
      NDArray wDown) {} // (hidden, intermediate)

  private LlamaModel(ModelConfig config, NDManager manager, int maxContext, Checkpoint ckpt) {
    this.config = config;
    this.manager = manager;
    this.maxContext = maxContext;
    this.heads = config.numHeads();
    this.kvHeads = config.numKvHeads();
    this.headDim = config.headDim();
    this.group = heads / kvHeads;
    this.embed = tensor(ckpt, "model.embed_tokens.weight");
    this.lmHead = config.tieWordEmbeddings() ? embed : tensor(ckpt, "lm_head.weight");
    this.finalNorm = tensor(ckpt, "model.norm.weight");
    this.layers = new Layer[config.numLayers()];
    for (int l = 0; l < layers.length; l++) {
      String p = "model.layers." + l + ".";
      NDArray bias = null;
      if (config.attentionBias()) {
        bias =
            concat(
                0,
                tensor(ckpt, p + "self_attn.q_proj.bias"),
                tensor(ckpt, p + "self_attn.k_proj.bias"),
                tensor(ckpt, p + "self_attn.v_proj.bias"));
      }
      layers[l] =
          new Layer(
              tensor(ckpt, p + "input_layernorm.weight"),
              concat(
                  0,
                  tensor(ckpt, p + "self_attn.q_proj.weight"),
                  tensor(ckpt, p + "self_attn.k_proj.weight"),
                  tensor(ckpt, p + "self_attn.v_proj.weight")),
              bias,
              tensor(ckpt, p + "self_attn.o_proj.weight"),
              tensor(ckpt, p + "post_attention_layernorm.weight"),
              concat(
                  0,
                  tensor(ckpt, p + "mlp.gate_proj.weight"),
                  tensor(ckpt, p + "mlp.up_proj.weight")),
              tensor(ckpt, p + "mlp.down_proj.weight"));
    }
    double[] invFreq = RopeScaling.inverseFrequencies(config);
    float[] c = new float[maxContext * headDim];
    float[] s = new float[maxContext * headDim];
    int half = headDim / 2;
    for (int pos = 0; pos < maxContext; pos++) {
      for (int i = 0; i < headDim; i++) {
        double angle = pos * invFreq[i % half];
        c[pos * headDim + i] = (float) Math.cos(angle);
        s[pos * headDim + i] = (float) Math.sin(angle);
      }
    }
    this.cos = manager.create(c, new Shape(maxContext, headDim));
    this.sin = manager.create(s, new Shape(maxContext, headDim));
    this.eps = manager.create((float) config.rmsNormEps());
    this.attnScale = manager.create((float) (1.0 / Math.sqrt(headDim)));
  }

  /**
   * Loads the decoder from a checkpoint. Weights are copied into arrays owned by a sub-manager of
   * {@code parent}, so the checkpoint may be closed afterwards and training may update them in
   * place.
   *
   * @param maxContext positions to precompute RoPE for; at most max_position_embeddings
   */
  public static LlamaModel load(Checkpoint ckpt, NDManager parent, int maxContext) {
    ModelConfig config = ckpt.config();
    ckpt.requireTensors();
    int context = Math.min(maxContext, config.maxPositionEmbeddings());
    return new LlamaModel(config, parent.newSubManager(), context, ckpt);
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
    return Backend.DJL;
  }

  @Override
  public String describe() {
    return "djl: PyTorch "
        + manager.getEngine().getVersion()
        + ", float32, "
        + System.getProperty("ai.djl.pytorch.num_threads", "default")
        + " intra-op threads";
  }

  @Override
  public String weightDtype() {
    return "float32";
  }

  /**
   * The pool's layers as NDArrays over its own memory (zero-copy: writes through either are seen by
   * the other). Cached for the pool of the last step.
   */
  NDArray[][] poolViews(KvBlockPool pool) {
    if (views == null || views.pool() != pool) {
      if (views != null) {
        views.manager().close();
      }
      NDManager m = manager.newSubManager();
      int layers = pool.layers();
      NDArray[] k = new NDArray[layers];
      NDArray[] v = new NDArray[layers];
      Shape shape = new Shape(pool.kvHeads(), pool.slots(), pool.headDim());
      DataType type = kvType(pool);
      for (int l = 0; l < layers; l++) {
        k[l] = m.create(pool.keys(l), shape, type);
        v[l] = m.create(pool.values(l), shape, type);
      }
      views = new PoolViews(pool, m, k, v);
    }
    if (pool.isClosed()) {
      throw new IllegalStateException("kv pool is closed");
    }
    return new NDArray[][] {views.keys(), views.values()};
  }

  private static DataType kvType(KvBlockPool pool) {
    return pool.dtype() == KvDtype.FLOAT16 ? DataType.FLOAT16 : DataType.FLOAT32;
  }

  /**
   * A layer's keys and values (float32) as the pool stores them: float16 rounds to nearest even, as
   * the vector backend does, and refuses a value the pool cannot hold the same way (one read back
   * of the largest magnitude for both, not one each).
   */
  private static NDArray[] toPool(NDArray keys, NDArray values, KvBlockPool pool) {
    if (pool.dtype() != KvDtype.FLOAT16) {
      return new NDArray[] {keys, values};
    }
    float worst = keys.abs().max().maximum(values.abs().max()).getFloat();
    if (!(worst <= KvDtype.FLOAT16_MAX)) {
      throw KvDtype.outOfRange(worst);
    }
    return new NDArray[] {
      keys.toType(DataType.FLOAT16, false), values.toType(DataType.FLOAT16, false)
    };
  }

  public NDManager manager() {
    return manager;
  }

  /** Every trainable array (fused layout). The same arrays the forwards read. */
  public List<NDArray> parameters() {
    List<NDArray> params = new ArrayList<>();
    params.add(embed);
    if (lmHead != embed) {
      params.add(lmHead);
    }
    params.add(finalNorm);
    for (Layer l : layers) {
      params.add(l.attnNorm);
      params.add(l.wqkv);
      if (l.bqkv != null) {
        params.add(l.bqkv);
      }
      params.add(l.wo);
      params.add(l.mlpNorm);
      params.add(l.wGateUp);
      params.add(l.wDown);
    }
    return params;
  }

  /**
   * The weights under their Hugging Face names (fused projections split back), as (shape, data).
   */
  public Map<String, NDArray> exportTensors(NDManager into) {
    Map<String, NDArray> out = new LinkedHashMap<>();
    out.put("model.embed_tokens.weight", copy(embed, into));
    int q = heads * headDim;
    int kv = kvHeads * headDim;
    int inter = config.intermediateSize();
    for (int l = 0; l < layers.length; l++) {
      Layer w = layers[l];
      String p = "model.layers." + l + ".";
      out.put(p + "input_layernorm.weight", copy(w.attnNorm, into));
      NDList qkv = w.wqkv.split(new long[] {q, q + kv}, 0);
      out.put(p + "self_attn.q_proj.weight", copy(qkv.get(0), into));
      out.put(p + "self_attn.k_proj.weight", copy(qkv.get(1), into));
      out.put(p + "self_attn.v_proj.weight", copy(qkv.get(2), into));
      qkv.close();
      if (w.bqkv != null) {
        NDList b = w.bqkv.split(new long[] {q, q + kv}, 0);
        out.put(p + "self_attn.q_proj.bias", copy(b.get(0), into));
        out.put(p + "self_attn.k_proj.bias", copy(b.get(1), into));
        out.put(p + "self_attn.v_proj.bias", copy(b.get(2), into));
        b.close();
      }
      out.put(p + "self_attn.o_proj.weight", copy(w.wo, into));
      out.put(p + "post_attention_layernorm.weight", copy(w.mlpNorm, into));
      NDList gu = w.wGateUp.split(new long[] {inter}, 0);
      out.put(p + "mlp.gate_proj.weight", copy(gu.get(0), into));
      out.put(p + "mlp.up_proj.weight", copy(gu.get(1), into));
      gu.close();
      out.put(p + "mlp.down_proj.weight", copy(w.wDown, into));
    }
    out.put("model.norm.weight", copy(finalNorm, into));
    if (lmHead != embed) {
      out.put("lm_head.weight", copy(lmHead, into));
    }
    return out;
  }

  /**
   * Runs one batched step: each sequence feeds its new tokens, writes their keys/values into its
   * blocks and attends over its whole history. Linear layers run on all T = sum(new tokens) rows at
   * once; attention pads the batch to (B, maxNew, maxLength) with an additive mask.
   */
  @Override
  public synchronized List<StepResult> forward(List<SeqStep> batch, KvBlockPool pool) {
    NDArray[][] kv = poolViews(pool);
    int b = batch.size();
    int total = 0;
    int maxNew = 0;
    int maxLen = 0;
    int logitRowCount = 0;
    for (SeqStep s : batch) {
      total += s.tokens().length;
      maxNew = Math.max(maxNew, s.tokens().length);
      maxLen = Math.max(maxLen, s.length());
      logitRowCount += s.logitRows().length;
      if (s.positionEnd() > maxContext) {
        throw new IllegalArgumentException(
            "sequence length " + s.positionEnd() + " exceeds max context " + maxContext);
      }
    }
    long[] tokenIds = new long[total]; // (T)
    long[] positions = new long[total]; // (T)
    long[] slots = new long[total]; // (T) pool slot each new token's KV is written to
    long[] queryRows = new long[b * maxNew]; // (B * maxNew) flat row of each padded query; pad: 0
    long[] outRows = new long[total]; // (T) padded row of each flat token
    long[] logitRows = new long[logitRowCount];
    float[] mask = new float[b * group * maxNew * maxLen]; // (1, B, group * maxNew, maxLen)
    int t = 0;
    int lr = 0;
    for (int i = 0; i < b; i++) {
      SeqStep s = batch.get(i);
      int n = s.tokens().length;
      for (int r : s.logitRows()) {
        logitRows[lr++] = t + r;
      }
      for (int r = 0; r < n; r++) {
        tokenIds[t + r] = s.tokens()[r];
        positions[t + r] = s.position(r); // RoPE: slot position + compaction shift
        slots[t + r] = s.table().slot(s.startPos() + r);
        queryRows[i * maxNew + r] = t + r;
        outRows[t + r] = (long) i * maxNew + r;
      }
      for (int g = 0; g < group; g++) {
        for (int r = 0; r < maxNew; r++) {
          int row = ((i * group + g) * maxNew + r) * maxLen;
          // Padded query rows attend to key 0 only, so softmax never sees an all -inf row.
          int visible = r < n ? s.startPos() + r + 1 : 1;
          for (int j = visible; j < maxLen; j++) {
            mask[row + j] = Float.NEGATIVE_INFINITY;
          }
          if (r < n && s.tree() != null) {
            treeMask(s.tree(), s.startPos() + r, mask, row);
          }
        }
      }
      t += n;
    }

    List<float[][]> attention = new ArrayList<>();
    boolean anyCapture = batch.stream().anyMatch(SeqStep::captureAttention);
    for (int i = 0; i < b; i++) {
      attention.add(batch.get(i).captureAttention() ? new float[layers.length][] : null);
    }
    float[] logits;
    try (NDScope scope = new NDScope()) {
      scope.suppressNotUsedWarning();
      NDIndex slotIndex = new NDIndex(":, {}", manager.create(slots));
      List<HistoryPart> history = historySlices(batch, maxLen);
      // sliced for short rows, in the pool's dtype so the history concatenates
      NDArray padding = manager.zeros(new Shape(kvHeads, maxLen, headDim), kvType(pool));
      NDArray queryIndex = b == 1 ? null : manager.create(queryRows);
      NDArray outIndex = b == 1 ? null : manager.create(outRows);
      NDArray maskArr = manager.create(mask, new Shape(1, b, (long) group * maxNew, maxLen));
      NDArray posIndex = manager.create(positions);
      NDArray cosT = cos.get(posIndex).reshape(total, 1, headDim);
      NDArray sinT = sin.get(posIndex).reshape(total, 1, headDim);

      NDArray x = embed.get(manager.create(tokenIds)); // (T, hidden)
      for (int l = 0; l < layers.length; l++) {
        Layer w = layers[l];
        NDArray[] qkv = projectQkv(rmsNorm(x, w.attnNorm), w, cosT, sinT, total);
        NDArray[] written = toPool(qkv[1].transpose(1, 0, 2), qkv[2].transpose(1, 0, 2), pool);
        kv[0][l].set(slotIndex, written[0]); // (kvHeads, T, headDim)
        kv[1][l].set(slotIndex, written[1]);
        // (kvHeads, B, maxLen, headDim): every sequence's history, read as slices of its block runs
        // (views) and padded, in one concatenating copy.
        NDArray keys = readHistory(kv[0][l], history, padding).reshape(kvHeads, b, maxLen, headDim);
        NDArray vals = readHistory(kv[1][l], history, padding).reshape(kvHeads, b, maxLen, headDim);
        NDArray q = b == 1 ? qkv[0] : qkv[0].get(queryIndex); // (B * maxNew, heads, headDim)
        NDArray q4 =
            q.reshape(b, maxNew, kvHeads, group, headDim)
                .transpose(2, 0, 3, 1, 4)
                .reshape(kvHeads, b, (long) group * maxNew, headDim);
        // keys.transpose is a stride view: the batched matmul reads it as a transposed operand.
        NDArray probs =
            q4.matMul(keys.transpose(0, 1, 3, 2)).mul(attnScale).add(maskArr).softmax(3);
        if (anyCapture) {
          capture(batch, attention, l, probs, maxNew, maxLen);
        }
        NDArray att =
            probs
                .matMul(vals) // (kvHeads, B, group * maxNew, headDim)
                .reshape(kvHeads, b, group, maxNew, headDim)
                .transpose(1, 3, 0, 2, 4) // (B, maxNew, kvHeads, group, headDim)
                .reshape((long) b * maxNew, (long) heads * headDim);
        if (b > 1) {
          att = att.get(outIndex); // (T, heads * headDim)
        }
        x = x.add(linear(att, w.wo, null));
        x = x.add(mlp(rmsNorm(x, w.mlpNorm), w));
      }
      NDArray rows = x.get(manager.create(logitRows)); // (rows, hidden)
      logits = linear(rmsNorm(rows, finalNorm), lmHead, null).toFloatArray(); // (rows, vocab)
    }

    int vocab = config.vocabSize();
    List<StepResult> results = new ArrayList<>(b);
    int offset = 0;
    for (int i = 0; i < b; i++) {
      SeqStep s = batch.get(i);
      float[][] rows = new float[s.logitRows().length][];
      for (int r = 0; r < rows.length; r++) {
        rows[r] = new float[vocab];
        System.arraycopy(logits, (offset + r) * vocab, rows[r], 0, vocab);
      }
      offset += rows.length;
      results.add(new StepResult(rows, attention.get(i)));
    }
    return results;
  }

  /** Hides the tree's nodes that are not on the path of the node in slot {@code index}. */
  private static void treeMask(TreeMask tree, int index, float[] mask, int row) {
    int base = tree.base();
    boolean[] onPath = new boolean[index - base + 1];
    for (int node : tree.path(index - base)) {
      onPath[node] = true;
    }
    for (int j = base; j <= index; j++) {
      if (!onPath[j - base]) {
        mask[row + j] = Float.NEGATIVE_INFINITY;
      }
    }
  }

  /**
   * Full-sequence forward with no cache: tokens (B, T) → logits (B, T, vocab). Differentiable; the
   * caller owns the returned array and must scope intermediates (an {@link NDScope} or a
   * GradientCollector's lifetime).
   */
  public NDArray forwardFull(NDArray tokens) {
    long b = tokens.getShape().get(0);
    int len = (int) tokens.getShape().get(1);
    if (len > maxContext) {
      throw new IllegalArgumentException(
          "sequence length " + len + " exceeds max context " + maxContext);
    }
    float[] mask = new float[group * len * len]; // (1, 1, group * T, T) causal
    for (int g = 0; g < group; g++) {
      for (int r = 0; r < len; r++) {
        for (int j = r + 1; j < len; j++) {
          mask[(g * len + r) * len + j] = Float.NEGATIVE_INFINITY;
        }
      }
    }
    NDManager m = tokens.getManager();
    NDArray maskArr = m.create(mask, new Shape(1, 1, (long) group * len, len));
    NDArray posIndex = m.arange(0, len, 1, DataType.INT64);
    NDArray cosT = cos.get(posIndex).reshape(len, 1, headDim);
    NDArray sinT = sin.get(posIndex).reshape(len, 1, headDim);
    int rows = (int) (b * len);
    NDArray x = embed.get(tokens.reshape(rows)); // (B * T, hidden)
    for (Layer w : layers) {
      NDArray[] qkv =
          projectQkv(
              rmsNorm(x, w.attnNorm),
              w,
              cosT.tile(new long[] {b, 1, 1}),
              sinT.tile(new long[] {b, 1, 1}),
              rows);
      NDArray q4 =
          qkv[0]
              .reshape(b, len, heads, headDim)
              .transpose(0, 2, 1, 3)
              .reshape(b, kvHeads, (long) group * len, headDim);
      NDArray keysT = qkv[1].reshape(b, len, kvHeads, headDim).transpose(0, 2, 3, 1);
      NDArray vals = qkv[2].reshape(b, len, kvHeads, headDim).transpose(0, 2, 1, 3);
      NDArray att =
          q4.matMul(keysT)
              .mul(attnScale)
              .add(maskArr)
              .softmax(3)
              .matMul(vals)
              .reshape(b, heads, len, headDim)
              .transpose(0, 2, 1, 3)
              .reshape(rows, (long) heads * headDim);
      x = x.add(linear(att, w.wo, null));
      x = x.add(mlp(rmsNorm(x, w.mlpNorm), w));
    }
    return linear(rmsNorm(x, finalNorm), lmHead, null).reshape(b, len, config.vocabSize());
  }

  /** One piece of a batch's attention history: a slice of the KV pool or of the padding array. */
  private record HistoryPart(NDIndex slice, boolean padding) {}

  /**
   * How to read each sequence's history, in batch order: one slice per run of contiguous slots in
   * its blocks, then padding up to {@code maxLen}. Shared by every layer of a step.
   */
  private static List<HistoryPart> historySlices(List<SeqStep> batch, int maxLen) {
    List<HistoryPart> parts = new ArrayList<>();
    for (SeqStep s : batch) {
      long[] runs = s.table().slotRuns(s.length());
      for (int r = 0; r < runs.length; r += 2) {
        parts.add(
            new HistoryPart(new NDIndex().addAllDim().addSliceDim(runs[r], runs[r + 1]), false));
      }
      if (s.length() < maxLen) {
        parts.add(
            new HistoryPart(new NDIndex().addAllDim().addSliceDim(0, maxLen - s.length()), true));
      }
    }
    return parts;
  }

  /**
   * Concatenates the parts along the slot axis: (kvHeads, B * maxLen, headDim). Slices are views,
   * so this costs one copy at memory speed; DJL's advanced-index gather of the same slots was 4–14×
   * slower, and it dominated batched decode at long contexts.
   */
  private static NDArray readHistory(NDArray pool, List<HistoryPart> parts, NDArray padding) {
    NDList views = new NDList(parts.size());
    for (HistoryPart part : parts) {
      views.add((part.padding() ? padding : pool).get(part.slice()));
    }
    NDArray history = views.size() == 1 ? views.get(0) : NDArrays.concat(views, 1);
    return history.getDataType() == DataType.FLOAT32
        ? history
        : history.toType(DataType.FLOAT32, false);
  }

  /** (T, hidden) → roped q (T, heads, headDim), roped k and v (T, kvHeads, headDim). */
  private NDArray[] projectQkv(NDArray h, Layer w, NDArray cosT, NDArray sinT, int rows) {
    NDArray qkv = linear(h, w.wqkv, w.bqkv).reshape(rows, heads + 2L * kvHeads, headDim);
    NDList qkAndV = qkv.split(new long[] {heads + kvHeads}, 1);
    NDArray qk = rope(qkAndV.get(0), cosT, sinT); // (T, heads + kvHeads, headDim)
    NDList qAndK = qk.split(new long[] {heads}, 1);
    return new NDArray[] {qAndK.get(0), qAndK.get(1), qkAndV.get(1)};
  }

  /** Rotate-half RoPE as in Hugging Face Llama: x * cos + rotate_half(x) * sin. */
  private NDArray rope(NDArray x, NDArray cosT, NDArray sinT) {
    NDList halves = x.split(2, 2);
    NDArray rotated = halves.get(1).neg().concat(halves.get(0), 2);
    return x.mul(cosT).add(rotated.mul(sinT));
  }

  private NDArray rmsNorm(NDArray x, NDArray weight) {
    int last = x.getShape().dimension() - 1;
    return x.div(x.square().mean(new int[] {last}, true).add(eps).sqrt()).mul(weight);
  }

  private NDArray mlp(NDArray h, Layer w) {
    NDList gateUp = linear(h, w.wGateUp, null).split(2, 1);
    NDArray gate = gateUp.get(0);
    return linear(gate.mul(Activation.sigmoid(gate)).mul(gateUp.get(1)), w.wDown, null);
  }

  private static NDArray linear(NDArray x, NDArray weight, NDArray bias) {
    NDList out = bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias);
    return out.singletonOrThrow();
  }

  private void capture(
      List<SeqStep> batch,
      List<float[][]> attention,
      int layer,
      NDArray probs,
      int maxNew,
      int maxLen) {
    for (int i = 0; i < batch.size(); i++) {
      SeqStep s = batch.get(i);
      if (!s.captureAttention()) {
        continue;
      }
      int n = s.tokens().length;
      // (kvHeads, group * maxNew, maxLen) = (heads, maxNew, maxLen) → keep real queries and keys.
      NDArray mine =
          probs
              .get(new NDIndex(":, " + i))
              .reshape(heads, maxNew, maxLen)
              .get(new NDIndex(":, 0:" + n + ", 0:" + s.length()));
      attention.get(i)[layer] = mine.toFloatArray();
    }
  }

  private NDArray tensor(Checkpoint ckpt, String name) {
    ByteBuffer data = ckpt.tensor(name);
    NDArray view = manager.create(data, new Shape(ckpt.shape(name)), DataType.FLOAT32);
    // Own a copy: the checkpoint's mapping may be closed, and training updates weights in place.
    NDArray owned = view.duplicate();
    view.close();
    return owned;
  }

  private NDArray concat(int axis, NDArray... parts) {
    NDArray out = NDArrays.concat(new NDList(parts), axis);
    for (NDArray p : parts) {
      p.close();
    }
    return out;
  }

  private static NDArray copy(NDArray a, NDManager into) {
    NDArray c = a.duplicate();
    c.attach(into);
    return c;
  }

  @Override
  public synchronized void close() {
    views = null;
    manager.close();
  }
}
