package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * A split of the corpus as one token stream: {@code <|endoftext|> doc1 <|endoftext|> doc2 ...}, the
 * separator before every document (so a document always starts after an end-of-text token, the
 * model's bos). Cached on disk next to the corpus, keyed by the tokenizer's SHA-256.
 *
 * <p>Byte accounting for bits/byte: a text token counts its UTF-8 bytes, a special token counts 1
 * byte (the document separator). {@link #bytes()} is therefore the split's UTF-8 size plus one byte
 * per document.
 */
public final class TokenData {
  private static final int MAGIC = 0x444d544b; // "DMTK"

  private final int[] tokens;
  private final long bytes;

  TokenData(int[] tokens, long bytes) {
    this.tokens = tokens;
    this.bytes = bytes;
  }

  /**
   * Tokenizes {@code docs} (or reads the cache {@code cacheFile} if it was made by this tokenizer).
   */
  public static TokenData load(List<Corpus.Doc> docs, TextTokenizer tokenizer, Path cacheFile)
      throws IOException {
    if (cacheFile != null && Files.isRegularFile(cacheFile)) {
      try (DataInputStream in =
          new DataInputStream(new java.io.BufferedInputStream(Files.newInputStream(cacheFile)))) {
        if (in.readInt() == MAGIC && in.readUTF().equals(tokenizer.sha256())) {
          long bytes = in.readLong();
          int n = in.readInt();
          int[] tokens = new int[n];
          for (int i = 0; i < n; i++) {
            tokens[i] = in.readShort() & 0xFFFF;
          }
          return new TokenData(tokens, bytes);
        }
      }
    }
    TokenData data = tokenize(docs, tokenizer);
    if (cacheFile != null) {
      Path tmp = cacheFile.resolveSibling(cacheFile.getFileName() + ".tmp");
      try (DataOutputStream out =
          new DataOutputStream(new java.io.BufferedOutputStream(Files.newOutputStream(tmp)))) {
        out.writeInt(MAGIC);
        out.writeUTF(tokenizer.sha256());
        out.writeLong(data.bytes);
        out.writeInt(data.tokens.length);
        for (int t : data.tokens) {
          out.writeShort(t);
        }
      }
      Files.move(tmp, cacheFile, StandardCopyOption.REPLACE_EXISTING);
    }
    return data;
  }

  static TokenData tokenize(List<Corpus.Doc> docs, TextTokenizer tokenizer) {
    if (tokenizer.vocabSize() > 65536) {
      throw new IllegalArgumentException(
          "vocab size " + tokenizer.vocabSize() + " (expected: <= 65536 for the token cache)");
    }
    IntBuffer out = new IntBuffer();
    long bytes = 0;
    for (Corpus.Doc d : docs) {
      out.add(ZooTokenizer.END_OF_TEXT_ID);
      out.addAll(tokenizer.encode(d.text()));
      bytes += 1 + d.text().getBytes(StandardCharsets.UTF_8).length;
    }
    return new TokenData(out.toArray(), bytes);
  }

  /** The token stream (not copied: do not modify). */
  public int[] tokens() {
    return tokens;
  }

  public int size() {
    return tokens.length;
  }

  /** UTF-8 bytes the stream stands for, counting each special token as one byte. */
  public long bytes() {
    return bytes;
  }

  /** Bytes per token id for bits/byte: UTF-8 length of text tokens, 1 for special tokens. */
  public static int[] byteLengths(TextTokenizer tokenizer) {
    int[] lengths = new int[tokenizer.vocabSize()];
    for (int id = 0; id < lengths.length; id++) {
      lengths[id] = tokenizer.isSpecial(id) ? 1 : tokenizer.tokenBytes(id).length;
    }
    return lengths;
  }

  /** A growable int array. */
  static final class IntBuffer {
    private int[] values = new int[1 << 16];
    private int size;

    void add(int v) {
      if (size == values.length) {
        values = java.util.Arrays.copyOf(values, size * 2);
      }
      values[size++] = v;
    }

    void addAll(int[] vs) {
      for (int v : vs) {
        add(v);
      }
    }

    int size() {
      return size;
    }

    int[] toArray() {
      return java.util.Arrays.copyOf(values, size);
    }
  }
}
