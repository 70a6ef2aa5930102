package io.draftmesh.engine.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A Hugging Face tokenizer loaded offline from a local {@code tokenizer.json} through DJL's
 * bindings to the Rust {@code tokenizers} library, configured for LLM serving:
 *
 * <ul>
 *   <li>no truncation and no padding (DJL's defaults truncate to 512 tokens and pad);
 *   <li>{@link #encode(String)} adds no special tokens; {@link #encode(String, boolean)} can ask
 *       for them (e.g. a bos from the tokenizer's TemplateProcessing);
 *   <li>{@link #decode(int[])} keeps special tokens (DJL's default skips them whenever special
 *       tokens are not added on encode).
 * </ul>
 *
 * <p>{@link #tokenBytes} gives the raw bytes each token stands for, derived from the vocabulary:
 * byte-level tokenizers (GPT-2, Llama 3, Qwen2) map exactly; SentencePiece-style ones (Llama 2,
 * Mistral) map {@code ▁} to a space and {@code <0xAB>} to that byte, without the decoder's
 * leading-space strip. Concatenating token bytes and decoding UTF-8 incrementally gives streaming
 * detokenization that never splits a character.
 *
 * <p>Thread-safe for encode/decode; {@link #close()} frees the native tokenizer.
 */
public final class TextTokenizer implements AutoCloseable {
  private final Path path;
  private final HuggingFaceTokenizer tokenizer;
  private final String sha256;
  private final String[] tokens;
  private final byte[][] tokenBytes;
  private final Map<String, Integer> addedIds;
  private final java.util.Set<Integer> specialIds;
  private volatile Map<String, Integer> vocabIds;

  private TextTokenizer(
      Path path, HuggingFaceTokenizer tokenizer, String sha256, TokenizerJson.Parsed parsed) {
    this.path = path;
    this.tokenizer = tokenizer;
    this.sha256 = sha256;
    this.tokens = parsed.tokens();
    this.addedIds = parsed.addedIds();
    this.specialIds = parsed.specialSet();
    this.tokenBytes = new byte[tokens.length][];
    for (int i = 0; i < tokens.length; i++) {
      tokenBytes[i] = bytesOf(tokens[i], parsed.spelling());
    }
  }

  /**
   * Loads {@code tokenizerJson}; nothing is downloaded.
   *
   * @throws UncheckedIOException if the file cannot be read
   * @throws IllegalArgumentException if it is not a tokenizer.json the library accepts
   */
  public static TextTokenizer load(Path tokenizerJson) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(tokenizerJson);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + tokenizerJson + ": " + e.getMessage(), e);
    }
    String json = new String(bytes, StandardCharsets.UTF_8);
    TokenizerJson.Parsed parsed = TokenizerJson.parse(json, tokenizerJson.toString());
    Map<String, String> options = new HashMap<>();
    options.put("addSpecialTokens", "false");
    options.put("truncation", "false");
    options.put("padding", "false");
    HuggingFaceTokenizer hf;
    try {
      // From the same bytes we hash, so sha256() always describes what was loaded.
      hf = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(bytes), options);
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException(
          tokenizerJson + ": the tokenizers library rejected it: " + e.getMessage(), e);
    }
    return new TextTokenizer(tokenizerJson, hf, sha256(bytes), parsed);
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required of every JVM", e);
    }
  }

  private static byte[] bytesOf(String token, TokenizerJson.Spelling spelling) {
    if (token == null) {
      return new byte[0];
    }
    switch (spelling) {
      case BYTE_LEVEL:
        byte[] b = ByteLevel.decode(token);
        return b != null ? b : token.getBytes(StandardCharsets.UTF_8);
      case SENTENCEPIECE:
        if (token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")) {
          try {
            return new byte[] {(byte) Integer.parseInt(token.substring(3, 5), 16)};
          } catch (NumberFormatException notAByte) {
            // an ordinary token that happens to look similar
          }
        }
        return token.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
      default:
        return token.getBytes(StandardCharsets.UTF_8);
    }
  }

  /** Token ids of {@code text}, without special tokens. */
  public int[] encode(String text) {
    return encode(text, false);
  }

  /**
   * Token ids of {@code text}; with {@code addSpecialTokens} the tokenizer's post-processor adds
   * its template tokens (e.g. bos). Special-token strings inside {@code text} are always matched as
   * special tokens, as in HF.
   */
  public int[] encode(String text, boolean addSpecialTokens) {
    Encoding encoding = tokenizer.encode(text, addSpecialTokens, false);
    long[] ids = encoding.getIds();
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = (int) ids[i];
    }
    return out;
  }

  /** Text of {@code ids}, special tokens included; invalid UTF-8 becomes U+FFFD. */
  public String decode(int[] ids) {
    return decode(ids, false);
  }

  public String decode(int[] ids, boolean skipSpecialTokens) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      longs[i] = ids[i];
    }
    return tokenizer.decode(longs, skipSpecialTokens);
  }

  /**
   * The raw bytes token {@code id} stands for (may be part of a UTF-8 character). Ids inside the
   * vocab range that no token uses give an empty array.
   *
   * @throws IllegalArgumentException if {@code id} is outside [0, vocabSize)
   */
  public byte[] tokenBytes(int id) {
    checkId(id);
    return tokenBytes[id].clone();
  }

  /** Concatenated {@link #tokenBytes} of {@code ids}. */
  public byte[] bytes(int[] ids) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
    for (int id : ids) {
      checkId(id);
      out.writeBytes(tokenBytes[id]);
    }
    return out.toByteArray();
  }

  private void checkId(int id) {
    if (id < 0 || id >= tokens.length) {
      throw new IllegalArgumentException(
          "token id " + id + " (expected: 0.." + (tokens.length - 1) + ")");
    }
  }

  /** The token string of {@code id} as stored in tokenizer.json, or null for an unused id. */
  public String token(int id) {
    checkId(id);
    return tokens[id];
  }

  /** One more than the largest id of the model vocab and the added tokens. */
  public int vocabSize() {
    return tokens.length;
  }

  /** Whether {@code id} is an added token marked special. */
  public boolean isSpecial(int id) {
    return specialIds.contains(id);
  }

  /** Lower-case hex SHA-256 of the tokenizer.json bytes that were loaded. */
  public String sha256() {
    return sha256;
  }

  /** The id of {@code token}: an added/special token's content or a vocab entry verbatim. */
  public OptionalInt tokenId(String token) {
    Integer id = addedIds.get(token);
    if (id == null) {
      id = vocabIds().get(token);
    }
    return id == null ? OptionalInt.empty() : OptionalInt.of(id);
  }

  private Map<String, Integer> vocabIds() {
    Map<String, Integer> m = vocabIds;
    if (m == null) {
      m = new HashMap<>(tokens.length * 2);
      for (int i = 0; i < tokens.length; i++) {
        if (tokens[i] != null) {
          m.putIfAbsent(tokens[i], i);
        }
      }
      vocabIds = m;
    }
    return m;
  }

  public Path path() {
    return path;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
