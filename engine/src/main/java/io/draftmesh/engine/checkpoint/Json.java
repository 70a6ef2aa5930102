package io.draftmesh.engine.checkpoint;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Strict JSON reading with messages that name the file and the field. */
final class Json {
  static final Gson PRETTY =
      new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeNulls().create();

  private Json() {}

  /** Reads {@code file} as one strict JSON object (no comments, no trailing garbage). */
  static JsonObject readObject(Path file) throws IOException {
    String text = new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
    return parseObject(text, file.toString());
  }

  static JsonObject parseObject(String text, String source) {
    try (JsonReader reader = new JsonReader(new StringReader(text))) {
      reader.setStrictness(Strictness.STRICT);
      JsonElement element = new Gson().getAdapter(JsonElement.class).read(reader);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new CheckpointException(source + ": not valid JSON: trailing data after the object");
      }
      if (!element.isJsonObject()) {
        throw new CheckpointException(
            source + ": expected a JSON object at the top level, found " + describe(element));
      }
      return element.getAsJsonObject();
    } catch (IOException | JsonParseException | IllegalStateException e) {
      throw new CheckpointException(source + ": not valid JSON: " + e.getMessage(), e);
    }
  }

  static boolean present(JsonObject o, String field) {
    return o.has(field) && !o.get(field).isJsonNull();
  }

  static int requiredInt(JsonObject o, String field, String source) {
    if (!present(o, field)) {
      throw new CheckpointException(source + ": missing required field " + field);
    }
    return toInt(o.get(field), field, source);
  }

  static int optInt(JsonObject o, String field, int dflt, String source) {
    return present(o, field) ? toInt(o.get(field), field, source) : dflt;
  }

  static double optDouble(JsonObject o, String field, double dflt, String source) {
    if (!present(o, field)) {
      return dflt;
    }
    JsonElement e = o.get(field);
    if (!isNumber(e)) {
      throw new CheckpointException(
          source + ": " + field + " must be a number, found " + describe(e));
    }
    return e.getAsDouble();
  }

  static double requiredDouble(JsonObject o, String field, String source) {
    if (!present(o, field)) {
      throw new CheckpointException(source + ": missing required field " + field);
    }
    return optDouble(o, field, Double.NaN, source);
  }

  static boolean optBool(JsonObject o, String field, boolean dflt, String source) {
    if (!present(o, field)) {
      return dflt;
    }
    JsonElement e = o.get(field);
    if (!(e.isJsonPrimitive() && e.getAsJsonPrimitive().isBoolean())) {
      throw new CheckpointException(
          source + ": " + field + " must be true or false, found " + describe(e));
    }
    return e.getAsBoolean();
  }

  static String optString(JsonObject o, String field, String dflt, String source) {
    if (!present(o, field)) {
      return dflt;
    }
    JsonElement e = o.get(field);
    if (!(e.isJsonPrimitive() && e.getAsJsonPrimitive().isString())) {
      throw new CheckpointException(
          source + ": " + field + " must be a string, found " + describe(e));
    }
    return e.getAsString();
  }

  static JsonObject optObject(JsonObject o, String field, String source) {
    if (!present(o, field)) {
      return null;
    }
    JsonElement e = o.get(field);
    if (!e.isJsonObject()) {
      throw new CheckpointException(
          source + ": " + field + " must be an object, found " + describe(e));
    }
    return e.getAsJsonObject();
  }

  /** An int or a list of ints (HF writes both for eos_token_id); returns the values in order. */
  static int[] intOrIntList(JsonObject o, String field, String source) {
    if (!present(o, field)) {
      return null;
    }
    JsonElement e = o.get(field);
    if (e.isJsonArray()) {
      JsonArray a = e.getAsJsonArray();
      int[] out = new int[a.size()];
      for (int i = 0; i < out.length; i++) {
        out[i] = toInt(a.get(i), field + "[" + i + "]", source);
      }
      return out;
    }
    return new int[] {toInt(e, field, source)};
  }

  static int toInt(JsonElement e, String field, String source) {
    if (isNumber(e)) {
      BigDecimal d = e.getAsBigDecimal();
      try {
        return d.intValueExact();
      } catch (ArithmeticException notIntegral) {
        // fall through to the error below
      }
    }
    throw new CheckpointException(
        source + ": " + field + " must be an integer, found " + describe(e));
  }

  static boolean isNumber(JsonElement e) {
    return e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber();
  }

  static String describe(JsonElement e) {
    if (e == null || e.isJsonNull()) {
      return "null";
    }
    if (e.isJsonObject()) {
      return "an object";
    }
    if (e.isJsonArray()) {
      return "an array";
    }
    JsonPrimitive p = e.getAsJsonPrimitive();
    String s = p.isString() ? "\"" + p.getAsString() + "\"" : p.toString();
    return s.length() > 60 ? s.substring(0, 60) + "..." : s;
  }
}
