package io.draftmesh.cli;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** {@code draftmesh gen-checkpoint}: a random-weight Hugging Face checkpoint of a preset shape. */
final class GenCheckpointCommand {
  static final String USAGE =
      """
      usage: draftmesh gen-checkpoint DIR --preset tiny-llama|tiny-qwen2|tiny-gqa|llama-110m
                                      [--seed S] [--dtype f32|f16|bf16] [--max-shard-mb N] [--force]
        Writes config.json, safetensors and tokenizer.json with random weights (for tests and
        benchmarks; the text they generate is noise).""";

  private GenCheckpointCommand() {}

  static int run(String[] args, PrintStream out) throws IOException {
    Args a = Args.parse(args, Set.of("preset", "seed", "dtype", "max-shard-mb"), Set.of("force"));
    if (a.positional().size() != 1) {
      throw new UsageException(
          "DIR: " + a.positional().size() + " given (expected: one directory)");
    }
    Path dir = Path.of(a.positional().get(0));
    ModelConfig config;
    try {
      config =
          RandomCheckpoint.preset(
              a.require("preset", "tiny-llama, tiny-qwen2, tiny-gqa or llama-110m"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--preset: " + e.getMessage());
    }
    DType dtype;
    try {
      dtype = DType.parse(a.get("dtype", "f32"));
    } catch (IllegalArgumentException e) {
      throw new UsageException("--dtype: " + e.getMessage());
    }
    long seed = a.longValue("seed", 1L);
    long maxShardBytes = (long) a.intValue("max-shard-mb", 0, 0, 1 << 20) << 20;
    if (Files.exists(dir.resolve("config.json")) && !a.has("force")) {
      throw new UsageException(
          dir + ": already holds a checkpoint (expected: a new directory, or --force)");
    }
    RandomCheckpoint.write(dir, config, seed, dtype, maxShardBytes);
    out.println(
        "wrote "
            + config.architecture()
            + " ("
            + config.numParameters()
            + " parameters, "
            + dtype
            + ") to "
            + dir);
    return 0;
  }

  /**
   * Writes a checkpoint into {@code dir} unless one is there, via a sibling temp dir and a rename.
   */
  static boolean ensure(Path dir, ModelConfig config, long seed) throws IOException {
    if (Files.isRegularFile(dir.resolve("config.json"))) {
      return false;
    }
    Files.createDirectories(dir.getParent());
    Path tmp = Files.createTempDirectory(dir.getParent(), dir.getFileName() + ".tmp");
    RandomCheckpoint.write(tmp, config, seed, DType.F32, 0);
    try {
      Files.move(tmp, dir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      if (!Files.isRegularFile(dir.resolve("config.json"))) {
        throw e;
      }
      // Another process won the race; its checkpoint is as good as ours.
      deleteTree(tmp);
    }
    return true;
  }

  private static void deleteTree(Path p) throws IOException {
    try (var walk = Files.walk(p)) {
      for (Path q : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(q);
      }
    }
  }
}
