package io.draftmesh.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's {@code bytes_to_unicode}: a reversible map from each of the 256 byte values to a
 * printable Unicode character, so byte-level BPE tokens can be stored as JSON strings. Printable
 * Latin-1 bytes ({@code !..~}, {@code ¡..¬}, {@code ®..ÿ}) map to themselves; the other 68 bytes
 * map to U+0100 upwards in byte order (space 0x20 becomes {@code Ġ} U+0120, newline {@code Ċ}).
 */
public final class ByteLevel {
  private static final char[] BYTE_TO_CHAR = new char[256];
  private static final int[] CHAR_TO_BYTE = new int[512];

  static {
    boolean[] printable = new boolean[256];
    for (int b = '!'; b <= '~'; b++) {
      printable[b] = true;
    }
    for (int b = 0xA1; b <= 0xAC; b++) {
      printable[b] = true;
    }
    for (int b = 0xAE; b <= 0xFF; b++) {
      printable[b] = true;
    }
    java.util.Arrays.fill(CHAR_TO_BYTE, -1);
    int next = 256;
    for (int b = 0; b < 256; b++) {
      char c = printable[b] ? (char) b : (char) next++;
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  private ByteLevel() {}

  /** The character byte {@code b} (0..255) is written as. */
  public static char toChar(int b) {
    return BYTE_TO_CHAR[b & 0xFF];
  }

  /** The byte character {@code c} stands for, or -1 if it is not a byte-level character. */
  public static int toByte(char c) {
    return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
  }

  /** Byte-level spelling of {@code bytes}. */
  public static String encode(byte[] bytes) {
    StringBuilder sb = new StringBuilder(bytes.length);
    for (byte b : bytes) {
      sb.append(BYTE_TO_CHAR[b & 0xFF]);
    }
    return sb.toString();
  }

  /** Byte-level spelling of the UTF-8 bytes of {@code text}. */
  public static String encode(String text) {
    return encode(text.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The bytes a byte-level token stands for, or null if {@code token} contains a character outside
   * the byte-level alphabet (HF's ByteLevel decoder then uses the token's own UTF-8 bytes).
   */
  public static byte[] decode(String token) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
    for (int i = 0; i < token.length(); i++) {
      int b = toByte(token.charAt(i));
      if (b < 0) {
        return null;
      }
      out.write(b);
    }
    return out.toByteArray();
  }
}
