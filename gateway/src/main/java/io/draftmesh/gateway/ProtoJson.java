package io.draftmesh.gateway;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.math.BigDecimal;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Protobuf messages as JSON for the {@code draftmesh} extension of OpenAI responses: field names as
 * in the .proto (snake_case), every field present (defaults included, so the shape is stable), enum
 * values without their type prefix and lower-case ({@code PROVENANCE_DRAFT_ACCEPTED} → {@code
 * draft_accepted}), floats in their shortest decimal form.
 *
 * <p>Generic over the descriptor on purpose: a field the router adds to {@code GenerateChunk} or
 * {@code GenerationStats} (say, per-token entropy) reaches HTTP clients without a gateway change.
 */
final class ProtoJson {
  private ProtoJson() {}

  static JsonObject toJson(Message m, Set<String> skip) {
    JsonObject o = new JsonObject();
    for (FieldDescriptor f : m.getDescriptorForType().getFields()) {
      if (skip.contains(f.getName())) {
        continue;
      }
      if (f.isRepeated()) {
        JsonArray a = new JsonArray();
        for (Object v : (List<?>) m.getField(f)) {
          a.add(value(f, v));
        }
        o.add(f.getName(), a);
      } else if (f.hasPresence() && !m.hasField(f)) {
        o.add(f.getName(), JsonNull.INSTANCE);
      } else {
        o.add(f.getName(), value(f, m.getField(f)));
      }
    }
    return o;
  }

  private static JsonElement value(FieldDescriptor f, Object v) {
    switch (f.getJavaType()) {
      case ENUM:
        return new JsonPrimitive(enumName((EnumValueDescriptor) v));
      case MESSAGE:
        return toJson((Message) v, Set.of());
      case FLOAT:
        return number((Float) v);
      case DOUBLE:
        double d = (Double) v;
        return Double.isFinite(d) ? new JsonPrimitive(BigDecimal.valueOf(d)) : JsonNull.INSTANCE;
      case BOOLEAN:
        return new JsonPrimitive((Boolean) v);
      case STRING:
        return new JsonPrimitive((String) v);
      case BYTE_STRING:
        return new JsonPrimitive(
            Base64.getEncoder().encodeToString(((ByteString) v).toByteArray()));
      default: // INT, LONG
        if (f.getType() == FieldDescriptor.Type.UINT64
            || f.getType() == FieldDescriptor.Type.FIXED64) {
          return new JsonPrimitive(new BigDecimal(Long.toUnsignedString((Long) v)));
        }
        return new JsonPrimitive((Number) v);
    }
  }

  static JsonElement number(float f) {
    return Float.isFinite(f)
        ? new JsonPrimitive(new BigDecimal(Float.toString(f)))
        : JsonNull.INSTANCE;
  }

  /** {@code STRATEGY_SPECULATIVE} of enum {@code Strategy} → {@code speculative}. */
  static String enumName(EnumValueDescriptor v) {
    String prefix = upperSnake(v.getType().getName()) + "_";
    String name = v.getName();
    if (name.startsWith(prefix)) {
      name = name.substring(prefix.length());
    }
    return name.toLowerCase(Locale.ROOT);
  }

  private static String upperSnake(String camel) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < camel.length(); i++) {
      char c = camel.charAt(i);
      if (Character.isUpperCase(c) && i > 0) {
        sb.append('_');
      }
      sb.append(Character.toUpperCase(c));
    }
    return sb.toString();
  }
}
