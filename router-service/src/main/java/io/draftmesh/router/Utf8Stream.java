package io.draftmesh.router;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Incremental UTF-8 decoding for streamed token bytes: a token may end in the middle of a
 * character, so the bytes of an incomplete sequence are held until the next push completes it.
 * Invalid bytes become U+FFFD, as a whole-string decode would give. Not thread-safe.
 */
final class Utf8Stream {
  private final CharsetDecoder decoder =
      StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPLACE)
          .onUnmappableCharacter(CodingErrorAction.REPLACE);
  private ByteBuffer held = ByteBuffer.allocate(0);

  /** Text completed by {@code bytes}; trailing bytes of an unfinished character are held. */
  String push(byte[] bytes) {
    ByteBuffer in = ByteBuffer.allocate(held.remaining() + bytes.length);
    in.put(held).put(bytes).flip();
    CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
    decoder.decode(in, out, false);
    held = in.slice();
    return out.flip().toString();
  }

  /** Bytes held back, for tests. */
  int heldBytes() {
    return held.remaining();
  }

  /** Ends the stream: held bytes of an unfinished character become U+FFFD. */
  String finish() {
    CharBuffer out = CharBuffer.allocate(held.remaining() + 2);
    decoder.decode(held, out, true);
    decoder.flush(out);
    held = ByteBuffer.allocate(0);
    decoder.reset();
    return out.flip().toString();
  }
}
