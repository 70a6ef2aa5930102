package io.draftmesh.assembly;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * Which checkpoints a local mesh serves: the trained zoo pair ({@code models/target} and {@code
 * models/draft}) when it is there, else a random-weight stand-in generated into the bench cache
 * ({@code tiny-gqa} as the target, {@code tiny} as the draft: same vocabulary, so the same
 * tokenizer). Explicit directories always win.
 */
public final class MeshModels {
  /** Where the pair came from. */
  public enum Source {
    /** Given on the command line. */
    FLAGS,
    /** The trained zoo models under {@code models/}. */
    ZOO,
    /** Random-weight checkpoints (the text they generate is noise). */
    RANDOM
  }

  /** A target and a draft that share a tokenizer. */
  public record Pair(Path target, Path draft, Source source) {}

  private MeshModels() {}

  /**
   * The pair to serve: {@code target}/{@code draft} when given (a missing one defaults like the
   * other), else the zoo's, else random checkpoints under {@code cacheDir} ({@code forceRandom}
   * skips the zoo).
   */
  public static Pair resolve(
      Path target, Path draft, boolean forceRandom, Path cacheDir, PrintStream progress) {
    Path zooTarget = forceRandom ? null : zooModel("target");
    Path zooDraft = forceRandom ? null : zooModel("draft");
    if (target != null || draft != null) {
      Path t = target != null ? target : zooTarget;
      Path d = draft != null ? draft : zooDraft;
      if (t == null || d == null) {
        throw new IllegalArgumentException(
            (t == null ? "--target-model" : "--draft-model")
                + ": missing and no zoo model to default to (expected: a checkpoint directory)");
      }
      return new Pair(requireCheckpoint(t), requireCheckpoint(d), Source.FLAGS);
    }
    if (zooTarget != null && zooDraft != null) {
      return new Pair(zooTarget, zooDraft, Source.ZOO);
    }
    Path dir = cacheDir == null ? RandomModels.defaultCacheDir() : cacheDir;
    progress.printf(
        "no trained zoo models in models/target and models/draft: using random checkpoints in %s"
            + " (the text they generate is noise)%n",
        dir);
    return new Pair(
        RandomModels.ensure(dir, RandomModels.tinyGqa()),
        RandomModels.ensure(dir, RandomModels.tiny()),
        Source.RANDOM);
  }

  /**
   * {@code models/NAME} of the nearest enclosing directory (the working directory or a parent) that
   * holds the {@code draftmesh} launcher, or of the working directory, when it holds a complete
   * checkpoint; else null.
   */
  public static Path zooModel(String name) {
    Path cwd = Path.of("").toAbsolutePath();
    for (Path p = cwd; p != null; p = p.getParent()) {
      if (Files.isRegularFile(p.resolve("draftmesh")) || p.equals(cwd)) {
        Path m = p.resolve("models").resolve(name);
        if (isCheckpoint(m)) {
          return m;
        }
      }
    }
    return null;
  }

  /** Whether {@code dir} holds config.json, tokenizer.json and safetensors weights. */
  public static boolean isCheckpoint(Path dir) {
    if (!Files.isRegularFile(dir.resolve("config.json"))
        || !Files.isRegularFile(dir.resolve("tokenizer.json"))) {
      return false;
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.anyMatch(f -> f.getFileName().toString().endsWith(".safetensors"));
    } catch (java.io.IOException e) {
      return false;
    }
  }

  private static Path requireCheckpoint(Path dir) {
    if (!isCheckpoint(dir)) {
      throw new IllegalArgumentException(
          dir + ": not a checkpoint (expected: config.json, tokenizer.json and safetensors)");
    }
    return dir;
  }
}
