package io.draftmesh.engine.checkpoint;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The shape of a Llama-family decoder, as read from a Hugging Face {@code config.json} for {@code
 * LlamaForCausalLM}, {@code Qwen2ForCausalLM} or {@code MistralForCausalLM}.
 *
 * <p>The constructor validates every field and throws {@link IllegalArgumentException} naming the
 * config.json field; {@link #parse} rethrows as {@link CheckpointException} prefixed with the file.
 *
 * @param architecture one of {@link #SUPPORTED_ARCHITECTURES}
 * @param vocabSize {@code vocab_size}: rows of the embedding and of lm_head
 * @param hiddenSize {@code hidden_size}
 * @param intermediateSize {@code intermediate_size}: width of the SwiGLU MLP
 * @param numLayers {@code num_hidden_layers}
 * @param numHeads {@code num_attention_heads}
 * @param numKvHeads {@code num_key_value_heads} (defaults to numHeads: no GQA)
 * @param headDim {@code head_dim}, else hiddenSize / numHeads
 * @param ropeTheta {@code rope_theta} (default 10000)
 * @param ropeScaling {@code rope_scaling} of type llama3, or null for plain RoPE
 * @param rmsNormEps {@code rms_norm_eps} (default 1e-6)
 * @param maxPositionEmbeddings {@code max_position_embeddings}
 * @param tieWordEmbeddings {@code tie_word_embeddings}: lm_head reuses embed_tokens
 * @param attentionBias q/k/v projections carry a bias: true exactly for Qwen2
 * @param bosTokenId {@code bos_token_id}, -1 if none
 * @param eosTokenId {@code eos_token_id} (first one when a list), -1 if none
 */
public record ModelConfig(
    String architecture,
    int vocabSize,
    int hiddenSize,
    int intermediateSize,
    int numLayers,
    int numHeads,
    int numKvHeads,
    int headDim,
    double ropeTheta,
    RopeScaling ropeScaling,
    double rmsNormEps,
    int maxPositionEmbeddings,
    boolean tieWordEmbeddings,
    boolean attentionBias,
    int bosTokenId,
    int eosTokenId) {

  private static final Logger LOG = LoggerFactory.getLogger(ModelConfig.class);

  public static final String LLAMA = "LlamaForCausalLM";
  public static final String QWEN2 = "Qwen2ForCausalLM";
  public static final String MISTRAL = "MistralForCausalLM";
  public static final List<String> SUPPORTED_ARCHITECTURES = List.of(LLAMA, QWEN2, MISTRAL);

  private static final Map<String, String> MODEL_TYPES =
      Map.of(LLAMA, "llama", QWEN2, "qwen2", MISTRAL, "mistral");

  public ModelConfig {
    if (architecture == null || !SUPPORTED_ARCHITECTURES.contains(architecture)) {
      throw new IllegalArgumentException(
          "architecture "
              + architecture
              + " is not supported (supported: "
              + String.join(", ", SUPPORTED_ARCHITECTURES)
              + ")");
    }
    positive("vocab_size", vocabSize);
    positive("hidden_size", hiddenSize);
    positive("intermediate_size", intermediateSize);
    positive("num_hidden_layers", numLayers);
    positive("num_attention_heads", numHeads);
    positive("num_key_value_heads", numKvHeads);
    positive("head_dim", headDim);
    positive("max_position_embeddings", maxPositionEmbeddings);
    if (numHeads % numKvHeads != 0) {
      throw new IllegalArgumentException(
          "num_key_value_heads " + numKvHeads + " does not divide num_attention_heads " + numHeads);
    }
    if (headDim % 2 != 0) {
      throw new IllegalArgumentException(
          "head_dim " + headDim + " (expected: even, rotary embeddings rotate pairs)");
    }
    if (!(ropeTheta > 0) || Double.isInfinite(ropeTheta)) {
      throw new IllegalArgumentException("rope_theta " + ropeTheta + " (expected: > 0)");
    }
    if (!(rmsNormEps > 0) || Double.isInfinite(rmsNormEps)) {
      throw new IllegalArgumentException("rms_norm_eps " + rmsNormEps + " (expected: > 0)");
    }
    if (attentionBias != architecture.equals(QWEN2)) {
      throw new IllegalArgumentException(
          "attentionBias "
              + attentionBias
              + " for "
              + architecture
              + " (expected: true exactly for "
              + QWEN2
              + "; HF Llama's attention_bias also puts a bias on o_proj, Mistral has none)");
    }
    if (bosTokenId < -1 || bosTokenId >= vocabSize) {
      throw new IllegalArgumentException(
          "bos_token_id " + bosTokenId + " (expected: -1 or 0.." + (vocabSize - 1) + ")");
    }
    if (eosTokenId < -1 || eosTokenId >= vocabSize) {
      throw new IllegalArgumentException(
          "eos_token_id " + eosTokenId + " (expected: -1 or 0.." + (vocabSize - 1) + ")");
    }
  }

  private static void positive(String field, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException(field + " " + value + " (expected: > 0)");
    }
  }

  /** HF {@code model_type} for the architecture: llama, qwen2 or mistral. */
  public String modelType() {
    return MODEL_TYPES.get(architecture);
  }

  /** Query heads per key/value head (1 without GQA). */
  public int groupSize() {
    return numHeads / numKvHeads;
  }

  /**
   * Parameter count as HF reports it: every tensor in {@link #tensorShapes()} once (a tied lm_head
   * is not counted twice).
   */
  public long numParameters() {
    long total = 0;
    for (long[] shape : tensorShapes().values()) {
      long n = 1;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      total = Math.addExact(total, n);
    }
    return total;
  }

  /**
   * Every tensor the decoder needs, in HF order, with its shape ([out, in] for projections);
   * lm_head.weight only when embeddings are not tied, q/k/v biases only when {@link
   * #attentionBias}.
   */
  public Map<String, long[]> tensorShapes() {
    Map<String, long[]> out = new LinkedHashMap<>();
    for (TensorSpec spec : tensorSpecs()) {
      out.put(spec.name(), spec.shape().clone());
    }
    return Collections.unmodifiableMap(out);
  }

  /** A required tensor, its shape and the config fields the shape comes from. */
  record TensorSpec(String name, long[] shape, String reason) {}

  List<TensorSpec> tensorSpecs() {
    long h = hiddenSize;
    long q = (long) numHeads * headDim;
    long kv = (long) numKvHeads * headDim;
    long inter = intermediateSize;
    String hs = "hidden_size=" + hiddenSize;
    String qs = "num_attention_heads=" + numHeads + " * head_dim=" + headDim;
    String kvs = "num_key_value_heads=" + numKvHeads + " * head_dim=" + headDim;
    String is = "intermediate_size=" + intermediateSize;
    String vs = "vocab_size=" + vocabSize;
    List<TensorSpec> specs = new ArrayList<>();
    specs.add(spec("model.embed_tokens.weight", vs + ", " + hs, vocabSize, h));
    for (int i = 0; i < numLayers; i++) {
      String p = "model.layers." + i + ".";
      specs.add(spec(p + "input_layernorm.weight", hs, h));
      specs.add(spec(p + "self_attn.q_proj.weight", qs + ", " + hs, q, h));
      specs.add(spec(p + "self_attn.k_proj.weight", kvs + ", " + hs, kv, h));
      specs.add(spec(p + "self_attn.v_proj.weight", kvs + ", " + hs, kv, h));
      if (attentionBias) {
        specs.add(spec(p + "self_attn.q_proj.bias", qs, q));
        specs.add(spec(p + "self_attn.k_proj.bias", kvs, kv));
        specs.add(spec(p + "self_attn.v_proj.bias", kvs, kv));
      }
      specs.add(spec(p + "self_attn.o_proj.weight", hs + ", " + qs, h, q));
      specs.add(spec(p + "post_attention_layernorm.weight", hs, h));
      specs.add(spec(p + "mlp.gate_proj.weight", is + ", " + hs, inter, h));
      specs.add(spec(p + "mlp.up_proj.weight", is + ", " + hs, inter, h));
      specs.add(spec(p + "mlp.down_proj.weight", hs + ", " + is, h, inter));
    }
    specs.add(spec("model.norm.weight", hs, h));
    if (!tieWordEmbeddings) {
      specs.add(spec("lm_head.weight", vs + ", " + hs, vocabSize, h));
    }
    return specs;
  }

  private static TensorSpec spec(String name, String reason, long... shape) {
    return new TensorSpec(name, shape, reason);
  }

  // ---------------------------------------------------------------------------------------------
  // config.json

  /**
   * Reads a Hugging Face config.json. Missing optional fields take the HF defaults of the
   * architecture; structural fields (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
   * num_attention_heads) are required.
   *
   * @throws CheckpointException naming the file and the field when the config is malformed or
   *     describes a model this engine cannot run
   */
  public static ModelConfig parse(Path configJson) throws IOException {
    return fromJson(Json.readObject(configJson), configJson.toString());
  }

  /** Parses config.json text; {@code source} names it in messages. */
  public static ModelConfig parse(String json, String source) {
    return fromJson(Json.parseObject(json, source), source);
  }

  private static ModelConfig fromJson(JsonObject o, String src) {
    String arch = architectureOf(o, src);
    String act = Json.optString(o, "hidden_act", "silu", src);
    if (!act.equals("silu")) {
      throw new CheckpointException(src + ": hidden_act \"" + act + "\" (expected: \"silu\")");
    }
    int vocab = Json.requiredInt(o, "vocab_size", src);
    int hidden = Json.requiredInt(o, "hidden_size", src);
    int inter = Json.requiredInt(o, "intermediate_size", src);
    int layers = Json.requiredInt(o, "num_hidden_layers", src);
    int heads = Json.requiredInt(o, "num_attention_heads", src);
    int kvHeads = Json.optInt(o, "num_key_value_heads", heads, src);
    if (heads <= 0) {
      throw new CheckpointException(src + ": num_attention_heads " + heads + " (expected: > 0)");
    }
    int headDim;
    if (Json.present(o, "head_dim")) {
      headDim = Json.optInt(o, "head_dim", 0, src);
    } else {
      if (hidden % heads != 0) {
        throw new CheckpointException(
            src
                + ": num_attention_heads "
                + heads
                + " does not divide hidden_size "
                + hidden
                + " (and there is no head_dim)");
      }
      headDim = hidden / heads;
    }
    double theta = Json.optDouble(o, "rope_theta", 10000.0, src);
    RopeScaling scaling = RopeScaling.fromJson(Json.optObject(o, "rope_scaling", src), src);
    double eps = Json.optDouble(o, "rms_norm_eps", 1e-6, src);
    int defaultMaxPos = arch.equals(LLAMA) ? 2048 : arch.equals(QWEN2) ? 32768 : 4096 * 32;
    int maxPos = Json.optInt(o, "max_position_embeddings", defaultMaxPos, src);
    boolean tie = Json.optBool(o, "tie_word_embeddings", false, src);

    boolean bias = arch.equals(QWEN2);
    if (arch.equals(LLAMA) && Json.optBool(o, "attention_bias", false, src)) {
      throw new CheckpointException(
          src
              + ": attention_bias true is not supported for "
              + LLAMA
              + " (it adds biases to q/k/v and o_proj; only Qwen2-style q/k/v biases are"
              + " supported)");
    }
    if (Json.optBool(o, "mlp_bias", false, src)) {
      throw new CheckpointException(src + ": mlp_bias true is not supported (expected: false)");
    }
    warnAboutSlidingWindow(o, arch, maxPos, src);

    int defaultSpecial = arch.equals(QWEN2) ? -1 : 1;
    int bos = o.has("bos_token_id") ? Json.optInt(o, "bos_token_id", -1, src) : defaultSpecial;
    int eos;
    if (o.has("eos_token_id")) {
      int[] ids = Json.intOrIntList(o, "eos_token_id", src);
      eos = ids == null || ids.length == 0 ? -1 : ids[0];
    } else {
      eos = arch.equals(QWEN2) ? -1 : 2;
    }
    try {
      return new ModelConfig(
          arch, vocab, hidden, inter, layers, heads, kvHeads, headDim, theta, scaling, eps, maxPos,
          tie, bias, bos, eos);
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(src + ": " + e.getMessage(), e);
    }
  }

  private static String architectureOf(JsonObject o, String src) {
    String supported = " (supported: " + String.join(", ", SUPPORTED_ARCHITECTURES) + ")";
    if (Json.present(o, "architectures")) {
      JsonElement e = o.get("architectures");
      if (!e.isJsonArray() || e.getAsJsonArray().isEmpty()) {
        throw new CheckpointException(
            src + ": architectures must be a non-empty list, found " + Json.describe(e));
      }
      JsonArray a = e.getAsJsonArray();
      for (JsonElement item : a) {
        if (item.isJsonPrimitive() && SUPPORTED_ARCHITECTURES.contains(item.getAsString())) {
          return item.getAsString();
        }
      }
      throw new CheckpointException(
          src + ": architecture " + Json.describe(a.get(0)) + " is not supported" + supported);
    }
    String type = Json.optString(o, "model_type", null, src);
    if (type != null) {
      for (Map.Entry<String, String> entry : MODEL_TYPES.entrySet()) {
        if (entry.getValue().equals(type)) {
          return entry.getKey();
        }
      }
      throw new CheckpointException(
          src + ": model_type \"" + type + "\" is not supported" + supported);
    }
    throw new CheckpointException(
        src + ": missing architectures (and model_type)" + supported.replace(" (", "; "));
  }

  private static void warnAboutSlidingWindow(JsonObject o, String arch, int maxPos, String src) {
    if (!Json.present(o, "sliding_window") || arch.equals(LLAMA)) {
      return;
    }
    boolean used = arch.equals(MISTRAL) || Json.optBool(o, "use_sliding_window", false, src);
    int window = Json.optInt(o, "sliding_window", Integer.MAX_VALUE, src);
    if (used && window < maxPos) {
      LOG.warn(
          "{}: sliding_window {} is ignored: attention is full up to max_position_embeddings {};"
              + " outputs differ from HF beyond {} tokens",
          src,
          window,
          maxPos,
          window);
    }
  }

  /** This config as HF config.json text, with {@code torch_dtype} float32. */
  public String toJson() {
    return toJson(DType.F32);
  }

  /** This config as HF config.json text; {@code torchDtype} is the storage dtype of the weights. */
  public String toJson(DType torchDtype) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("architectures", List.of(architecture));
    m.put("model_type", modelType());
    m.put("vocab_size", vocabSize);
    m.put("hidden_size", hiddenSize);
    m.put("intermediate_size", intermediateSize);
    m.put("num_hidden_layers", numLayers);
    m.put("num_attention_heads", numHeads);
    m.put("num_key_value_heads", numKvHeads);
    m.put("head_dim", headDim);
    m.put("hidden_act", "silu");
    m.put("max_position_embeddings", maxPositionEmbeddings);
    m.put("rms_norm_eps", rmsNormEps);
    m.put("rope_theta", ropeTheta);
    m.put("rope_scaling", ropeScaling == null ? null : ropeScaling.toJsonMap());
    m.put("tie_word_embeddings", tieWordEmbeddings);
    if (architecture.equals(LLAMA)) {
      m.put("attention_bias", false);
      m.put("mlp_bias", false);
    }
    if (!architecture.equals(LLAMA)) {
      // HF Mistral defaults sliding_window to 4096; this engine attends to the full context.
      m.put("sliding_window", null);
      m.put("use_sliding_window", false);
    }
    m.put("bos_token_id", bosTokenId < 0 ? null : bosTokenId);
    m.put("eos_token_id", eosTokenId < 0 ? null : eosTokenId);
    m.put("torch_dtype", torchDtype.torchName());
    m.put("use_cache", true);
    return Json.PRETTY.toJson(m) + "\n";
  }

  /**
   * Rotary-embedding frequency scaling from config.json's {@code rope_scaling}; only the Llama 3.1
   * scheme ({@code rope_type: llama3}) is supported.
   *
   * @param type always {@code "llama3"}
   * @param factor {@code factor}: how much low frequencies are slowed down (8 in Llama 3.1)
   * @param lowFreqFactor {@code low_freq_factor} (1 in Llama 3.1)
   * @param highFreqFactor {@code high_freq_factor} (4 in Llama 3.1)
   * @param originalMaxPositionEmbeddings {@code original_max_position_embeddings} (8192)
   */
  public record RopeScaling(
      String type,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalMaxPositionEmbeddings) {

    public static final String LLAMA3 = "llama3";

    public RopeScaling {
      if (!LLAMA3.equals(type)) {
        throw new IllegalArgumentException(
            "rope_scaling.rope_type \""
                + type
                + "\" is not supported (supported: llama3, default)");
      }
      if (!(factor >= 1) || Double.isInfinite(factor)) {
        throw new IllegalArgumentException("rope_scaling.factor " + factor + " (expected: >= 1)");
      }
      if (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)) {
        throw new IllegalArgumentException(
            "rope_scaling.low_freq_factor "
                + lowFreqFactor
                + " and high_freq_factor "
                + highFreqFactor
                + " (expected: 0 < low_freq_factor < high_freq_factor)");
      }
      if (originalMaxPositionEmbeddings <= 0) {
        throw new IllegalArgumentException(
            "rope_scaling.original_max_position_embeddings "
                + originalMaxPositionEmbeddings
                + " (expected: > 0)");
      }
    }

    /** Llama 3.1 scaling with the given factor and the Llama 3.1 defaults 1, 4 and 8192. */
    public static RopeScaling llama3(double factor, int originalMaxPositionEmbeddings) {
      return new RopeScaling(LLAMA3, factor, 1.0, 4.0, originalMaxPositionEmbeddings);
    }

    static RopeScaling fromJson(JsonObject o, String src) {
      if (o == null) {
        return null;
      }
      String type = Json.optString(o, "rope_type", null, src);
      if (type == null) {
        type = Json.optString(o, "type", "default", src);
      }
      if (type.equals("default")) {
        return null;
      }
      if (!type.equals(LLAMA3)) {
        throw new CheckpointException(
            src
                + ": rope_scaling.rope_type \""
                + type
                + "\" is not supported (supported: llama3, default)");
      }
      String s = src + ": rope_scaling";
      try {
        return new RopeScaling(
            type,
            Json.requiredDouble(o, "factor", s),
            Json.requiredDouble(o, "low_freq_factor", s),
            Json.requiredDouble(o, "high_freq_factor", s),
            Json.requiredInt(o, "original_max_position_embeddings", s));
      } catch (IllegalArgumentException e) {
        throw new CheckpointException(src + ": " + e.getMessage(), e);
      }
    }

    Map<String, Object> toJsonMap() {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("rope_type", type);
      m.put("factor", factor);
      m.put("low_freq_factor", lowFreqFactor);
      m.put("high_freq_factor", highFreqFactor);
      m.put("original_max_position_embeddings", originalMaxPositionEmbeddings);
      return m;
    }

    /**
     * The RoPE inverse frequencies {@code inv_freq[i] = rope_theta^(-2i/head_dim)}, i in [0,
     * head_dim/2), with the config's llama3 scaling applied exactly as transformers' {@code
     * _compute_llama3_parameters}: wavelengths {@code 2*pi/inv_freq} shorter than {@code
     * original_max_position_embeddings / high_freq_factor} are kept, longer than {@code
     * original_max_position_embeddings / low_freq_factor} are divided by {@code factor}, and those
     * in between are blended with {@code smooth = (original / wavelen - low) / (high - low)}.
     *
     * <p>Computed in double precision (HF computes in float32; casting these to float differs from
     * HF's tensor by at most a few ulps). Uses {@code head_dim} like current transformers (older
     * releases used hidden_size / num_attention_heads, identical unless head_dim is set).
     */
    public static double[] inverseFrequencies(ModelConfig config) {
      int dim = config.headDim();
      double[] inv = new double[dim / 2];
      for (int i = 0; i < inv.length; i++) {
        inv[i] = 1.0 / Math.pow(config.ropeTheta(), (2.0 * i) / dim);
      }
      RopeScaling s = config.ropeScaling();
      if (s == null) {
        return inv;
      }
      double old = s.originalMaxPositionEmbeddings();
      double lowFreqWavelen = old / s.lowFreqFactor();
      double highFreqWavelen = old / s.highFreqFactor();
      for (int i = 0; i < inv.length; i++) {
        double wavelen = 2 * Math.PI / inv[i];
        if (wavelen < highFreqWavelen) {
          continue; // high frequency: unchanged
        }
        if (wavelen > lowFreqWavelen) {
          inv[i] = inv[i] / s.factor();
        } else {
          double smooth =
              (old / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
          inv[i] = (1 - smooth) * inv[i] / s.factor() + smooth * inv[i];
        }
      }
      return inv;
    }
  }

  @Override
  public String toString() {
    return architecture
        + "[vocab="
        + vocabSize
        + ", hidden="
        + hiddenSize
        + ", intermediate="
        + intermediateSize
        + ", layers="
        + numLayers
        + ", heads="
        + numHeads
        + ", kvHeads="
        + numKvHeads
        + ", headDim="
        + headDim
        + ", ropeTheta="
        + ropeTheta
        + ", ropeScaling="
        + ropeScaling
        + ", rmsNormEps="
        + rmsNormEps
        + ", maxPos="
        + maxPositionEmbeddings
        + ", tied="
        + tieWordEmbeddings
        + ", qkvBias="
        + attentionBias
        + ", bos="
        + bosTokenId
        + ", eos="
        + eosTokenId
        + ", params="
        + numParameters()
        + "]";
  }
}
