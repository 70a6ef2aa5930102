package io.draftmesh.router;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A pure-Java reader of Hugging Face {@code tokenizer.json} files with a BPE model, so the router
 * can tokenize prompts and detokenize output without loading a model runtime.
 *
 * <p>Encoding follows the {@code tokenizers} library's pipeline: added tokens are split out of the
 * raw text first (leftmost-longest), the rest is normalized (NFC/NFKC/NFD/NFKD/Lowercase),
 * pre-tokenized ({@code ByteLevel} with the GPT-2 regex, {@code Split}, {@code Digits}, {@code
 * Sequence}) and each piece is merged by BPE rank (lowest rank first, leftmost among equals, as the
 * library's heap does), and with special tokens asked for the {@code TemplateProcessing}
 * post-processor adds its tokens. A file using anything else still loads for detokenization; {@link
 * #encode} then fails with the reason ({@link #encodeUnsupported()}).
 *
 * <p>Decoding maps each token to the raw bytes it stands for: byte-level tokens (GPT-2, Llama 3,
 * Qwen2) exactly, characters outside the byte alphabet as their own UTF-8 (as the ByteLevel decoder
 * does), SentencePiece-style {@code ▁} as a space and {@code <0xAB>} as a byte. Feeding those bytes
 * through {@link Utf8Stream} gives UTF-8-safe streaming text.
 *
 * <p>Thread-safe.
 */
final class BpeTokenizer {
  /** GPT-2's pre-tokenization regex, with Unicode {@code \s} as the Rust library has it. */
  static final Pattern GPT2_SPLIT =
      Pattern.compile(
          "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
          Pattern.UNICODE_CHARACTER_CLASS);

  private static final char[] BYTE_TO_CHAR = new char[256];
  private static final int[] CHAR_TO_BYTE = new int[512];

  static {
    // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes
    // map to U+0100 upwards in byte order (space is U+0120 'Ġ').
    Arrays.fill(CHAR_TO_BYTE, -1);
    int next = 256;
    for (int b = 0; b < 256; b++) {
      boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      char c = printable ? (char) b : (char) next++;
      BYTE_TO_CHAR[b] = c;
      CHAR_TO_BYTE[c] = b;
    }
  }

  /** An entry of {@code added_tokens}. */
  private record AddedToken(
      int id,
      String content,
      boolean special,
      boolean lstrip,
      boolean rstrip,
      boolean singleWord) {}

  /** One step of pre-tokenization over the current pieces. */
  private interface PreTokenizer {
    List<String> apply(List<String> pieces);
  }

  private final String sha256;
  private final String[] tokens; // (vocab) token string by id, null where unused
  private final byte[][] tokenBytes; // (vocab) raw bytes each token stands for
  private final boolean[] special; // (vocab) added tokens marked special
  private final Map<String, Integer> vocab;
  private final Map<Long, int[]> merges; // (left id, right id) -> {rank, merged id}
  private final List<AddedToken> added; // longest content first
  private final UnaryOperator<String> normalizer;
  private final List<PreTokenizer> preTokenizers;
  private final int[] prefixIds; // post-processor tokens before the text
  private final int[] suffixIds; // post-processor tokens after the text
  private final boolean ignoreMerges;
  private final boolean byteFallback;
  private final Integer unkId;
  private final String encodeUnsupported; // null when encode is supported
  private final Map<String, int[]> cache = new ConcurrentHashMap<>();
  private static final int MAX_CACHED_PIECE = 64;
  private final int maxTokenBytes; // the longest token's bytes

  private BpeTokenizer(Builder b) {
    this.sha256 = b.sha256;
    this.tokens = b.tokens;
    this.tokenBytes = b.tokenBytes;
    this.special = b.special;
    this.vocab = b.vocab;
    this.merges = b.merges;
    this.added = b.added;
    this.normalizer = b.normalizer;
    this.preTokenizers = b.preTokenizers;
    this.prefixIds = b.prefixIds;
    this.suffixIds = b.suffixIds;
    this.ignoreMerges = b.ignoreMerges;
    this.byteFallback = b.byteFallback;
    this.unkId = b.unkId;
    this.encodeUnsupported = b.unsupported.isEmpty() ? null : String.join("; ", b.unsupported);
    int longest = 1;
    for (byte[] t : tokenBytes) {
      longest = Math.max(longest, t == null ? 0 : t.length);
    }
    this.maxTokenBytes = longest;
  }

  /**
   * The most characters a text can have and still encode to fewer than {@code maxTokens} tokens:
   * every token stands for at most {@link #maxTokenBytes} bytes of the normalized text and every
   * character is at least one byte, with a factor 4 for normalizers that shrink text (NFC composes
   * at most 3 characters into 1). A longer text cannot fit, so the router refuses it before
   * spending time on it.
   */
  long maxChars(int maxTokens) {
    return 4L * maxTokenBytes * maxTokens;
  }

  /** Reads {@code file}; fails with IllegalArgumentException if it is not a tokenizer.json. */
  static BpeTokenizer load(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    return parse(bytes, file.toString());
  }

  static BpeTokenizer parse(byte[] bytes, String source) {
    JsonObject root;
    try {
      JsonElement e = JsonParser.parseString(new String(bytes, StandardCharsets.UTF_8));
      if (!e.isJsonObject()) {
        throw new IllegalArgumentException(source + ": expected a JSON object at the top level");
      }
      root = e.getAsJsonObject();
    } catch (RuntimeException e) {
      if (e instanceof IllegalArgumentException iae && iae.getMessage().startsWith(source)) {
        throw iae;
      }
      throw new IllegalArgumentException(source + ": not valid JSON: " + e.getMessage(), e);
    }
    Builder b = new Builder();
    b.sha256 = sha256(bytes);
    try {
      b.read(root, source);
      return new BpeTokenizer(b);
    } catch (RuntimeException e) {
      // A field of the wrong JSON type (an object where a number belongs, ...) throws from Gson's
      // accessors; whatever it was, the file is what is wrong, and the message names it.
      if (e instanceof IllegalArgumentException iae
          && iae.getMessage() != null
          && iae.getMessage().startsWith(source)) {
        throw iae;
      }
      throw new IllegalArgumentException(
          source
              + ": "
              + (e instanceof IllegalArgumentException
                  ? e.getMessage()
                  : "not a tokenizer.json this router reads: " + e),
          e);
    }
  }

  static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required of every JVM", e);
    }
  }

  /** Lower-case hex SHA-256 of the file's bytes, as workers report it in ModelInfo. */
  String sha256() {
    return sha256;
  }

  /** One more than the largest token id. */
  int vocabSize() {
    return tokens.length;
  }

  /** Why {@link #encode} cannot work for this file, or null if it can. */
  String encodeUnsupported() {
    return encodeUnsupported;
  }

  boolean isSpecial(int id) {
    return id >= 0 && id < special.length && special[id];
  }

  /** The raw bytes token {@code id} stands for (possibly part of a UTF-8 character). */
  byte[] tokenBytes(int id) {
    if (id < 0 || id >= tokenBytes.length) {
      throw new IllegalArgumentException(
          "token id " + id + " (expected: 0.." + (tokenBytes.length - 1) + ")");
    }
    return tokenBytes[id];
  }

  /** Text of {@code ids}; invalid UTF-8 becomes U+FFFD. */
  String decode(int[] ids, boolean skipSpecialTokens) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
    for (int id : ids) {
      if (!(skipSpecialTokens && isSpecial(id))) {
        out.writeBytes(tokenBytes(id));
      }
    }
    Utf8Stream s = new Utf8Stream();
    return s.push(out.toByteArray()) + s.finish();
  }

  /**
   * Token ids of {@code text}. Added-token strings in the text are matched as those tokens, as in
   * the tokenizers library.
   *
   * @param addSpecialTokens let the post-processor add its template tokens (e.g. bos)
   * @throws UnsupportedOperationException if the file uses a pipeline step this class lacks
   */
  int[] encode(String text, boolean addSpecialTokens) {
    return encode(text, NO_LITERALS, addSpecialTokens);
  }

  private static final int[] NO_LITERALS = new int[0];

  /**
   * Token ids of {@code text}, with no added token matched inside the literal ranges: untrusted
   * text (a chat message) put into a template must not become the template's special tokens. Text
   * on both sides of a range boundary is pre-tokenized and merged as one, as in {@link
   * #encode(String, boolean)}, so benign text encodes exactly as it would without the ranges.
   *
   * @param literals sorted, disjoint ranges as {@code [from0, to0, from1, to1, ...]} (char offsets,
   *     end exclusive)
   */
  int[] encode(String text, int[] literals, boolean addSpecialTokens) {
    if (encodeUnsupported != null) {
      throw new UnsupportedOperationException(encodeUnsupported);
    }
    IntList out = new IntList();
    if (addSpecialTokens) {
      out.addAll(prefixIds);
    }
    int start = 0;
    int pos = 0;
    while (pos <= text.length()) {
      Match m = nextAdded(text, pos, literals);
      if (m == null) {
        encodeSegment(text.substring(start), out);
        break;
      }
      encodeSegment(text.substring(start, m.from), out);
      out.add(m.token.id);
      start = m.to;
      pos = m.to;
    }
    if (addSpecialTokens) {
      out.addAll(suffixIds);
    }
    return out.toArray();
  }

  private record Match(AddedToken token, int from, int to) {}

  /** The leftmost (then longest) added token at or after {@code from}, with its strip span. */
  private Match nextAdded(String text, int from, int[] literals) {
    if (added.isEmpty()) {
      return null;
    }
    int r = 0; // the first literal range that does not end at or before i
    for (int i = from; i < text.length(); i++) {
      while (r < literals.length && literals[r + 1] <= i) {
        r += 2;
      }
      if (r < literals.length && literals[r] <= i) {
        i = literals[r + 1] - 1; // inside a literal range: resume after it
        continue;
      }
      int nextLiteral = r < literals.length ? literals[r] : Integer.MAX_VALUE;
      for (AddedToken t : added) { // longest first
        if (text.startsWith(t.content, i)) {
          int end = i + t.content.length();
          if (end > nextLiteral) {
            continue; // would take characters of literal text
          }
          if (t.singleWord && !(isWordBoundary(text, i - 1) && isWordBoundary(text, end))) {
            continue;
          }
          int s = i;
          int e = end;
          if (t.lstrip) {
            while (s > from && Character.isWhitespace(text.charAt(s - 1))) {
              s--;
            }
          }
          if (t.rstrip) {
            while (e < text.length() && Character.isWhitespace(text.charAt(e))) {
              e++;
            }
          }
          return new Match(t, s, e);
        }
      }
    }
    return null;
  }

  private static boolean isWordBoundary(String text, int i) {
    if (i < 0 || i >= text.length()) {
      return true;
    }
    char c = text.charAt(i);
    return !(Character.isLetterOrDigit(c) || c == '_');
  }

  private void encodeSegment(String segment, IntList out) {
    if (segment.isEmpty()) {
      return;
    }
    String normalized = normalizer.apply(segment);
    List<String> pieces = new ArrayList<>(List.of(normalized));
    for (PreTokenizer p : preTokenizers) {
      pieces = p.apply(pieces);
    }
    for (String piece : pieces) {
      if (!piece.isEmpty()) {
        // Long pieces are rare and not worth keeping (a hostile 1 MiB word would pin 1 MiB).
        boolean cacheable = piece.length() <= MAX_CACHED_PIECE && cache.size() < 100_000;
        out.addAll(cacheable ? cache.computeIfAbsent(piece, this::bpe) : bpe(piece));
      }
    }
  }

  /** BPE over one pre-token: merge the lowest-rank adjacent pair, leftmost first, until none. */
  private int[] bpe(String piece) {
    if (ignoreMerges) {
      Integer whole = vocab.get(piece);
      if (whole != null) {
        return new int[] {whole};
      }
    }
    IntList symbols = new IntList();
    for (int i = 0; i < piece.length(); ) {
      int cp = piece.codePointAt(i);
      String ch = new String(Character.toChars(cp));
      i += Character.charCount(cp);
      Integer id = vocab.get(ch);
      if (id != null) {
        symbols.add(id);
      } else if (byteFallback) {
        for (byte by : ch.getBytes(StandardCharsets.UTF_8)) {
          Integer bid = vocab.get(String.format("<0x%02X>", by & 0xFF));
          if (bid != null) {
            symbols.add(bid);
          } else if (unkId != null) {
            symbols.add(unkId);
          }
        }
      } else if (unkId != null) {
        symbols.add(unkId);
      }
    }
    return merge(symbols.toArray());
  }

  /**
   * Applies the merges to {@code s} in the order the tokenizers library does (the lowest-rank
   * adjacent pair, leftmost first, until none is left) in O(n log n): a heap of candidate pairs
   * keyed by (rank, position) over a linked list of symbols, where an entry whose pair changed
   * since it was pushed is skipped when popped. Rescanning every pair after each merge, as the
   * definition reads, is O(n²): hours for a 1 MiB word.
   */
  private int[] merge(int[] s) {
    int n = s.length;
    if (n < 2) {
      return s;
    }
    int[] next = new int[n]; // index of the next live symbol, or -1
    int[] prev = new int[n]; // index of the previous live symbol, or -1
    for (int i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // (rank << 32 | position): rank first, then the leftmost position (positions keep their
    // order as symbols merge, so the smallest live index is the leftmost pair).
    java.util.PriorityQueue<Long> heap = new java.util.PriorityQueue<>();
    for (int i = 0; i + 1 < n; i++) {
      push(heap, s, i, i + 1);
    }
    while (!heap.isEmpty()) {
      long e = heap.poll();
      int i = (int) e;
      int rank = (int) (e >>> 32);
      int j = s[i] < 0 ? -1 : next[i];
      if (j < 0) {
        continue; // merged away, or no right neighbour any more
      }
      int[] m = merges.get(pair(s[i], s[j]));
      if (m == null || m[0] != rank) {
        continue; // the pair at i changed since this entry was pushed
      }
      s[i] = m[1];
      s[j] = -1;
      next[i] = next[j];
      if (next[j] >= 0) {
        prev[next[j]] = i;
      }
      if (prev[i] >= 0) {
        push(heap, s, prev[i], i);
      }
      if (next[i] >= 0) {
        push(heap, s, i, next[i]);
      }
    }
    IntList out = new IntList();
    for (int i = 0; i >= 0; i = next[i]) {
      out.add(s[i]);
    }
    return out.toArray();
  }

  private void push(java.util.PriorityQueue<Long> heap, int[] s, int left, int right) {
    int[] m = merges.get(pair(s[left], s[right]));
    if (m != null) {
      heap.add(((long) m[0] << 32) | left);
    }
  }

  private static long pair(int left, int right) {
    return ((long) left << 32) | (right & 0xFFFFFFFFL);
  }

  // ---------------------------------------------------------------------------------------------
  // Reading tokenizer.json

  private static final class Builder {
    String sha256;
    String[] tokens;
    byte[][] tokenBytes;
    boolean[] special;
    Map<String, Integer> vocab = new HashMap<>();
    Map<Long, int[]> merges = new HashMap<>();
    List<AddedToken> added = new ArrayList<>();
    UnaryOperator<String> normalizer = UnaryOperator.identity();
    List<PreTokenizer> preTokenizers = new ArrayList<>();
    int[] prefixIds = new int[0];
    int[] suffixIds = new int[0];
    boolean ignoreMerges;
    boolean byteFallback;
    Integer unkId;
    boolean byteLevelSpelling;
    boolean sentencePieceSpelling;
    final List<String> unsupported = new ArrayList<>();

    void read(JsonObject root, String source) {
      JsonObject model = object(root, "model");
      if (model == null) {
        throw new IllegalArgumentException(source + ": missing model");
      }
      String type = string(model, "type");
      JsonElement v = model.get("vocab");
      if (v != null && v.isJsonObject()) {
        for (Map.Entry<String, JsonElement> e : v.getAsJsonObject().entrySet()) {
          vocab.put(e.getKey(), e.getValue().getAsInt());
        }
      } else if (v != null && v.isJsonArray()) { // Unigram: [[piece, score], ...]
        JsonArray a = v.getAsJsonArray();
        for (int i = 0; i < a.size(); i++) {
          JsonElement entry = a.get(i);
          vocab.put(
              entry.isJsonArray()
                  ? entry.getAsJsonArray().get(0).getAsString()
                  : entry.getAsString(),
              i);
        }
      }
      if (type != null && !type.equals("BPE")) {
        unsupported.add("model type " + type + " (expected: BPE)");
      } else if (type == null && !model.has("merges")) {
        unsupported.add("model without merges (expected: BPE)");
      }
      Map<Integer, String> byId = new HashMap<>();
      vocab.forEach((tok, id) -> byId.put(id, tok));
      Set<Integer> specialIds = new HashSet<>();
      JsonElement at = root.get("added_tokens");
      if (at != null && at.isJsonArray()) {
        for (JsonElement e : at.getAsJsonArray()) {
          JsonObject t = e.getAsJsonObject();
          AddedToken token =
              new AddedToken(
                  t.get("id").getAsInt(),
                  t.get("content").getAsString(),
                  bool(t, "special"),
                  bool(t, "lstrip"),
                  bool(t, "rstrip"),
                  bool(t, "single_word"));
          added.add(token);
          byId.put(token.id, token.content);
          if (token.special) {
            specialIds.add(token.id);
          }
        }
      }
      added.sort((a, b) -> Integer.compare(b.content.length(), a.content.length()));
      int size = 0;
      for (int id : byId.keySet()) {
        if (id < 0) {
          throw new IllegalArgumentException(source + ": negative token id " + id);
        }
        size = Math.max(size, id + 1);
      }
      tokens = new String[size];
      byId.forEach((id, tok) -> tokens[id] = tok);
      special = new boolean[size];
      specialIds.forEach(id -> special[id] = true);

      readMerges(model, source);
      ignoreMerges = bool(model, "ignore_merges");
      byteFallback = bool(model, "byte_fallback");
      String unk = string(model, "unk_token");
      unkId = unk == null ? null : vocab.get(unk);
      if (string(model, "continuing_subword_prefix") != null
          || string(model, "end_of_word_suffix") != null) {
        unsupported.add("BPE continuing_subword_prefix/end_of_word_suffix");
      }
      if (model.has("dropout") && !model.get("dropout").isJsonNull()) {
        unsupported.add("BPE dropout");
      }

      normalizer = normalizer(root.get("normalizer"));
      JsonElement pre = root.get("pre_tokenizer");
      if (pre != null && !pre.isJsonNull()) {
        preTokenizer(pre.getAsJsonObject(), preTokenizers);
      }
      postProcessor(root.get("post_processor"));

      String decoder = String.valueOf(root.get("decoder"));
      String preText = String.valueOf(pre);
      byteLevelSpelling = decoder.contains("\"ByteLevel\"") || preText.contains("\"ByteLevel\"");
      sentencePieceSpelling =
          !byteLevelSpelling
              && (byteFallback
                  || decoder.contains("ByteFallback")
                  || decoder.contains("\u2581")
                  || preText.contains("Metaspace"));
      tokenBytes = new byte[size][];
      for (int i = 0; i < size; i++) {
        tokenBytes[i] = bytesOf(tokens[i]);
      }
    }

    private void readMerges(JsonObject model, String source) {
      JsonElement m = model.get("merges");
      if (m == null || !m.isJsonArray()) {
        return;
      }
      JsonArray a = m.getAsJsonArray();
      for (int rank = 0; rank < a.size(); rank++) {
        JsonElement e = a.get(rank);
        String left;
        String right;
        if (e.isJsonArray()) {
          left = e.getAsJsonArray().get(0).getAsString();
          right = e.getAsJsonArray().get(1).getAsString();
        } else {
          String s = e.getAsString();
          int sp = s.indexOf(' ', 1);
          if (sp < 0) {
            throw new IllegalArgumentException(
                source + ": merge " + rank + " \"" + s + "\" (expected: \"left right\")");
          }
          left = s.substring(0, sp);
          right = s.substring(sp + 1);
        }
        Integer l = vocab.get(left);
        Integer r = vocab.get(right);
        Integer joined = vocab.get(left + right);
        if (l == null || r == null || joined == null) {
          throw new IllegalArgumentException(
              source + ": merge " + rank + " (" + left + ", " + right + ") is not in the vocab");
        }
        merges.putIfAbsent(pair(l, r), new int[] {rank, joined});
      }
    }

    private UnaryOperator<String> normalizer(JsonElement e) {
      if (e == null || e.isJsonNull()) {
        return UnaryOperator.identity();
      }
      JsonObject o = e.getAsJsonObject();
      String type = string(o, "type");
      switch (String.valueOf(type)) {
        case "NFC":
          return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
        case "NFKC":
          return s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
        case "NFD":
          return s -> Normalizer.normalize(s, Normalizer.Form.NFD);
        case "NFKD":
          return s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
        case "Lowercase":
          return s -> s.toLowerCase(java.util.Locale.ROOT);
        case "Sequence":
          {
            List<UnaryOperator<String>> steps = new ArrayList<>();
            for (JsonElement n : o.getAsJsonArray("normalizers")) {
              steps.add(normalizer(n));
            }
            return s -> {
              for (UnaryOperator<String> step : steps) {
                s = step.apply(s);
              }
              return s;
            };
          }
        default:
          unsupported.add("normalizer " + type);
          return UnaryOperator.identity();
      }
    }

    private void preTokenizer(JsonObject o, List<PreTokenizer> out) {
      String type = String.valueOf(string(o, "type"));
      switch (type) {
        case "Sequence":
          for (JsonElement p : o.getAsJsonArray("pretokenizers")) {
            preTokenizer(p.getAsJsonObject(), out);
          }
          return;
        case "ByteLevel":
          {
            boolean addPrefixSpace = bool(o, "add_prefix_space");
            boolean useRegex = !o.has("use_regex") || bool(o, "use_regex");
            out.add(
                pieces -> {
                  List<String> result = new ArrayList<>();
                  for (String piece : pieces) {
                    String p = addPrefixSpace && !piece.startsWith(" ") ? " " + piece : piece;
                    List<String> parts =
                        useRegex ? split(p, GPT2_SPLIT, "Isolated", false) : List.of(p);
                    for (String part : parts) {
                      result.add(byteLevel(part));
                    }
                  }
                  return result;
                });
            return;
          }
        case "Split":
          {
            JsonObject pattern = object(o, "pattern");
            Pattern regex;
            if (pattern != null && pattern.has("Regex")) {
              String text = pattern.get("Regex").getAsString();
              try {
                regex = Pattern.compile(text, Pattern.UNICODE_CHARACTER_CLASS);
              } catch (java.util.regex.PatternSyntaxException e) {
                throw new IllegalArgumentException(
                    "pre_tokenizer Split pattern.Regex: " + e.getDescription() + " in " + text, e);
              }
            } else if (pattern != null && pattern.has("String")) {
              regex = Pattern.compile(Pattern.quote(pattern.get("String").getAsString()));
            } else {
              unsupported.add("Split pre-tokenizer without pattern");
              return;
            }
            String behavior = String.valueOf(string(o, "behavior"));
            boolean invert = bool(o, "invert");
            if (!Set.of("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext")
                .contains(behavior)) {
              unsupported.add("Split behavior " + behavior);
              return;
            }
            out.add(
                pieces -> {
                  List<String> result = new ArrayList<>();
                  for (String piece : pieces) {
                    result.addAll(split(piece, regex, behavior, invert));
                  }
                  return result;
                });
            return;
          }
        case "Digits":
          {
            Pattern digits = Pattern.compile(bool(o, "individual_digits") ? "\\p{Nd}" : "\\p{Nd}+");
            out.add(
                pieces -> {
                  List<String> result = new ArrayList<>();
                  for (String piece : pieces) {
                    result.addAll(split(piece, digits, "Isolated", false));
                  }
                  return result;
                });
            return;
          }
        default:
          unsupported.add("pre_tokenizer " + type);
      }
    }

    private void postProcessor(JsonElement e) {
      if (e == null || e.isJsonNull()) {
        return;
      }
      JsonObject o = e.getAsJsonObject();
      String type = String.valueOf(string(o, "type"));
      switch (type) {
        case "ByteLevel":
          return; // offsets only
        case "Sequence":
          for (JsonElement p : o.getAsJsonArray("processors")) {
            postProcessor(p);
          }
          return;
        case "TemplateProcessing":
          {
            JsonObject specials = object(o, "special_tokens");
            IntList before = new IntList();
            IntList after = new IntList();
            boolean seenSequence = false;
            for (JsonElement item : o.getAsJsonArray("single")) {
              JsonObject it = item.getAsJsonObject();
              if (it.has("Sequence")) {
                seenSequence = true;
              } else if (it.has("SpecialToken")) {
                String name = it.getAsJsonObject("SpecialToken").get("id").getAsString();
                JsonObject st = specials == null ? null : object(specials, name);
                if (st == null) {
                  unsupported.add("TemplateProcessing token " + name + " without ids");
                  continue;
                }
                for (JsonElement id : st.getAsJsonArray("ids")) {
                  (seenSequence ? after : before).add(id.getAsInt());
                }
              }
            }
            prefixIds = concat(prefixIds, before.toArray());
            suffixIds = concat(suffixIds, after.toArray());
            return;
          }
        default:
          unsupported.add("post_processor " + type);
      }
    }

    private byte[] bytesOf(String token) {
      if (token == null) {
        return new byte[0];
      }
      if (byteLevelSpelling) {
        byte[] b = fromByteLevel(token);
        return b != null ? b : token.getBytes(StandardCharsets.UTF_8);
      }
      if (sentencePieceSpelling) {
        if (token.length() == 6 && token.startsWith("<0x") && token.endsWith(">")) {
          try {
            return new byte[] {(byte) Integer.parseInt(token.substring(3, 5), 16)};
          } catch (NumberFormatException notAByte) {
            // an ordinary token that looks similar
          }
        }
        return token.replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
      }
      return token.getBytes(StandardCharsets.UTF_8);
    }
  }

  /** Splits {@code s} around the matches of {@code regex} with a tokenizers split behavior. */
  static List<String> split(String s, Pattern regex, String behavior, boolean invert) {
    // Spans of s, each flagged as a match (delimiter) or not.
    List<int[]> spans = new ArrayList<>();
    Matcher m = regex.matcher(s);
    int last = 0;
    while (m.find()) {
      if (m.end() == m.start()) {
        continue;
      }
      if (m.start() > last) {
        spans.add(new int[] {last, m.start(), invert ? 1 : 0});
      }
      spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
      last = m.end();
    }
    if (last < s.length()) {
      spans.add(new int[] {last, s.length(), invert ? 1 : 0});
    }
    List<String> out = new ArrayList<>();
    switch (behavior) {
      case "Removed":
        for (int[] sp : spans) {
          if (sp[2] == 0) {
            out.add(s.substring(sp[0], sp[1]));
          }
        }
        break;
      case "MergedWithPrevious":
        {
          int start = 0;
          for (int[] sp : spans) {
            if (sp[2] == 1) {
              out.add(s.substring(start, sp[1]));
              start = sp[1];
            }
          }
          if (start < s.length()) {
            out.add(s.substring(start));
          }
          break;
        }
      case "MergedWithNext":
        {
          int start = 0;
          for (int[] sp : spans) {
            if (sp[2] == 1 && sp[0] > start) {
              out.add(s.substring(start, sp[0]));
              start = sp[0];
            }
          }
          if (start < s.length()) {
            out.add(s.substring(start));
          }
          break;
        }
      default: // Isolated
        for (int[] sp : spans) {
          out.add(s.substring(sp[0], sp[1]));
        }
    }
    return out;
  }

  /** The byte-level spelling of {@code s}'s UTF-8 bytes. */
  static String byteLevel(String s) {
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    StringBuilder sb = new StringBuilder(bytes.length);
    for (byte b : bytes) {
      sb.append(BYTE_TO_CHAR[b & 0xFF]);
    }
    return sb.toString();
  }

  /** The bytes of a byte-level token, or null if it has a character outside the alphabet. */
  static byte[] fromByteLevel(String token) {
    byte[] out = new byte[token.length()];
    for (int i = 0; i < token.length(); i++) {
      char c = token.charAt(i);
      int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
      if (b < 0) {
        return null;
      }
      out[i] = (byte) b;
    }
    return out;
  }

  private static int[] concat(int[] a, int[] b) {
    int[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static JsonObject object(JsonObject o, String name) {
    JsonElement e = o.get(name);
    return e != null && e.isJsonObject() ? e.getAsJsonObject() : null;
  }

  private static String string(JsonObject o, String name) {
    JsonElement e = o.get(name);
    return e != null && e.isJsonPrimitive() ? e.getAsString() : null;
  }

  private static boolean bool(JsonObject o, String name) {
    JsonElement e = o.get(name);
    return e != null && e.isJsonPrimitive() && e.getAsBoolean();
  }

  /** A growable int array. */
  static final class IntList {
    private int[] a = new int[16];
    private int n;

    void add(int v) {
      if (n == a.length) {
        a = Arrays.copyOf(a, n * 2);
      }
      a[n++] = v;
    }

    void addAll(int[] vs) {
      for (int v : vs) {
        add(v);
      }
    }

    int size() {
      return n;
    }

    int get(int i) {
      return a[i];
    }

    int[] toArray() {
      return Arrays.copyOf(a, n);
    }
  }
}
