package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.BpeTrainer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The zoo's shared tokenizer: a GPT-2-style byte-level BPE trained with the engine's {@link
 * BpeTrainer} on the corpus' train split. Lossless on any UTF-8 (all 256 bytes are tokens).
 *
 * <p>Special tokens take ids 0..3: {@link #END_OF_TEXT} separates documents and is the bos/eos of
 * the raw-text models; {@link #USER}, {@link #ASSISTANT} and {@link #END} frame the aligned model's
 * instruction template (see {@link Instructions}).
 */
public final class ZooTokenizer {
  public static final String END_OF_TEXT = "<|endoftext|>";
  public static final String USER = "<|user|>";
  public static final String ASSISTANT = "<|assistant|>";
  public static final String END = "<|end|>";
  public static final List<String> SPECIAL_TOKENS = List.of(END_OF_TEXT, USER, ASSISTANT, END);

  public static final int END_OF_TEXT_ID = 0;
  public static final int USER_ID = 1;
  public static final int ASSISTANT_ID = 2;
  public static final int END_ID = 3;

  public static final int DEFAULT_VOCAB_SIZE = 4096;

  private ZooTokenizer() {}

  /** {@code tokenizer-<vocab>.json} in the corpus directory. */
  public static Path file(Corpus corpus, int vocabSize) {
    return corpus.dir().resolve("tokenizer-" + vocabSize + ".json");
  }

  /**
   * Returns the corpus tokenizer of {@code vocabSize}, training and writing it first if it does not
   * exist yet. Training is deterministic: the same corpus gives the same file byte for byte.
   */
  public static Path ensure(Corpus corpus, int vocabSize) throws IOException {
    Path file = file(corpus, vocabSize);
    if (!Files.isRegularFile(file)) {
      train(corpus.train(), vocabSize, file);
    }
    return file;
  }

  /** Trains on {@code docs}' texts and writes tokenizer.json to {@code out}. */
  static BpeTrainer.Result train(List<Corpus.Doc> docs, int vocabSize, Path out)
      throws IOException {
    List<String> texts = new ArrayList<>(docs.size());
    for (Corpus.Doc d : docs) {
      texts.add(d.text());
    }
    // Padding only matters for tiny test corpora that run out of pairs before the vocab is full.
    BpeTrainer.Result result =
        new BpeTrainer(vocabSize, SPECIAL_TOKENS).padToVocabSize(true).train(texts);
    Path parent = out.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    result.write(out, END_OF_TEXT);
    return result;
  }
}
