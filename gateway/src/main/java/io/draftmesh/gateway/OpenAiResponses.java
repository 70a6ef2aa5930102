package io.draftmesh.gateway;

import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.Usage;
import java.util.Set;

/**
 * Response objects shaped as the OpenAI API reference shapes them, field by field: {@code
 * text_completion} (streamed and not), {@code chat.completion}, {@code chat.completion.chunk},
 * {@code list} of {@code model}. Each carries one extra field, {@code draftmesh}: the router
 * chunk's token ids, per-token provenance and running stats ({@link ProtoJson}), which OpenAI
 * clients ignore.
 */
final class OpenAiResponses {
  /** Router chunk fields already carried by the OpenAI fields. */
  private static final Set<String> CARRIED = Set.of("text", "finish_reason", "usage");

  private OpenAiResponses() {}

  /** {@code "stop"} (a stop sequence or the end-of-sequence token) or {@code "length"}. */
  static String finishReason(FinishReason r) {
    return switch (r) {
      case FINISH_REASON_LENGTH -> "length";
      case FINISH_REASON_STOP, FINISH_REASON_EOS -> "stop";
      default -> null;
    };
  }

  /** The {@code draftmesh} extension of one router chunk. */
  static JsonObject extension(GenerateChunk chunk) {
    return ProtoJson.toJson(RouterClient.publicChunk(chunk), CARRIED);
  }

  /**
   * OpenAI's {@code usage} from a stream's last chunk: its token counts, and in {@code
   * prompt_tokens_details.cached_tokens} the prompt tokens the target took from a KV cache (its own
   * prefix cache or kvcache-service) instead of prefilling them.
   */
  static JsonObject usage(GenerateChunk last) {
    Usage u = last.getUsage();
    JsonObject o = new JsonObject();
    o.addProperty("prompt_tokens", u.getPromptTokens());
    o.addProperty("completion_tokens", u.getCompletionTokens());
    o.addProperty("total_tokens", u.getPromptTokens() + u.getCompletionTokens());
    JsonObject details = new JsonObject();
    details.addProperty("cached_tokens", last.getStats().getCachedPromptTokens());
    o.add("prompt_tokens_details", details);
    return o;
  }

  private static JsonObject head(String id, String object, long created, String model) {
    JsonObject o = new JsonObject();
    o.addProperty("id", id);
    o.addProperty("object", object);
    o.addProperty("created", created);
    o.addProperty("model", model);
    o.add("system_fingerprint", JsonNull.INSTANCE);
    return o;
  }

  /** {@code {"text", "index": 0}}: the start of a text_completion choice. */
  private static JsonObject textChoice(String text) {
    JsonObject choice = new JsonObject();
    choice.addProperty("text", text);
    choice.addProperty("index", 0);
    return choice;
  }

  /**
   * The response head with {@code choice} (completed by logprobs and finish_reason) as its one
   * choice.
   */
  private static JsonObject oneChoice(
      String id,
      String object,
      long created,
      String model,
      JsonObject choice,
      String finishReason) {
    choice.add("logprobs", JsonNull.INSTANCE);
    finish(choice, finishReason);
    JsonObject o = head(id, object, created, model);
    JsonArray choices = new JsonArray();
    choices.add(choice);
    o.add("choices", choices);
    return o;
  }

  private static void finish(JsonObject choice, String finishReason) {
    if (finishReason == null) {
      choice.add("finish_reason", JsonNull.INSTANCE);
    } else {
      choice.addProperty("finish_reason", finishReason);
    }
  }

  /** A streamed {@code text_completion}. */
  static JsonObject completionChunk(
      String id,
      long created,
      String model,
      String text,
      String finishReason,
      JsonObject extension,
      boolean usageField) {
    JsonObject o = oneChoice(id, "text_completion", created, model, textChoice(text), finishReason);
    if (usageField) {
      o.add("usage", JsonNull.INSTANCE);
    }
    o.add("draftmesh", extension);
    return o;
  }

  /** A {@code chat.completion.chunk}; {@code delta} is {role?, content?} or empty. */
  static JsonObject chatChunk(
      String id,
      long created,
      String model,
      JsonObject delta,
      String finishReason,
      JsonObject extension,
      boolean usageField) {
    JsonObject choice = new JsonObject();
    choice.addProperty("index", 0);
    choice.add("delta", delta);
    JsonObject o = oneChoice(id, "chat.completion.chunk", created, model, choice, finishReason);
    if (usageField) {
      o.add("usage", JsonNull.INSTANCE);
    }
    if (extension != null) {
      o.add("draftmesh", extension);
    }
    return o;
  }

  /** The last chunk of a stream with {@code stream_options.include_usage}: no choices, usage. */
  static JsonObject usageChunk(
      OpenAiRequests.Kind kind, String id, long created, String model, GenerateChunk last) {
    JsonObject o =
        head(
            id,
            kind == OpenAiRequests.Kind.CHAT ? "chat.completion.chunk" : "text_completion",
            created,
            model);
    o.add("choices", new JsonArray());
    o.add("usage", usage(last));
    return o;
  }

  /** A whole {@code text_completion}. */
  static JsonObject completion(
      String id,
      long created,
      String model,
      String text,
      String finishReason,
      GenerateChunk last,
      JsonObject extension) {
    JsonObject o = oneChoice(id, "text_completion", created, model, textChoice(text), finishReason);
    o.add("usage", usage(last));
    o.add("draftmesh", extension);
    return o;
  }

  /** A whole {@code chat.completion}. */
  static JsonObject chatCompletion(
      String id,
      long created,
      String model,
      String text,
      String finishReason,
      GenerateChunk last,
      JsonObject extension) {
    JsonObject message = new JsonObject();
    message.addProperty("role", "assistant");
    message.addProperty("content", text);
    message.add("refusal", JsonNull.INSTANCE);
    JsonObject choice = new JsonObject();
    choice.addProperty("index", 0);
    choice.add("message", message);
    JsonObject o = oneChoice(id, "chat.completion", created, model, choice, finishReason);
    o.add("usage", usage(last));
    o.add("draftmesh", extension);
    return o;
  }

  static JsonObject model(Catalog.Entry e, long created) {
    JsonObject o = new JsonObject();
    o.addProperty("id", e.spec().id());
    o.addProperty("object", "model");
    o.addProperty("created", created);
    o.addProperty("owned_by", "draftmesh");
    JsonObject ext = new JsonObject();
    ext.addProperty("target", e.spec().target());
    ext.addProperty("draft", e.spec().draft());
    ext.addProperty("chat_format", e.chatFormat().id());
    o.add("draftmesh", ext);
    return o;
  }

  static JsonObject modelList(Catalog catalog) {
    JsonObject o = new JsonObject();
    o.addProperty("object", "list");
    JsonArray data = new JsonArray();
    for (Catalog.Entry e : catalog.entries()) {
      data.add(model(e, catalog.created()));
    }
    o.add("data", data);
    return o;
  }
}
