package io.draftmesh.cli;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Incremental detokenization: token bytes go in as they arrive, and only text made of complete
 * UTF-8 sequences comes out, so a character split across tokens is printed once it is whole.
 * Malformed bytes become U+FFFD.
 */
final class Utf8Stream {
  private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

  /** Adds {@code bytes}; returns the text that is now complete (possibly empty). */
  String push(byte[] bytes) {
    pending.writeBytes(bytes);
    byte[] all = pending.toByteArray();
    int cut = completePrefix(all);
    pending.reset();
    pending.write(all, cut, all.length - cut);
    return decode(all, cut);
  }

  /** Whatever is left, with an unfinished sequence as U+FFFD. */
  String flush() {
    byte[] all = pending.toByteArray();
    pending.reset();
    return decode(all, all.length);
  }

  /** Length of the longest prefix that does not end inside a UTF-8 sequence. */
  static int completePrefix(byte[] b) {
    int n = b.length;
    // A sequence is at most 4 bytes: look back for its lead byte.
    for (int i = n - 1; i >= Math.max(0, n - 4); i--) {
      int v = b[i] & 0xFF;
      if ((v & 0xC0) == 0x80) {
        continue; // continuation byte
      }
      int need =
          v < 0x80
              ? 1
              : (v & 0xE0) == 0xC0 ? 2 : (v & 0xF0) == 0xE0 ? 3 : (v & 0xF8) == 0xF0 ? 4 : 1;
      return n - i >= need ? n : i;
    }
    return n; // only continuation bytes: malformed, emit them
  }

  private static String decode(byte[] b, int len) {
    if (len == 0) {
      return "";
    }
    CharsetDecoder d =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    try {
      CharBuffer chars = d.decode(ByteBuffer.wrap(b, 0, len));
      return chars.toString();
    } catch (CharacterCodingException e) {
      throw new IllegalStateException("a replacing decoder cannot fail", e);
    }
  }
}
