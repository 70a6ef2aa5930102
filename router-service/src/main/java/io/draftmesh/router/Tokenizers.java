package io.draftmesh.router;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tokenizer.json files the router knows, by SHA-256: a worker reports the hash of its tokenizer
 * in {@code ModelInfo.tokenizer_hash}, and the router tokenizes and detokenizes with the file that
 * has the same hash. Files are hashed at start and parsed on first use.
 */
final class Tokenizers {
  private static final Logger log = LoggerFactory.getLogger(Tokenizers.class);
  private static final int MAX_DEPTH = 4;

  private final Map<String, Path> files; // sha256 -> file
  private final Map<String, BpeTokenizer> loaded = new ConcurrentHashMap<>();

  private Tokenizers(Map<String, Path> files) {
    this.files = Map.copyOf(files);
  }

  static Tokenizers none() {
    return new Tokenizers(Map.of());
  }

  /**
   * Indexes {@code paths}: each a tokenizer.json file, or a directory searched (4 levels deep) for
   * files named tokenizer.json, such as a model zoo.
   */
  static Tokenizers scan(List<Path> paths) {
    Map<String, Path> files = new LinkedHashMap<>();
    for (Path p : paths) {
      List<Path> found = new ArrayList<>();
      if (Files.isDirectory(p)) {
        try (Stream<Path> s = Files.walk(p, MAX_DEPTH)) {
          s.filter(f -> f.getFileName().toString().equals("tokenizer.json"))
              .filter(Files::isRegularFile)
              .sorted()
              .forEach(found::add);
        } catch (IOException e) {
          throw new UncheckedIOException("cannot list " + p + ": " + e.getMessage(), e);
        }
      } else if (Files.isRegularFile(p)) {
        found.add(p);
      } else {
        throw new IllegalArgumentException(p + " (expected: a tokenizer.json or a directory)");
      }
      for (Path f : found) {
        try {
          files.putIfAbsent(BpeTokenizer.sha256(Files.readAllBytes(f)), f);
        } catch (IOException e) {
          throw new UncheckedIOException("cannot read " + f + ": " + e.getMessage(), e);
        }
      }
    }
    log.info("{} tokenizer(s) indexed", files.size());
    return new Tokenizers(files);
  }

  /** The tokenizer whose file hashes to {@code sha256}, or null if none is known. */
  BpeTokenizer forHash(String sha256) {
    Path file = files.get(sha256);
    if (file == null) {
      return null;
    }
    return loaded.computeIfAbsent(
        sha256,
        h -> {
          try {
            return BpeTokenizer.load(file);
          } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
          }
        });
  }

  int size() {
    return files.size();
  }
}
