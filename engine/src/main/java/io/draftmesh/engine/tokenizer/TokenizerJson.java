package io.draftmesh.engine.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and writes Hugging Face {@code tokenizer.json} files.
 *
 * <p>{@link #write} produces a GPT-2-style byte-level BPE tokenizer:
 *
 * <ul>
 *   <li>{@code model}: BPE, {@code byte_fallback} false (all 256 bytes are in the vocab, so no text
 *       is ever unknown), no unk token, merges as {@code "left right"} strings;
 *   <li>{@code pre_tokenizer}: ByteLevel with {@code add_prefix_space} false and the GPT-2 regex;
 *   <li>{@code decoder}: ByteLevel;
 *   <li>{@code normalizer}: none, so encode/decode is lossless on any UTF-8 text;
 *   <li>{@code added_tokens}: the special tokens (also in the model vocab, GPT-2 style, so ids are
 *       contiguous);
 *   <li>{@code post_processor}: TemplateProcessing that prepends the bos token when one is given
 *       (applied only when encoding with special tokens), else null.
 * </ul>
 */
public final class TokenizerJson {
  /** One BPE merge rule: {@code left + right} becomes a token. */
  public record Merge(String left, String right) {
    public Merge {
      if (left.isEmpty() || right.isEmpty() || left.contains(" ") || right.contains(" ")) {
        throw new IllegalArgumentException(
            "merge (\"" + left + "\", \"" + right + "\"): parts must be non-empty, without spaces");
      }
    }
  }

  private TokenizerJson() {}

  /** Writes a byte-level BPE tokenizer.json without a bos post-processor. */
  public static void write(
      Path file, List<String> vocab, List<Merge> merges, List<String> specialTokens)
      throws IOException {
    write(file, vocab, merges, specialTokens, null);
  }

  /**
   * Writes a byte-level BPE tokenizer.json.
   *
   * @param vocab token strings by id (byte-level spelling; specials verbatim); ids are positions
   * @param merges merge rules in priority order; every part and every result must be in vocab
   * @param specialTokens tokens matched verbatim in text and skipped by decode(skipSpecial); each
   *     must be in vocab
   * @param bosToken a special token prepended when encoding with special tokens, or null
   */
  public static void write(
      Path file,
      List<String> vocab,
      List<Merge> merges,
      List<String> specialTokens,
      String bosToken)
      throws IOException {
    Map<String, Integer> ids = new HashMap<>();
    for (int i = 0; i < vocab.size(); i++) {
      if (ids.put(vocab.get(i), i) != null) {
        throw new IllegalArgumentException("vocab has token \"" + vocab.get(i) + "\" twice");
      }
    }
    for (Merge m : merges) {
      String joined = m.left() + m.right();
      if (!ids.containsKey(m.left()) || !ids.containsKey(m.right()) || !ids.containsKey(joined)) {
        throw new IllegalArgumentException(
            "merge " + m + ": its parts and result \"" + joined + "\" must all be in vocab");
      }
    }
    Set<String> specials = new HashSet<>(specialTokens);
    for (String s : specialTokens) {
      if (!ids.containsKey(s)) {
        throw new IllegalArgumentException("special token " + s + " is not in vocab");
      }
    }
    if (bosToken != null && !specials.contains(bosToken)) {
      throw new IllegalArgumentException("bos token " + bosToken + " is not a special token");
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try (Writer out = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8);
        JsonWriter w = new JsonWriter(out)) {
      w.setHtmlSafe(false);
      w.setIndent("  ");
      w.setSerializeNulls(true);
      w.beginObject();
      w.name("version").value("1.0");
      w.name("truncation").nullValue();
      w.name("padding").nullValue();
      w.name("added_tokens").beginArray();
      for (String s : specialTokens) {
        w.beginObject();
        w.name("id").value(ids.get(s));
        w.name("content").value(s);
        w.name("single_word").value(false);
        w.name("lstrip").value(false);
        w.name("rstrip").value(false);
        w.name("normalized").value(false);
        w.name("special").value(true);
        w.endObject();
      }
      w.endArray();
      w.name("normalizer").nullValue();
      w.name("pre_tokenizer");
      byteLevel(w, false, true);
      w.name("post_processor");
      if (bosToken == null) {
        w.nullValue();
      } else {
        template(w, bosToken, ids.get(bosToken));
      }
      w.name("decoder");
      byteLevel(w, true, true);
      w.name("model").beginObject();
      w.name("type").value("BPE");
      w.name("dropout").nullValue();
      w.name("unk_token").nullValue();
      w.name("continuing_subword_prefix").nullValue();
      w.name("end_of_word_suffix").nullValue();
      w.name("fuse_unk").value(false);
      w.name("byte_fallback").value(false);
      w.name("vocab").beginObject();
      for (int i = 0; i < vocab.size(); i++) {
        w.name(vocab.get(i)).value(i);
      }
      w.endObject();
      w.name("merges").beginArray();
      for (Merge m : merges) {
        w.value(m.left() + " " + m.right());
      }
      w.endArray();
      w.endObject();
      w.endObject();
    }
    try {
      Files.move(
          tmp,
          file,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (java.nio.file.AtomicMoveNotSupportedException e) {
      Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void byteLevel(JsonWriter w, boolean addPrefixSpace, boolean trimOffsets)
      throws IOException {
    w.beginObject();
    w.name("type").value("ByteLevel");
    w.name("add_prefix_space").value(addPrefixSpace);
    w.name("trim_offsets").value(trimOffsets);
    w.name("use_regex").value(true);
    w.endObject();
  }

  private static void template(JsonWriter w, String bos, int bosId) throws IOException {
    w.beginObject();
    w.name("type").value("TemplateProcessing");
    w.name("single").beginArray();
    special(w, bos, 0);
    sequence(w, "A", 0);
    w.endArray();
    w.name("pair").beginArray();
    special(w, bos, 0);
    sequence(w, "A", 0);
    special(w, bos, 1);
    sequence(w, "B", 1);
    w.endArray();
    w.name("special_tokens").beginObject();
    w.name(bos).beginObject();
    w.name("id").value(bos);
    w.name("ids").beginArray().value(bosId).endArray();
    w.name("tokens").beginArray().value(bos).endArray();
    w.endObject();
    w.endObject();
    w.endObject();
  }

  private static void special(JsonWriter w, String token, int typeId) throws IOException {
    w.beginObject().name("SpecialToken").beginObject();
    w.name("id").value(token).name("type_id").value(typeId);
    w.endObject().endObject();
  }

  private static void sequence(JsonWriter w, String id, int typeId) throws IOException {
    w.beginObject().name("Sequence").beginObject();
    w.name("id").value(id).name("type_id").value(typeId);
    w.endObject().endObject();
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /** How token strings map back to bytes. */
  enum Spelling {
    /** GPT-2 byte-level alphabet (Llama 3, Qwen2, GPT-2, our own). */
    BYTE_LEVEL,
    /**
     * SentencePiece style: {@code ▁} is a space, {@code <0xAB>} is a raw byte (Llama 2, Mistral).
     */
    SENTENCEPIECE,
    /** Tokens are their own UTF-8 text. */
    PLAIN
  }

  /** What TextTokenizer needs from a tokenizer.json besides the DJL handle. */
  record Parsed(
      String[] tokens, Map<String, Integer> addedIds, Set<Integer> specialSet, Spelling spelling) {}

  static Parsed parse(String json, String source) {
    JsonElement rootElement;
    try {
      rootElement = JsonParser.parseString(json);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(source + ": not valid JSON: " + e.getMessage(), e);
    }
    if (!rootElement.isJsonObject()) {
      throw new IllegalArgumentException(source + ": expected a JSON object at the top level");
    }
    JsonObject root = rootElement.getAsJsonObject();
    JsonObject model =
        root.has("model") && root.get("model").isJsonObject()
            ? root.getAsJsonObject("model")
            : null;
    if (model == null) {
      throw new IllegalArgumentException(source + ": missing model");
    }
    Map<Integer, String> byId = new HashMap<>();
    JsonElement vocab = model.get("vocab");
    if (vocab != null && vocab.isJsonObject()) {
      for (Map.Entry<String, JsonElement> e : vocab.getAsJsonObject().entrySet()) {
        byId.put(e.getValue().getAsInt(), e.getKey());
      }
    } else if (vocab != null && vocab.isJsonArray()) { // Unigram: [[piece, score], ...]
      JsonArray a = vocab.getAsJsonArray();
      for (int i = 0; i < a.size(); i++) {
        JsonElement entry = a.get(i);
        byId.put(
            i,
            entry.isJsonArray()
                ? entry.getAsJsonArray().get(0).getAsString()
                : entry.getAsString());
      }
    }
    Map<String, Integer> addedIds = new LinkedHashMap<>();
    Set<Integer> specialSet = new HashSet<>();
    JsonElement addedTokens = root.get("added_tokens");
    if (addedTokens != null && addedTokens.isJsonArray()) {
      for (JsonElement e : addedTokens.getAsJsonArray()) {
        JsonObject t = e.getAsJsonObject();
        int id = t.get("id").getAsInt();
        String content = t.get("content").getAsString();
        byId.put(id, content);
        addedIds.put(content, id);
        if (t.has("special") && t.get("special").getAsBoolean()) {
          specialSet.add(id);
        }
      }
    }
    int size = 0;
    for (int id : byId.keySet()) {
      if (id < 0) {
        throw new IllegalArgumentException(source + ": negative token id " + id);
      }
      size = Math.max(size, id + 1);
    }
    String[] tokens = new String[size];
    byId.forEach((id, token) -> tokens[id] = token);
    Spelling spelling = spelling(root, model);
    return new Parsed(tokens, addedIds, specialSet, spelling);
  }

  private static Spelling spelling(JsonObject root, JsonObject model) {
    String decoder = String.valueOf(root.get("decoder"));
    String pre = String.valueOf(root.get("pre_tokenizer"));
    if (decoder.contains("\"ByteLevel\"") || pre.contains("\"ByteLevel\"")) {
      return Spelling.BYTE_LEVEL;
    }
    boolean byteFallback =
        model.has("byte_fallback")
            && model.get("byte_fallback").isJsonPrimitive()
            && model.get("byte_fallback").getAsBoolean();
    if (byteFallback
        || decoder.contains("\"ByteFallback\"")
        || decoder.contains("\\u2581")
        || decoder.contains("\u2581")
        || pre.contains("Metaspace")) {
      return Spelling.SENTENCEPIECE;
    }
    return Spelling.PLAIN;
  }
}
