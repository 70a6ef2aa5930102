package io.draftmesh.router;

import io.draftmesh.proto.v1.Position;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntToDoubleFunction;

/**
 * A scripted "model" that writes one known text, in bytes, through a real tokenizer: after an
 * output whose bytes are a prefix of the text, it predicts the longest vocabulary token that
 * continues the text without crossing the next uncertain offset. At an uncertain byte offset a
 * base-like model is unsure (top-1 {@link #UNSURE}) and would write "X" instead (which it skips
 * afterwards, so a model left alone writes the text with an X before each uncertain offset); an
 * aligned-like model is never unsure. At the end of the text it predicts its end token. Any other
 * output is off script: it predicts the end token, so a wrong exchange shows in the text.
 *
 * <p>{@code entropy} gives the entropy (bits) reported at each byte offset: scripted distributions
 * for the entropy switch.
 */
final class ScriptedText implements ScriptedWorker.Model {
  static final float SURE = 0.9f;
  static final float UNSURE = 0.2f;

  private final BpeTokenizer tokenizer;
  private final byte[] text;
  private final Set<Integer> uncertain; // byte offsets
  private final boolean insertsX;
  private final int endToken;
  private final IntToDoubleFunction entropy;
  private final Map<String, Integer> byBytes = new HashMap<>();
  private final int xToken;

  ScriptedText(
      BpeTokenizer tokenizer,
      String text,
      Set<Integer> uncertainBytes,
      boolean insertsX,
      int endToken,
      IntToDoubleFunction entropy) {
    this.tokenizer = tokenizer;
    this.text = text.getBytes(StandardCharsets.UTF_8);
    this.uncertain = uncertainBytes;
    this.insertsX = insertsX;
    this.endToken = endToken;
    this.entropy = entropy;
    for (int id = 0; id < tokenizer.vocabSize(); id++) {
      if (!tokenizer.isSpecial(id)) {
        byBytes.putIfAbsent(key(tokenizer.tokenBytes(id)), id);
      }
    }
    this.xToken = byBytes.get(key(new byte[] {'X'}));
  }

  /** The byte offset where {@code s} starts in the text (for choosing uncertain offsets). */
  static int offsetOf(String text, String s) {
    int i = text.indexOf(s);
    if (i < 0) {
      throw new IllegalArgumentException(s + " not in " + text);
    }
    return text.substring(0, i).getBytes(StandardCharsets.UTF_8).length;
  }

  @Override
  public Position next(List<Integer> output) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    boolean lastWasX = false;
    for (int id : output) {
      if (tokenizer.isSpecial(id)) {
        return end(0);
      }
      byte[] t = tokenizer.tokenBytes(id);
      for (byte x : t) {
        if (insertsX && x == 'X') {
          lastWasX = true;
          continue; // its own X: skipped, the script goes on
        }
        b.write(x);
        lastWasX = false;
      }
    }
    byte[] out = b.toByteArray();
    if (out.length > text.length || !Arrays.equals(out, 0, out.length, text, 0, out.length)) {
      return end(out.length); // off script
    }
    int at = out.length;
    float h = (float) entropy.applyAsDouble(Math.min(at, text.length - 1));
    if (at == text.length) {
      return end(at);
    }
    if (insertsX && uncertain.contains(at) && !lastWasX) {
      return position(xToken, UNSURE, h);
    }
    int limit = text.length;
    for (int u : uncertain) {
      if (u > at && u < limit) {
        limit = u;
      }
    }
    for (int n = Math.min(limit - at, 24); n >= 1; n--) {
      Integer id = byBytes.get(key(Arrays.copyOfRange(text, at, at + n)));
      if (id != null) {
        return position(id, SURE, h);
      }
    }
    throw new IllegalStateException("no token for byte " + text[at]);
  }

  private Position end(int at) {
    return position(endToken, UNSURE, 0f);
  }

  private static Position position(int token, float p, float h) {
    return Position.newBuilder()
        .setTokenId(token)
        .setTokenProb(p)
        .setArgmaxTokenId(token)
        .setArgmaxProb(p)
        .setEntropyBits(h)
        .build();
  }

  private static String key(byte[] b) {
    return new String(b, StandardCharsets.ISO_8859_1);
  }
}
