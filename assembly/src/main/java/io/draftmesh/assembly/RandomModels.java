package io.draftmesh.assembly;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The random-weight checkpoints the benches and a local mesh without trained models run: generated
 * on first use into a cache directory (never committed) and reused while their stamp (preset, seed,
 * dtype) matches. A checkpoint appears atomically: it is written to a temporary sibling and moved
 * into place.
 */
public final class RandomModels {
  static final String STAMP_FILE = "draftmesh-bench.stamp";
  private static final long SEED = 20261122L;

  /** A model the bench measures: a short name for tables and JSON, and its preset. */
  public record Spec(String name, String label, ModelConfig config) {}

  public static Spec tiny() {
    return new Spec("tiny", "tiny", RandomCheckpoint.tinyLlama());
  }

  /** Twice tiny's width with grouped-query attention: the random stand-in for a target. */
  public static Spec tinyGqa() {
    return new Spec("tiny_gqa", "tiny-gqa", RandomCheckpoint.tinyGqa());
  }

  public static Spec llama110m() {
    return new Spec("llama_110m", "110M", RandomCheckpoint.llama110M());
  }

  private RandomModels() {}

  /** {@code ${XDG_CACHE_HOME:-~/.cache}/draftmesh/bench}. */
  public static Path defaultCacheDir() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base =
        xdg != null && !xdg.isBlank()
            ? Path.of(xdg)
            : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("draftmesh").resolve("bench");
  }

  /** The checkpoint directory for {@code spec} under {@code cacheDir}, generating it if needed. */
  public static Path ensure(Path cacheDir, Spec spec) {
    Path dir = cacheDir.resolve(spec.name().replace('_', '-'));
    String stamp = stamp(spec.config());
    try {
      if (stamp.equals(readStamp(dir))) {
        return dir;
      }
      Files.createDirectories(cacheDir);
      Path tmp = cacheDir.resolve(dir.getFileName() + ".tmp-" + ProcessHandle.current().pid());
      deleteRecursively(tmp);
      RandomCheckpoint.write(tmp, spec.config(), SEED, DType.F32, 0);
      Files.writeString(tmp.resolve(STAMP_FILE), stamp, StandardCharsets.UTF_8);
      deleteRecursively(dir); // a stale or partial checkpoint
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException raced) {
        deleteRecursively(tmp); // another bench generated it meanwhile
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("generating the " + spec.name() + " checkpoint in " + dir, e);
    }
  }

  private static String stamp(ModelConfig config) {
    return "seed=" + SEED + "\ndtype=" + DType.F32 + "\n" + config.toJson() + "\n";
  }

  private static String readStamp(Path dir) throws IOException {
    Path f = dir.resolve(STAMP_FILE);
    return Files.isRegularFile(f) ? Files.readString(f, StandardCharsets.UTF_8) : null;
  }

  private static void deleteRecursively(Path p) throws IOException {
    if (!Files.exists(p)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(p)) {
      for (Path q : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(q);
      }
    }
  }
}
