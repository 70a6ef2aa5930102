package io.draftmesh.gateway;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import io.draftmesh.proto.v1.Drafter;
import io.draftmesh.proto.v1.EntropySwitchOptions;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.KvCompressionOptions;
import io.draftmesh.proto.v1.LeadInOptions;
import io.draftmesh.proto.v1.NgramOptions;
import io.draftmesh.proto.v1.NudgingOptions;
import io.draftmesh.proto.v1.Sampling;
import io.draftmesh.proto.v1.SpecPcOptions;
import io.draftmesh.proto.v1.SpeculativeOptions;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.TextParts;
import io.draftmesh.proto.v1.TokenIds;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * OpenAI request bodies to {@code GenerateRequest}s, validated at the edge: every refusal is
 * INVALID_ARGUMENT naming the field, its value and what was expected ({@code "max_tokens: 0
 * (expected: 1..8192)"}).
 *
 * <p>Sampling follows the OpenAI reference's defaults (temperature 1, top_p 1, and for {@code
 * /v1/completions} max_tokens 16); {@code top_k} and {@code min_p} are accepted as vLLM does.
 * Unsupported features that would change the output (n &gt; 1, echo, logprobs, penalties, logit
 * bias, tools) are refused rather than ignored; unknown top-level fields are ignored, as newer SDKs
 * send fields older servers do not know. DraftMesh's own options come in the {@code draftmesh}
 * object, where unknown keys are refused.
 */
final class OpenAiRequests {
  /** OpenAI's default max_tokens for the legacy completions endpoint. */
  static final int COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

  static final int MAX_STOPS = 4;

  private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

  private static final Map<String, Strategy> STRATEGIES =
      Map.of(
          "default", Strategy.STRATEGY_UNSPECIFIED,
          "autoregressive", Strategy.STRATEGY_AUTOREGRESSIVE,
          "speculative", Strategy.STRATEGY_SPECULATIVE,
          "ngram", Strategy.STRATEGY_NGRAM,
          "nudging", Strategy.STRATEGY_NUDGING,
          "entropy_switch", Strategy.STRATEGY_ENTROPY_SWITCH,
          "lead_in", Strategy.STRATEGY_LEAD_IN,
          "specpc", Strategy.STRATEGY_SPECPC,
          "speckv", Strategy.STRATEGY_SPECKV);

  private static final Map<String, Drafter> DRAFTERS =
      Map.of(
          "chain", Drafter.DRAFTER_CHAIN,
          "dyspec", Drafter.DRAFTER_DYSPEC,
          "rsd", Drafter.DRAFTER_RSD,
          "token_recycling", Drafter.DRAFTER_TOKEN_RECYCLING,
          "lookahead", Drafter.DRAFTER_LOOKAHEAD);

  private static final List<String> DRAFTMESH_KEYS =
      List.of(
          "strategy",
          "draft",
          "k",
          "adaptive",
          "max_k",
          "min_draft_token_prob",
          "draft_ahead",
          "drafter",
          "tree_nodes",
          "ngram",
          "nudging",
          "entropy_switch",
          "lead_in",
          "spec_pc",
          "kv_compression",
          "ignore_eos",
          "add_special_tokens");

  private OpenAiRequests() {}

  /** Which endpoint a body came to. */
  enum Kind {
    COMPLETION,
    CHAT
  }

  /**
   * A validated request.
   *
   * @param request what goes to the router (before {@link RouterClient#prepare})
   * @param model the model as the client named it (echoed in every response)
   * @param stream whether to answer with SSE
   * @param includeUsage {@code stream_options.include_usage}
   */
  record Parsed(GenerateRequest request, String model, boolean stream, boolean includeUsage) {}

  static Parsed parse(Kind kind, JsonObject body, Catalog catalog, int maxTokensLimit) {
    String model = string(body, "model", true);
    if (model.isEmpty()) {
      throw Errors.invalid("model: empty (expected: a model id from GET /v1/models)");
    }
    GenerateRequest.Builder r = GenerateRequest.newBuilder().setTarget(model);
    List<ChatFormat.Message> chat = null;
    if (kind == Kind.COMPLETION) {
      prompt(body, r);
      r.setAddSpecialTokens(true);
    } else {
      List<ChatFormat.Message> messages = messages(body);
      ChatFormat format = catalog.chatFormat(model);
      r.setParts(format.render(messages));
      r.setAddSpecialTokens(!format.includesBos());
      chat = messages;
    }

    Sampling.Builder s = Sampling.newBuilder();
    Integer maxTokens = null;
    if (kind == Kind.CHAT && present(body, "max_completion_tokens")) {
      maxTokens = integer(body, "max_completion_tokens", 1, maxTokensLimit);
    } else if (present(body, "max_tokens")) {
      maxTokens = integer(body, "max_tokens", 1, maxTokensLimit);
    }
    if (maxTokens == null && kind == Kind.COMPLETION) {
      maxTokens = COMPLETIONS_DEFAULT_MAX_TOKENS;
    }
    if (maxTokens != null) {
      s.setMaxTokens(maxTokens); // chat without a limit: the router's default
    }
    s.setTemperature(present(body, "temperature") ? number(body, "temperature", 0, 2) : 1f);
    if (present(body, "top_p")) {
      float p = number(body, "top_p", 0, 1);
      if (p == 0f) {
        throw Errors.invalid("top_p: 0 (expected: (0, 1])");
      }
      s.setTopP(p);
    }
    if (present(body, "top_k")) {
      int k = integer(body, "top_k", -1, Integer.MAX_VALUE);
      s.setTopK(Math.max(0, k)); // -1 and 0 mean off, as in vLLM
    }
    if (present(body, "min_p")) {
      float p = number(body, "min_p", 0, 1);
      if (p >= 1f) {
        throw Errors.invalid("min_p: " + p + " (expected: [0, 1))");
      }
      s.setMinP(p);
    }
    if (present(body, "seed")) {
      s.setSeed(longValue(body, "seed"));
    }
    stops(body, s);
    r.setSampling(s);

    if (present(body, "n") && integer(body, "n", 1, Integer.MAX_VALUE) != 1) {
      throw Errors.invalid("n: " + body.get("n") + " (expected: 1)");
    }
    refuseUnless(body, "best_of", e -> isNumber(e, 1));
    refuseUnless(body, "echo", e -> e.isJsonPrimitive() && !e.getAsBoolean());
    refuseUnless(body, "suffix", e -> e.isJsonPrimitive() && e.getAsString().isEmpty());
    refuseUnless(
        body,
        "logprobs",
        e -> e.isJsonPrimitive() && (isNumber(e, 0) || (isBoolean(e) && !e.getAsBoolean())));
    refuseUnless(body, "top_logprobs", e -> isNumber(e, 0));
    refuseUnless(body, "presence_penalty", e -> isNumber(e, 0));
    refuseUnless(body, "frequency_penalty", e -> isNumber(e, 0));
    refuseUnless(body, "logit_bias", e -> e.isJsonObject() && e.getAsJsonObject().size() == 0);
    refuseUnless(body, "tools", e -> e.isJsonArray() && e.getAsJsonArray().isEmpty());
    refuseUnless(body, "functions", e -> e.isJsonArray() && e.getAsJsonArray().isEmpty());
    refuseUnless(
        body,
        "response_format",
        e ->
            e.isJsonObject()
                && e.getAsJsonObject().has("type")
                && e.getAsJsonObject().get("type").getAsString().equals("text"));

    boolean stream = present(body, "stream") && bool(body, "stream");
    boolean includeUsage = false;
    if (present(body, "stream_options")) {
      JsonObject so = object(body, "stream_options");
      if (present(so, "include_usage")) {
        includeUsage = boolAt(so.get("include_usage"), "stream_options.include_usage");
      }
    }
    if (present(body, "draftmesh")) {
      draftmesh(object(body, "draftmesh"), r);
    }
    if (chat != null
        && r.getStrategy() == Strategy.STRATEGY_NUDGING
        && r.getNudging().getAlignedPrompt().isEmpty()) {
      // Nudging a chat: the aligned model reads the chat template, the base model plain text.
      r.setNudging(r.getNudging().toBuilder().setAlignedParts(r.getParts()));
      r.setParts(plainParts(chat));
    }
    return new Parsed(r.build(), model, stream, includeUsage);
  }

  private static void prompt(JsonObject body, GenerateRequest.Builder r) {
    JsonElement p = body.get("prompt");
    if (p == null || p.isJsonNull()) {
      throw Errors.invalid("prompt: missing (expected: a string, or an array of token ids)");
    }
    if (p.isJsonPrimitive() && p.getAsJsonPrimitive().isString()) {
      text(p.getAsString(), "prompt", r);
      return;
    }
    if (p.isJsonArray()) {
      JsonArray a = p.getAsJsonArray();
      if (a.isEmpty()) {
        throw Errors.invalid("prompt: [] (expected: a string, or an array of token ids)");
      }
      JsonElement first = a.get(0);
      if (first.isJsonPrimitive() && first.getAsJsonPrimitive().isString()) {
        if (a.size() != 1) {
          throw Errors.invalid(
              "prompt: " + a.size() + " prompts (expected: 1; send one request per prompt)");
        }
        text(first.getAsString(), "prompt[0]", r);
        return;
      }
      JsonArray ids = a;
      String field = "prompt";
      if (first.isJsonArray()) {
        if (a.size() != 1) {
          throw Errors.invalid(
              "prompt: " + a.size() + " prompts (expected: 1; send one request per prompt)");
        }
        ids = first.getAsJsonArray();
        field = "prompt[0]";
      }
      if (ids.isEmpty()) {
        throw Errors.invalid(field + ": [] (expected: at least one token id)");
      }
      TokenIds.Builder t = TokenIds.newBuilder();
      for (int i = 0; i < ids.size(); i++) {
        t.addIds(intAt(ids.get(i), field + "[" + i + "]", 0, Integer.MAX_VALUE));
      }
      r.setTokenIds(t);
      return;
    }
    throw Errors.invalid(
        "prompt: " + abbreviate(p) + " (expected: a string, or an array of token ids)");
  }

  private static void text(String t, String field, GenerateRequest.Builder r) {
    if (t.isEmpty()) {
      throw Errors.invalid(field + ": empty (expected: a non-empty prompt)");
    }
    r.setText(t);
  }

  private static List<ChatFormat.Message> messages(JsonObject body) {
    JsonElement m = body.get("messages");
    if (m == null || m.isJsonNull()) {
      throw Errors.invalid("messages: missing (expected: an array of {role, content})");
    }
    if (!m.isJsonArray() || m.getAsJsonArray().isEmpty()) {
      throw Errors.invalid(
          "messages: " + abbreviate(m) + " (expected: a non-empty array of {role, content})");
    }
    List<ChatFormat.Message> out = new ArrayList<>();
    JsonArray a = m.getAsJsonArray();
    for (int i = 0; i < a.size(); i++) {
      String field = "messages[" + i + "]";
      if (!a.get(i).isJsonObject()) {
        throw Errors.invalid(
            field + ": " + abbreviate(a.get(i)) + " (expected: an object {role, content})");
      }
      JsonObject o = a.get(i).getAsJsonObject();
      String role = stringAt(o.get("role"), field + ".role");
      if (!ROLES.contains(role)) {
        throw Errors.invalid(
            field
                + ".role: "
                + abbreviate(o.get("role"))
                + " (expected: system, developer, user or assistant)");
      }
      out.add(new ChatFormat.Message(role, content(o.get("content"), field + ".content")));
    }
    return out;
  }

  /** A string, or an array of {type: "text", text} parts joined. */
  private static String content(JsonElement c, String field) {
    if (c == null || c.isJsonNull()) {
      throw Errors.invalid(field + ": missing (expected: a string or an array of text parts)");
    }
    if (c.isJsonPrimitive() && c.getAsJsonPrimitive().isString()) {
      return c.getAsString();
    }
    if (c.isJsonArray()) {
      StringBuilder sb = new StringBuilder();
      JsonArray parts = c.getAsJsonArray();
      for (int i = 0; i < parts.size(); i++) {
        String pf = field + "[" + i + "]";
        JsonElement p = parts.get(i);
        if (!p.isJsonObject()
            || !"text".equals(optString(p.getAsJsonObject().get("type")))
            || optString(p.getAsJsonObject().get("text")) == null) {
          throw Errors.invalid(
              pf + ": " + abbreviate(p) + " (expected: {\"type\": \"text\", \"text\": ...})");
        }
        sb.append(p.getAsJsonObject().get("text").getAsString());
      }
      return sb.toString();
    }
    throw Errors.invalid(
        field + ": " + abbreviate(c) + " (expected: a string or an array of text parts)");
  }

  private static void stops(JsonObject body, Sampling.Builder s) {
    if (!present(body, "stop")) {
      return;
    }
    JsonElement e = body.get("stop");
    List<String> stops = new ArrayList<>();
    if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()) {
      stops.add(e.getAsString());
    } else if (e.isJsonArray()) {
      JsonArray a = e.getAsJsonArray();
      if (a.size() > MAX_STOPS) {
        throw Errors.invalid(
            "stop: " + a.size() + " sequences (expected: at most " + MAX_STOPS + ")");
      }
      for (int i = 0; i < a.size(); i++) {
        stops.add(stringAt(a.get(i), "stop[" + i + "]"));
      }
    } else {
      throw Errors.invalid(
          "stop: " + abbreviate(e) + " (expected: a string or an array of strings)");
    }
    for (int i = 0; i < stops.size(); i++) {
      if (stops.get(i).isEmpty()) {
        throw Errors.invalid("stop[" + i + "]: empty (expected: a non-empty string)");
      }
    }
    s.addAllStop(stops);
  }

  /**
   * Messages as a base (unaligned) model reads them, the nudging reference's plain-text prompt:
   * system text on its own line, user turns as {@code "Question: ..."}, assistant turns as {@code
   * "Answer: ..."}, each ending in a newline.
   */
  static TextParts plainParts(List<ChatFormat.Message> messages) {
    TextParts.Builder parts = TextParts.newBuilder();
    for (ChatFormat.Message m : messages) {
      String label =
          switch (m.role()) {
            case "user" -> "Question: ";
            case "assistant" -> "Answer: ";
            default -> "";
          };
      if (!label.isEmpty()) {
        parts.addPartsBuilder().setText(label);
      }
      // The content is the client's: literal, so no special token is matched inside it.
      parts.addPartsBuilder().setText(m.content()).setLiteral(true);
      parts.addPartsBuilder().setText("\n");
    }
    return parts.build();
  }

  /** A {@code draftmesh.NAME} object whose keys are all in {@code keys}. */
  private static JsonObject options(JsonObject d, String name, List<String> keys) {
    JsonElement e = d.get(name);
    if (!e.isJsonObject()) {
      throw Errors.invalid(
          "draftmesh." + name + ": " + abbreviate(e) + " (expected: an object " + keys + ")");
    }
    JsonObject o = e.getAsJsonObject();
    for (String key : o.keySet()) {
      if (!keys.contains(key)) {
        throw Errors.invalid(
            "draftmesh." + name + "." + key + ": unknown option (expected one of: " + keys + ")");
      }
    }
    return o;
  }

  private static void collaboration(JsonObject d, GenerateRequest.Builder r) {
    if (present(d, "nudging")) {
      JsonObject n = options(d, "nudging", List.of("gamma", "chunk_tokens", "aligned_prompt"));
      NudgingOptions.Builder nu = NudgingOptions.newBuilder();
      if (present(n, "gamma")) {
        float g = numberAt(n.get("gamma"), "draftmesh.nudging.gamma", 0, 1);
        if (g <= 0f || g >= 1f) {
          throw Errors.invalid("draftmesh.nudging.gamma: " + g + " (expected: (0, 1))");
        }
        nu.setGamma(g);
      }
      if (present(n, "chunk_tokens")) {
        nu.setChunkTokens(intAt(n.get("chunk_tokens"), "draftmesh.nudging.chunk_tokens", 1, 1024));
      }
      if (present(n, "aligned_prompt")) {
        nu.setAlignedPrompt(stringAt(n.get("aligned_prompt"), "draftmesh.nudging.aligned_prompt"));
      }
      r.setNudging(nu);
    }
    if (present(d, "entropy_switch")) {
      JsonObject n = options(d, "entropy_switch", List.of("tau", "window", "min_run"));
      EntropySwitchOptions.Builder es = EntropySwitchOptions.newBuilder();
      if (present(n, "tau")) {
        es.setTau(numberAt(n.get("tau"), "draftmesh.entropy_switch.tau", 0, 1e6f));
      }
      if (present(n, "window")) {
        es.setWindow(intAt(n.get("window"), "draftmesh.entropy_switch.window", 1, 4096));
      }
      if (present(n, "min_run")) {
        es.setMinRun(intAt(n.get("min_run"), "draftmesh.entropy_switch.min_run", 1, 4096));
      }
      r.setEntropySwitch(es);
    }
    if (present(d, "lead_in")) {
      JsonObject n = options(d, "lead_in", List.of("n", "sentence_end"));
      LeadInOptions.Builder li = LeadInOptions.newBuilder();
      if (present(n, "n")) {
        li.setN(intAt(n.get("n"), "draftmesh.lead_in.n", 0, 4096));
      }
      if (present(n, "sentence_end")) {
        li.setSentenceEnd(stringAt(n.get("sentence_end"), "draftmesh.lead_in.sentence_end"));
      }
      r.setLeadIn(li);
    }
  }

  private static void draftmesh(JsonObject d, GenerateRequest.Builder r) {
    for (String key : d.keySet()) {
      if (!DRAFTMESH_KEYS.contains(key)) {
        throw Errors.invalid(
            "draftmesh." + key + ": unknown option (expected one of: " + DRAFTMESH_KEYS + ")");
      }
    }
    if (present(d, "strategy")) {
      String name = stringAt(d.get("strategy"), "draftmesh.strategy");
      Strategy st = STRATEGIES.get(name.toLowerCase(Locale.ROOT));
      if (st == null) {
        throw Errors.invalid(
            "draftmesh.strategy: "
                + abbreviate(d.get("strategy"))
                + " (expected: default, autoregressive, speculative, ngram, nudging,"
                + " entropy_switch, lead_in, specpc or speckv)");
      }
      r.setStrategy(st);
    }
    if (present(d, "draft")) {
      r.setDraft(stringAt(d.get("draft"), "draftmesh.draft"));
    }
    SpeculativeOptions.Builder sp = SpeculativeOptions.newBuilder();
    if (present(d, "k")) {
      sp.setK(intAt(d.get("k"), "draftmesh.k", 1, 64));
    }
    if (present(d, "adaptive")) {
      sp.setAdaptive(boolAt(d.get("adaptive"), "draftmesh.adaptive"));
    }
    if (present(d, "max_k")) {
      sp.setMaxK(intAt(d.get("max_k"), "draftmesh.max_k", 1, 64));
    }
    if (present(d, "min_draft_token_prob")) {
      float p = numberAt(d.get("min_draft_token_prob"), "draftmesh.min_draft_token_prob", 0, 1);
      if (p >= 1f) {
        throw Errors.invalid("draftmesh.min_draft_token_prob: " + p + " (expected: [0, 1))");
      }
      sp.setMinDraftTokenProb(p);
    }
    if (present(d, "draft_ahead")) {
      sp.setDraftAhead(boolAt(d.get("draft_ahead"), "draftmesh.draft_ahead"));
    }
    if (present(d, "drafter")) {
      String name = stringAt(d.get("drafter"), "draftmesh.drafter");
      Drafter drafter = DRAFTERS.get(name.toLowerCase(Locale.ROOT));
      if (drafter == null) {
        throw Errors.invalid(
            "draftmesh.drafter: "
                + abbreviate(d.get("drafter"))
                + " (expected: chain, dyspec, rsd, token_recycling or lookahead)");
      }
      sp.setDrafter(drafter);
    }
    if (present(d, "tree_nodes")) {
      sp.setTreeNodes(intAt(d.get("tree_nodes"), "draftmesh.tree_nodes", 1, 1024));
    }
    r.setSpeculative(sp);
    if (present(d, "ngram")) {
      JsonElement ne = d.get("ngram");
      if (!ne.isJsonObject()) {
        throw Errors.invalid(
            "draftmesh.ngram: " + abbreviate(ne) + " (expected: an object {n, min_n, max_match})");
      }
      JsonObject n = ne.getAsJsonObject();
      NgramOptions.Builder ng = NgramOptions.newBuilder();
      for (String key : n.keySet()) {
        if (!List.of("n", "min_n", "max_match").contains(key)) {
          throw Errors.invalid(
              "draftmesh.ngram." + key + ": unknown option (expected one of: n, min_n, max_match)");
        }
      }
      if (present(n, "n")) {
        ng.setN(intAt(n.get("n"), "draftmesh.ngram.n", 1, 64));
      }
      if (present(n, "min_n")) {
        ng.setMinN(intAt(n.get("min_n"), "draftmesh.ngram.min_n", 1, 64));
      }
      if (present(n, "max_match")) {
        ng.setMaxMatch(intAt(n.get("max_match"), "draftmesh.ngram.max_match", 1, 64));
      }
      r.setNgram(ng);
    }
    collaboration(d, r);
    if (present(d, "spec_pc")) {
      r.setSpecPc(specPc(d.get("spec_pc")));
    }
    if (present(d, "kv_compression")) {
      r.setKvCompression(kvCompression(d.get("kv_compression")));
    }
    if (present(d, "ignore_eos")) {
      r.setIgnoreEos(boolAt(d.get("ignore_eos"), "draftmesh.ignore_eos"));
    }
    if (present(d, "add_special_tokens")) {
      r.setAddSpecialTokens(boolAt(d.get("add_special_tokens"), "draftmesh.add_special_tokens"));
    }
  }

  private static final List<String> SPEC_PC_KEYS =
      List.of(
          "budget_tokens",
          "budget_ratio",
          "window",
          "kernel",
          "neighbor_tokens",
          "lookahead_tokens",
          "starting_layer");

  /** {@code draftmesh.spec_pc}: SpecPC's options; the router checks them against each other. */
  private static SpecPcOptions specPc(JsonElement e) {
    if (!e.isJsonObject()) {
      throw Errors.invalid(
          "draftmesh.spec_pc: " + abbreviate(e) + " (expected: an object of " + SPEC_PC_KEYS + ")");
    }
    JsonObject o = e.getAsJsonObject();
    for (String key : o.keySet()) {
      if (!SPEC_PC_KEYS.contains(key)) {
        throw Errors.invalid(
            "draftmesh.spec_pc."
                + key
                + ": unknown option (expected one of: "
                + SPEC_PC_KEYS
                + ")");
      }
    }
    SpecPcOptions.Builder b = SpecPcOptions.newBuilder();
    int big = 1 << 20;
    if (present(o, "budget_tokens")) {
      b.setBudgetTokens(intAt(o.get("budget_tokens"), "draftmesh.spec_pc.budget_tokens", 1, big));
    }
    if (present(o, "budget_ratio")) {
      b.setBudgetRatio(numberAt(o.get("budget_ratio"), "draftmesh.spec_pc.budget_ratio", 0, 1));
    }
    if (present(o, "window")) {
      b.setWindow(intAt(o.get("window"), "draftmesh.spec_pc.window", 1, big));
    }
    if (present(o, "kernel")) {
      b.setKernel(intAt(o.get("kernel"), "draftmesh.spec_pc.kernel", 1, big));
    }
    if (present(o, "neighbor_tokens")) {
      b.setNeighborTokens(
          intAt(o.get("neighbor_tokens"), "draftmesh.spec_pc.neighbor_tokens", 1, big));
    }
    if (present(o, "lookahead_tokens")) {
      b.setLookaheadTokens(
          intAt(o.get("lookahead_tokens"), "draftmesh.spec_pc.lookahead_tokens", 1, 64));
    }
    if (present(o, "starting_layer")) {
      b.setStartingLayer(
          intAt(o.get("starting_layer"), "draftmesh.spec_pc.starting_layer", 0, big));
    }
    return b.build();
  }

  private static final List<String> KV_COMPRESSION_KEYS =
      List.of("method", "budget", "window", "kernel", "sinks", "answer_tokens", "prefix_tokens");

  /**
   * {@code draftmesh.kv_compression}: KV compaction of the target's cache; the router checks the
   * method against the strategy and the numbers against each other.
   */
  private static KvCompressionOptions kvCompression(JsonElement e) {
    if (!e.isJsonObject()) {
      throw Errors.invalid(
          "draftmesh.kv_compression: "
              + abbreviate(e)
              + " (expected: an object of "
              + KV_COMPRESSION_KEYS
              + ")");
    }
    JsonObject o = e.getAsJsonObject();
    for (String key : o.keySet()) {
      if (!KV_COMPRESSION_KEYS.contains(key)) {
        throw Errors.invalid(
            "draftmesh.kv_compression."
                + key
                + ": unknown option (expected one of: "
                + KV_COMPRESSION_KEYS
                + ")");
      }
    }
    KvCompressionOptions.Builder b = KvCompressionOptions.newBuilder();
    int big = 1 << 20;
    if (present(o, "method")) {
      b.setMethod(stringAt(o.get("method"), "draftmesh.kv_compression.method"));
    }
    if (present(o, "budget")) {
      b.setBudget(intAt(o.get("budget"), "draftmesh.kv_compression.budget", 1, big));
    }
    if (present(o, "window")) {
      b.setWindow(intAt(o.get("window"), "draftmesh.kv_compression.window", 1, big));
    }
    if (present(o, "kernel")) {
      b.setKernel(intAt(o.get("kernel"), "draftmesh.kv_compression.kernel", 1, big));
    }
    if (present(o, "sinks")) {
      b.setSinks(intAt(o.get("sinks"), "draftmesh.kv_compression.sinks", 0, big));
    }
    if (present(o, "answer_tokens")) {
      b.setAnswerTokens(
          intAt(o.get("answer_tokens"), "draftmesh.kv_compression.answer_tokens", 1, big));
    }
    if (present(o, "prefix_tokens")) {
      // 0 is the whole prompt, as when absent; the router checks it against the prompt's length.
      b.setPrefixTokens(
          intAt(o.get("prefix_tokens"), "draftmesh.kv_compression.prefix_tokens", 0, big));
    }
    return b.build();
  }

  // ---- JSON readers: each failure names the field, the value and what was expected.

  static boolean present(JsonObject o, String field) {
    JsonElement e = o.get(field);
    return e != null && !e.isJsonNull();
  }

  private static String string(JsonObject o, String field, boolean required) {
    JsonElement e = o.get(field);
    if (e == null || e.isJsonNull()) {
      if (required) {
        throw Errors.invalid(field + ": missing (expected: a string)");
      }
      return null;
    }
    return stringAt(e, field);
  }

  private static String stringAt(JsonElement e, String field) {
    if (e == null || e.isJsonNull()) {
      throw Errors.invalid(field + ": missing (expected: a string)");
    }
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: a string)");
    }
    return e.getAsString();
  }

  private static String optString(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isString()
        ? e.getAsString()
        : null;
  }

  private static JsonObject object(JsonObject o, String field) {
    JsonElement e = o.get(field);
    if (!e.isJsonObject()) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: an object)");
    }
    return e.getAsJsonObject();
  }

  private static boolean bool(JsonObject o, String field) {
    return boolAt(o.get(field), field);
  }

  private static boolean boolAt(JsonElement e, String field) {
    if (!isBoolean(e)) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: true or false)");
    }
    return e.getAsBoolean();
  }

  private static int integer(JsonObject o, String field, int min, int max) {
    return intAt(o.get(field), field, min, max);
  }

  private static int intAt(JsonElement e, String field, int min, int max) {
    String expected =
        max == Integer.MAX_VALUE ? "an integer >= " + min : "an integer " + min + ".." + max;
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: " + expected + ")");
    }
    BigDecimal v = e.getAsBigDecimal();
    if (v.stripTrailingZeros().scale() > 0
        || v.compareTo(BigDecimal.valueOf(min)) < 0
        || v.compareTo(BigDecimal.valueOf(max)) > 0) {
      throw Errors.invalid(
          field
              + ": "
              + abbreviate(e)
              + " (expected: "
              + expected.replace("an integer ", "")
              + ")");
    }
    return v.intValueExact();
  }

  private static long longValue(JsonObject o, String field) {
    JsonElement e = o.get(field);
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: an integer)");
    }
    BigDecimal v = e.getAsBigDecimal();
    try {
      return v.longValueExact();
    } catch (ArithmeticException bad) {
      throw Errors.invalid(field + ": " + abbreviate(e) + " (expected: a 64-bit integer)");
    }
  }

  private static float number(JsonObject o, String field, float min, float max) {
    return numberAt(o.get(field), field, min, max);
  }

  private static float numberAt(JsonElement e, String field, float min, float max) {
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw Errors.invalid(
          field
              + ": "
              + abbreviate(e)
              + " (expected: a number "
              + fmt(min)
              + ".."
              + fmt(max)
              + ")");
    }
    double v = e.getAsDouble();
    if (!(v >= min && v <= max)) {
      throw Errors.invalid(
          field + ": " + abbreviate(e) + " (expected: " + fmt(min) + ".." + fmt(max) + ")");
    }
    return (float) v;
  }

  private static String fmt(float f) {
    return f == Math.rint(f) ? Integer.toString((int) f) : Float.toString(f);
  }

  private static boolean isBoolean(JsonElement e) {
    return e != null && e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean();
  }

  private static boolean isNumber(JsonElement e, double value) {
    return e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber() && e.getAsDouble() == value;
  }

  /** Refuses a present field unless it has its no-op value (e.g. {@code echo: false}). */
  private static void refuseUnless(
      JsonObject body, String field, java.util.function.Predicate<JsonElement> noOp) {
    if (!present(body, field)) {
      return;
    }
    JsonElement e = body.get(field);
    boolean ok;
    try {
      ok = noOp.test(e);
    } catch (RuntimeException notThatType) {
      ok = false;
    }
    if (!ok) {
      throw Errors.invalid(
          field + ": " + abbreviate(e) + " (expected: absent or null; not supported by DraftMesh)");
    }
  }

  /** A value as JSON, cut to 40 characters. */
  static String abbreviate(JsonElement e) {
    String s = e == null ? "null" : e.toString();
    if (e instanceof JsonPrimitive p && p.isNumber()) {
      s = p.getAsString();
    }
    return s.length() <= 40 ? s : s.substring(0, 37) + "...";
  }
}
