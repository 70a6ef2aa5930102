package io.draftmesh.gateway;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.proto.v1.TextPart;
import io.draftmesh.proto.v1.TextParts;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How {@code /v1/chat/completions} turns messages into one prompt string.
 *
 * <p>A checkpoint's {@code tokenizer_config.json} carries its chat template as Jinja, which the
 * gateway deliberately does not evaluate (a template engine on the public edge is attack surface
 * for little gain). Instead it recognises the few template families by their marker tokens and
 * renders them in Java; anything else, and every checkpoint without a template (the zoo's), gets
 * {@link #DEFAULT}, the zoo's instruction format. A model's format can be forced in the gateway
 * config ({@code --model id=m,chat=chatml}).
 *
 * <p>System (and {@code developer}) messages: formats with a system role render it; {@link
 * #DEFAULT} has none, so their text leads the next user turn, separated by a blank line.
 */
public enum ChatFormat {
  /**
   * The zoo's instruction format, for models without a chat template: {@code
   * <|user|>{user}<|assistant|>{assistant}<|end|>} per exchange, ending with {@code <|assistant|>}
   * for the reply. The tokenizer adds its own bos when its post-processor says so.
   */
  DEFAULT("default"),
  /** {@code <|im_start|>{role}\n{content}<|im_end|>\n} per message (Qwen, many others). */
  CHATML("chatml"),
  /**
   * Llama 3: {@code <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>} per message,
   * after {@code <|begin_of_text|>}.
   */
  LLAMA3("llama3");

  private static final Logger log = LoggerFactory.getLogger(ChatFormat.class);

  private final String id;

  ChatFormat(String id) {
    this.id = id;
  }

  /** The name used in configuration and in ListModels. */
  public String id() {
    return id;
  }

  /** One chat message: role (system, developer, user, assistant) and its text. */
  public record Message(String role, String content) {}

  static ChatFormat parse(String value) {
    for (ChatFormat f : values()) {
      if (f.id.equals(value.toLowerCase(Locale.ROOT))) {
        return f;
      }
    }
    throw new GatewayConfig.ConfigException(
        "--model: chat=" + value + " (expected: default, chatml or llama3)");
  }

  /**
   * The format of the checkpoint in {@code dir} (null: {@link #DEFAULT}): from its {@code
   * tokenizer_config.json} {@code chat_template}, recognised by marker tokens.
   */
  public static ChatFormat detect(Path dir) {
    if (dir == null) {
      return DEFAULT;
    }
    Path file = dir.resolve("tokenizer_config.json");
    if (!Files.isRegularFile(file)) {
      return DEFAULT;
    }
    String template;
    try {
      JsonObject root =
          JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
      template = templateText(root.get("chat_template"));
    } catch (IOException | RuntimeException e) {
      log.warn("{}: unreadable ({}); chat format {}", file, e.getMessage(), DEFAULT.id);
      return DEFAULT;
    }
    if (template == null) {
      return DEFAULT;
    }
    if (template.contains("<|im_start|>")) {
      return CHATML;
    }
    if (template.contains("<|start_header_id|>")) {
      return LLAMA3;
    }
    log.warn(
        "{}: chat_template not recognised (the gateway renders chatml and llama3 families, not"
            + " Jinja); using chat format {}; force one with --model id=...,chat=FORMAT",
        file,
        DEFAULT.id);
    return DEFAULT;
  }

  /** A string template, or the "default" entry of a list of named templates. */
  private static String templateText(JsonElement e) {
    if (e == null || e.isJsonNull()) {
      return null;
    }
    if (e.isJsonPrimitive()) {
      return e.getAsString();
    }
    if (e.isJsonArray()) {
      for (JsonElement t : e.getAsJsonArray()) {
        JsonObject o = t.getAsJsonObject();
        if (o.has("name") && o.get("name").getAsString().equals("default")) {
          return o.get("template").getAsString();
        }
      }
    }
    return null;
  }

  /**
   * The prompt for {@code messages}, ending where the assistant's reply begins: the template's
   * markers as parts where special tokens are matched, every message's content as a literal part
   * (the router matches no special token inside it, so text a user types stays text).
   */
  public TextParts render(List<Message> messages) {
    Parts p = new Parts();
    switch (this) {
      case CHATML -> {
        for (Message m : messages) {
          p.template("<|im_start|>" + role(m) + "\n").literal(m.content()).template("<|im_end|>\n");
        }
        p.template("<|im_start|>assistant\n");
      }
      case LLAMA3 -> {
        p.template("<|begin_of_text|>");
        for (Message m : messages) {
          p.template("<|start_header_id|>" + role(m) + "<|end_header_id|>\n\n")
              .literal(m.content())
              .template("<|eot_id|>");
        }
        p.template("<|start_header_id|>assistant<|end_header_id|>\n\n");
      }
      case DEFAULT -> {
        List<String> system = new java.util.ArrayList<>();
        for (Message m : messages) {
          switch (role(m)) {
            case "system" -> system.add(m.content());
            case "assistant" -> p.literal(m.content()).template("<|end|>");
            default -> {
              p.template("<|user|>");
              for (String text : system) {
                p.literal(text).template("\n\n");
              }
              p.literal(m.content()).template("<|assistant|>");
              system.clear();
            }
          }
        }
        if (!system.isEmpty()) { // a trailing system message: a user turn of its own
          p.template("<|user|>").literal(String.join("\n\n", system).strip());
          p.template("<|assistant|>");
        }
      }
    }
    return p.build();
  }

  /** The prompt's text, as the model sees it (for logs and tests). */
  static String text(TextParts parts) {
    StringBuilder sb = new StringBuilder();
    parts.getPartsList().forEach(part -> sb.append(part.getText()));
    return sb.toString();
  }

  /** Builds TextParts, skipping empty ones. */
  private static final class Parts {
    private final TextParts.Builder b = TextParts.newBuilder();

    Parts template(String text) {
      return add(text, false);
    }

    Parts literal(String text) {
      return add(text, true);
    }

    private Parts add(String text, boolean literal) {
      if (!text.isEmpty()) {
        b.addParts(TextPart.newBuilder().setText(text).setLiteral(literal));
      }
      return this;
    }

    TextParts build() {
      return b.build();
    }
  }

  /** Whether the rendered prompt already carries the tokenizer's bos (so none is added). */
  boolean includesBos() {
    return this == LLAMA3;
  }

  private static String role(Message m) {
    return m.role().equals("developer") ? "system" : m.role();
  }
}
