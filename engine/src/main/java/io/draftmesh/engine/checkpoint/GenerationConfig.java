package io.draftmesh.engine.checkpoint;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Default decoding settings from a checkpoint's optional {@code generation_config.json}. Fields
 * absent from the file take the Hugging Face defaults (temperature 1.0, top_k 50, top_p 1.0,
 * do_sample false), {@code max_new_tokens} defaults to {@link #DEFAULT_MAX_NEW_TOKENS}, and bos/eos
 * come from config.json. As in HF, temperature/top_k/top_p only matter when {@code doSample}.
 *
 * @param temperature softmax temperature, >= 0
 * @param topK keep the k most likely tokens; 0 disables the filter
 * @param topP nucleus mass in (0, 1]; 1 disables the filter
 * @param maxNewTokens default cap on generated tokens, > 0
 * @param eosTokenIds every id that ends generation (generation_config may list several); may be
 *     empty
 * @param bosTokenId -1 if none
 * @param doSample false means greedy decoding
 */
public record GenerationConfig(
    double temperature,
    int topK,
    double topP,
    int maxNewTokens,
    List<Integer> eosTokenIds,
    int bosTokenId,
    boolean doSample) {

  public static final int DEFAULT_MAX_NEW_TOKENS = 256;
  public static final int DEFAULT_TOP_K = 50;

  public GenerationConfig {
    if (!(temperature >= 0) || Double.isInfinite(temperature)) {
      throw new IllegalArgumentException("temperature " + temperature + " (expected: >= 0)");
    }
    if (topK < 0) {
      throw new IllegalArgumentException("top_k " + topK + " (expected: >= 0, 0 = disabled)");
    }
    if (!(topP > 0 && topP <= 1)) {
      throw new IllegalArgumentException("top_p " + topP + " (expected: 0 < top_p <= 1)");
    }
    if (maxNewTokens <= 0) {
      throw new IllegalArgumentException("max_new_tokens " + maxNewTokens + " (expected: > 0)");
    }
    eosTokenIds = List.copyOf(eosTokenIds);
  }

  /** The first eos id, or -1 if none. */
  public int eosTokenId() {
    return eosTokenIds.isEmpty() ? -1 : eosTokenIds.get(0);
  }

  /** HF defaults with bos/eos from {@code config}: what applies when the file is absent. */
  public static GenerationConfig defaults(ModelConfig config) {
    return new GenerationConfig(
        1.0,
        DEFAULT_TOP_K,
        1.0,
        DEFAULT_MAX_NEW_TOKENS,
        config.eosTokenId() < 0 ? List.of() : List.of(config.eosTokenId()),
        config.bosTokenId(),
        false);
  }

  /**
   * Reads {@code generationConfigJson} if it exists, else returns {@link #defaults(ModelConfig)}.
   */
  public static GenerationConfig load(Path generationConfigJson, ModelConfig config)
      throws IOException {
    if (!Files.exists(generationConfigJson)) {
      return defaults(config);
    }
    return fromJson(Json.readObject(generationConfigJson), generationConfigJson.toString(), config);
  }

  /** Parses generation_config.json text; {@code source} names it in messages. */
  public static GenerationConfig parse(String json, String source, ModelConfig config) {
    return fromJson(Json.parseObject(json, source), source, config);
  }

  private static GenerationConfig fromJson(JsonObject o, String src, ModelConfig config) {
    GenerationConfig d = defaults(config);
    List<Integer> eos = d.eosTokenIds();
    if (o.has("eos_token_id")) {
      int[] ids = Json.intOrIntList(o, "eos_token_id", src);
      eos = new ArrayList<>();
      if (ids != null) {
        for (int id : ids) {
          eos.add(id);
        }
      }
    }
    int bos = o.has("bos_token_id") ? Json.optInt(o, "bos_token_id", -1, src) : d.bosTokenId();
    try {
      return new GenerationConfig(
          Json.optDouble(o, "temperature", d.temperature(), src),
          Json.optInt(o, "top_k", d.topK(), src),
          Json.optDouble(o, "top_p", d.topP(), src),
          Json.optInt(o, "max_new_tokens", d.maxNewTokens(), src),
          eos,
          bos,
          Json.optBool(o, "do_sample", d.doSample(), src));
    } catch (IllegalArgumentException e) {
      throw new CheckpointException(src + ": " + e.getMessage(), e);
    }
  }

  /** HF generation_config.json text. */
  public String toJson() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("do_sample", doSample);
    m.put("temperature", temperature);
    m.put("top_k", topK);
    m.put("top_p", topP);
    m.put("max_new_tokens", maxNewTokens);
    m.put("bos_token_id", bosTokenId < 0 ? null : bosTokenId);
    if (eosTokenIds.size() == 1) {
      m.put("eos_token_id", eosTokenIds.get(0));
    } else {
      m.put("eos_token_id", eosTokenIds.isEmpty() ? null : eosTokenIds);
    }
    return Json.PRETTY.toJson(m) + "\n";
  }
}
