package io.draftmesh.engine.tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Trains a GPT-2-style byte-level BPE tokenizer.
 *
 * <p>Text is split with the GPT-2 regex (what HF's ByteLevel pre-tokenizer uses), each piece's
 * UTF-8 bytes become a word of byte tokens, and identical words are counted once with their
 * frequency. Merges are then learned greedily: the most frequent adjacent pair becomes a new token,
 * ties broken by the smaller (left id, right id), exactly as HF's trainer orders its heap. Pair
 * counts are updated incrementally for only the words that contain the merged pair, with a lazy
 * max-heap, so training costs about O(total merged occurrences · log) instead of a rescan per
 * merge.
 *
 * <p>Id layout of the result: special tokens first (ids 0..S-1, in the order given), then the 256
 * bytes in byte order (id S + b), then merged tokens in the order learned.
 */
public final class BpeTrainer {
  /** GPT-2's pre-tokenization regex, with Unicode {@code \s} like the Rust regex crate. */
  public static final Pattern GPT2_SPLIT =
      Pattern.compile(
          "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
          Pattern.UNICODE_CHARACTER_CLASS);

  private final int vocabSize;
  private final List<String> specialTokens;
  private int minFrequency = 2;
  private boolean padToVocabSize;

  /**
   * @param vocabSize target size including specials and the 256 byte tokens
   * @param specialTokens special tokens, given ids 0..S-1
   */
  public BpeTrainer(int vocabSize, List<String> specialTokens) {
    this.specialTokens = List.copyOf(specialTokens);
    if (vocabSize < 256 + this.specialTokens.size()) {
      throw new IllegalArgumentException(
          "vocabSize "
              + vocabSize
              + " (expected: >= 256 byte tokens + "
              + this.specialTokens.size()
              + " special tokens)");
    }
    if (this.specialTokens.stream().distinct().count() != this.specialTokens.size()) {
      throw new IllegalArgumentException("special tokens repeat: " + specialTokens);
    }
    this.vocabSize = vocabSize;
  }

  /** Pairs seen fewer times than this are never merged (default 2). */
  public BpeTrainer minFrequency(int minFrequency) {
    if (minFrequency < 1) {
      throw new IllegalArgumentException("minFrequency " + minFrequency + " (expected: >= 1)");
    }
    this.minFrequency = minFrequency;
    return this;
  }

  /**
   * When the corpus runs out of pairs before the vocab is full, fill the rest with valid but
   * synthetic merges (an existing token followed by a byte) so the vocab is exactly the requested
   * size. Off by default.
   */
  public BpeTrainer padToVocabSize(boolean pad) {
    this.padToVocabSize = pad;
    return this;
  }

  /** The trained vocabulary and merges. */
  public record Result(
      List<String> vocab, List<TokenizerJson.Merge> merges, List<String> specialTokens) {
    /** Writes this tokenizer as tokenizer.json; {@code bosToken} may be null. */
    public void write(Path tokenizerJson, String bosToken) throws IOException {
      TokenizerJson.write(tokenizerJson, vocab, merges, specialTokens, bosToken);
    }

    public int vocabSize() {
      return vocab.size();
    }
  }

  public Result train(String text) {
    return train(List.of(text));
  }

  /** Trains on {@code documents}; pieces never span two documents. */
  public Result train(Iterable<String> documents) {
    Map<String, long[]> wordCounts = new HashMap<>();
    for (String doc : documents) {
      Matcher m = GPT2_SPLIT.matcher(doc);
      while (m.find()) {
        wordCounts.computeIfAbsent(m.group(), k -> new long[1])[0]++;
      }
    }
    // Sort the distinct words so the word order (and thus nothing else) depends on hashing.
    List<String> distinct = new ArrayList<>(wordCounts.keySet());
    Collections.sort(distinct);

    int s = specialTokens.size();
    List<String> vocab = new ArrayList<>(vocabSize);
    Map<String, Integer> ids = new HashMap<>();
    for (String special : specialTokens) {
      ids.put(special, vocab.size());
      vocab.add(special);
    }
    for (int b = 0; b < 256; b++) {
      String token = String.valueOf(ByteLevel.toChar(b));
      if (ids.containsKey(token)) {
        throw new IllegalArgumentException(
            "special token " + token + " collides with a byte token");
      }
      ids.put(token, vocab.size());
      vocab.add(token);
    }

    Words words = new Words(distinct.size());
    for (String w : distinct) {
      byte[] bytes = w.getBytes(StandardCharsets.UTF_8);
      int[] symbols = new int[bytes.length];
      for (int i = 0; i < bytes.length; i++) {
        symbols[i] = s + (bytes[i] & 0xFF);
      }
      words.add(symbols, wordCounts.get(w)[0]);
    }

    List<TokenizerJson.Merge> merges = new ArrayList<>();
    words.countPairs();
    while (vocab.size() < vocabSize) {
      long pair = words.popBest(minFrequency);
      if (pair < 0) {
        break;
      }
      int left = (int) (pair >>> 32);
      int right = (int) pair;
      String joined = vocab.get(left) + vocab.get(right);
      Integer id = ids.get(joined);
      if (id == null) {
        id = vocab.size();
        ids.put(joined, id);
        vocab.add(joined);
      }
      merges.add(new TokenizerJson.Merge(vocab.get(left), vocab.get(right)));
      words.merge(left, right, id);
    }

    if (padToVocabSize) {
      outer:
      for (int left = s; left < vocab.size(); left++) {
        for (int b = 0; b < 256; b++) {
          if (vocab.size() >= vocabSize) {
            break outer;
          }
          String joined = vocab.get(left) + vocab.get(s + b);
          if (!ids.containsKey(joined)) {
            ids.put(joined, vocab.size());
            vocab.add(joined);
            merges.add(new TokenizerJson.Merge(vocab.get(left), vocab.get(s + b)));
          }
        }
      }
    }
    return new Result(List.copyOf(vocab), List.copyOf(merges), specialTokens);
  }

  /** Distinct words as symbol arrays with frequencies, plus incremental pair statistics. */
  private static final class Words {
    private int[][] symbols;
    private int[] lengths;
    private long[] freq;
    private int size;

    /** pair (left << 32 | right) to total count over all words. */
    private final Map<Long, Long> pairCounts = new HashMap<>();

    /** pair to the words that contained it when it was counted (may be stale, never missing). */
    private final Map<Long, IntList> where = new HashMap<>();

    /** Lazy max-heap: entries whose count no longer matches pairCounts are skipped. */
    private final PriorityQueue<long[]> heap =
        new PriorityQueue<>(
            (a, b) -> {
              if (a[0] != b[0]) {
                return Long.compare(b[0], a[0]); // higher count first
              }
              return Long.compare(a[1], b[1]); // then smaller (left, right)
            });

    Words(int capacity) {
      symbols = new int[capacity][];
      lengths = new int[capacity];
      freq = new long[capacity];
    }

    void add(int[] word, long count) {
      symbols[size] = word;
      lengths[size] = word.length;
      freq[size] = count;
      size++;
    }

    void countPairs() {
      for (int w = 0; w < size; w++) {
        int[] sym = symbols[w];
        for (int i = 0; i + 1 < lengths[w]; i++) {
          long p = key(sym[i], sym[i + 1]);
          pairCounts.merge(p, freq[w], Long::sum);
          where.computeIfAbsent(p, k -> new IntList()).addIfLast(w);
        }
      }
      for (Map.Entry<Long, Long> e : pairCounts.entrySet()) {
        heap.add(new long[] {e.getValue(), e.getKey()});
      }
    }

    /** The most frequent pair with count >= minFrequency, or -1. */
    long popBest(int minFrequency) {
      while (!heap.isEmpty()) {
        long[] top = heap.poll();
        Long current = pairCounts.get(top[1]);
        if (current == null || current != top[0]) {
          continue; // stale: a fresher entry was pushed when the count changed
        }
        if (current < minFrequency) {
          return -1;
        }
        return top[1];
      }
      return -1;
    }

    void merge(int left, int right, int newId) {
      long merged = key(left, right);
      IntList affected = where.remove(merged);
      Map<Long, Long> delta = new LinkedHashMap<>();
      if (affected != null) {
        for (int k = 0; k < affected.size; k++) {
          int w = affected.values[k];
          mergeWord(w, left, right, newId, delta);
        }
      }
      pairCounts.remove(merged);
      for (Map.Entry<Long, Long> e : delta.entrySet()) {
        long p = e.getKey();
        long d = e.getValue();
        if (d == 0 || p == merged) {
          continue;
        }
        long updated = pairCounts.getOrDefault(p, 0L) + d;
        if (updated <= 0) {
          pairCounts.remove(p);
        } else {
          pairCounts.put(p, updated);
          heap.add(new long[] {updated, p});
        }
      }
    }

    private void mergeWord(int w, int left, int right, int newId, Map<Long, Long> delta) {
      int[] sym = symbols[w];
      int n = lengths[w];
      boolean found = false;
      for (int i = 0; i + 1 < n; i++) {
        if (sym[i] == left && sym[i + 1] == right) {
          found = true;
          break;
        }
      }
      if (!found) {
        return; // stale index entry
      }
      long f = freq[w];
      for (int i = 0; i + 1 < n; i++) {
        delta.merge(key(sym[i], sym[i + 1]), -f, Long::sum);
      }
      int out = 0;
      for (int i = 0; i < n; ) {
        if (i + 1 < n && sym[i] == left && sym[i + 1] == right) {
          sym[out++] = newId;
          i += 2;
        } else {
          sym[out++] = sym[i++];
        }
      }
      lengths[w] = out;
      for (int i = 0; i + 1 < out; i++) {
        long p = key(sym[i], sym[i + 1]);
        delta.merge(p, f, Long::sum);
        if (sym[i] == newId || sym[i + 1] == newId) {
          where.computeIfAbsent(p, k -> new IntList()).addIfLast(w);
        }
      }
    }

    private static long key(int left, int right) {
      return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }
  }

  /** A growable int list that skips a value equal to its last one (a word adds itself once). */
  private static final class IntList {
    int[] values = new int[4];
    int size;

    void addIfLast(int v) {
      if (size > 0 && values[size - 1] == v) {
        return;
      }
      if (size == values.length) {
        values = java.util.Arrays.copyOf(values, size * 2);
      }
      values[size++] = v;
    }
  }
}
