package io.draftmesh.gateway;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The accepted API keys, kept only as SHA-256 digests and checked in constant time: a presented key
 * is hashed and compared with {@link MessageDigest#isEqual} against every stored digest, without
 * stopping at a match, so neither the key's content nor its position leaks through timing.
 *
 * <p>A caller is known by the label {@code key-N} (its position in the configuration), which is
 * what logs and limits use; the key itself is never logged.
 */
final class ApiKeys {
  /** Who made a request: {@code key-N}, or {@code anonymous} on a gateway without keys. */
  record Caller(String id) {}

  static final Caller ANONYMOUS = new Caller("anonymous");

  private final List<byte[]> digests = new ArrayList<>();

  ApiKeys(List<String> keys) {
    for (String k : keys) {
      digests.add(sha256(k));
    }
  }

  /** Whether requests need a key at all. */
  boolean required() {
    return !digests.isEmpty();
  }

  /**
   * The caller for an {@code Authorization} header value ({@code Bearer <key>}).
   *
   * @throws io.grpc.StatusRuntimeException UNAUTHENTICATED when the header is missing, malformed or
   *     carries an unknown key
   */
  Caller authenticate(String authorization) {
    if (!required()) {
      return ANONYMOUS;
    }
    if (authorization == null || authorization.isBlank()) {
      throw Errors.unauthenticated(
          "authorization: missing (expected: 'Authorization: Bearer <API key>')");
    }
    String value = authorization.strip();
    int space = value.indexOf(' ');
    if (space < 0 || !value.substring(0, space).toLowerCase(Locale.ROOT).equals("bearer")) {
      throw Errors.unauthenticated(
          "authorization: not a bearer token (expected: 'Authorization: Bearer <API key>')");
    }
    byte[] presented = sha256(value.substring(space + 1).strip());
    int match = -1;
    for (int i = 0; i < digests.size(); i++) {
      if (MessageDigest.isEqual(digests.get(i), presented) && match < 0) {
        match = i;
      }
    }
    if (match < 0) {
      throw Errors.unauthenticated("Incorrect API key provided (expected: a configured key).");
    }
    return new Caller("key-" + (match + 1));
  }

  private static byte[] sha256(String s) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}
