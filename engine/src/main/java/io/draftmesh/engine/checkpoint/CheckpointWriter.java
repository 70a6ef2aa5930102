package io.draftmesh.engine.checkpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Writes a whole Hugging Face model directory that {@link Checkpoint#load} and transformers' {@code
 * from_pretrained} both read: config.json, generation_config.json, the weights as {@code
 * model.safetensors} or, when a maximum shard size is set and exceeded, as {@code
 * model-00001-of-0000N.safetensors} shards plus {@code model.safetensors.index.json}, and
 * optionally a copy of a tokenizer.json.
 *
 * <p>Before anything is written the tensors are checked against the config (same rules as {@link
 * Checkpoint#requireTensors()}); extra tensors are allowed. Weight files from an earlier save in
 * the same directory are removed so the loader cannot pick up a stale file.
 *
 * <pre>{@code
 * new CheckpointWriter(config).dtype(DType.BF16).maxShardBytes(200 << 20).write(dir, tensors);
 * }</pre>
 */
public final class CheckpointWriter {
  private static final Pattern OLD_WEIGHTS =
      Pattern.compile("model(-\\d{5}-of-\\d{5})?\\.safetensors(\\.index\\.json)?");

  private final ModelConfig config;
  private GenerationConfig generation;
  private DType dtype = DType.F32;
  private long maxShardBytes;
  private Path tokenizerJson;
  private final Map<String, String> metadata = new LinkedHashMap<>();

  public CheckpointWriter(ModelConfig config) {
    this.config = config;
    this.generation = GenerationConfig.defaults(config);
    metadata.put("format", "pt"); // transformers refuses safetensors without it
  }

  /** Writes {@code tensors} (insertion order kept) for {@code config} as F32, one file. */
  public static void write(Path dir, ModelConfig config, Map<String, TensorData> tensors)
      throws IOException {
    new CheckpointWriter(config).write(dir, tensors);
  }

  public CheckpointWriter generation(GenerationConfig generation) {
    this.generation = generation;
    return this;
  }

  /** Storage type of the weights (default F32); also written as config.json's torch_dtype. */
  public CheckpointWriter dtype(DType dtype) {
    this.dtype = dtype;
    return this;
  }

  /**
   * Largest shard in bytes of tensor data; 0 (default) writes one file. A tensor larger than the
   * limit gets a shard of its own; if everything fits in one shard, one file is written.
   */
  public CheckpointWriter maxShardBytes(long maxShardBytes) {
    if (maxShardBytes < 0) {
      throw new IllegalArgumentException("maxShardBytes " + maxShardBytes + " (expected: >= 0)");
    }
    this.maxShardBytes = maxShardBytes;
    return this;
  }

  /** Copies this tokenizer.json into the directory. */
  public CheckpointWriter tokenizer(Path tokenizerJson) {
    this.tokenizerJson = tokenizerJson;
    return this;
  }

  /** Adds a {@code __metadata__} entry to every weight file. */
  public CheckpointWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  /**
   * Writes the directory (created if needed).
   *
   * @param tensors name to data, written in iteration order (use a LinkedHashMap)
   * @throws CheckpointException if a tensor the config needs is missing or misshapen
   */
  public void write(Path dir, Map<String, TensorData> tensors) throws IOException {
    List<String> problems =
        Checkpoint.checkTensors(
            config,
            name -> {
              TensorData t = tensors.get(name);
              return t == null
                  ? null
                  : new Checkpoint.Found(
                      "tensors to write",
                      new TensorInfo(name, dtype.safetensorsName(), t.shape(), 0, 0));
            },
            "tensors to write");
    if (!problems.isEmpty()) {
      throw new CheckpointException(Checkpoint.summarize(problems));
    }
    Files.createDirectories(dir);
    removeOldWeights(dir);

    List<Map<String, TensorData>> shards = partition(tensors);
    if (shards.size() == 1) {
      writeShard(dir.resolve(Checkpoint.SINGLE_FILE), shards.get(0));
    } else {
      Map<String, String> weightMap = new LinkedHashMap<>();
      long total = 0;
      for (int i = 0; i < shards.size(); i++) {
        String name = String.format("model-%05d-of-%05d.safetensors", i + 1, shards.size());
        total += writeShard(dir.resolve(name), shards.get(i));
        for (String tensor : shards.get(i).keySet()) {
          weightMap.put(tensor, name);
        }
      }
      Map<String, Object> index = new LinkedHashMap<>();
      index.put("metadata", Map.of("total_size", total));
      index.put("weight_map", weightMap);
      writeText(dir.resolve(Checkpoint.INDEX_JSON), Json.PRETTY.toJson(index) + "\n");
    }
    writeText(dir.resolve(Checkpoint.CONFIG_JSON), config.toJson(dtype));
    writeText(dir.resolve(Checkpoint.GENERATION_CONFIG_JSON), generation.toJson());
    if (tokenizerJson != null) {
      Path target = dir.resolve(Checkpoint.TOKENIZER_JSON);
      if (!Files.exists(target) || !Files.isSameFile(tokenizerJson, target)) {
        Path tmp = dir.resolve(Checkpoint.TOKENIZER_JSON + ".tmp");
        Files.copy(tokenizerJson, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        SafetensorsWriter.move(tmp, target);
      }
    }
  }

  private List<Map<String, TensorData>> partition(Map<String, TensorData> tensors) {
    List<Map<String, TensorData>> shards = new ArrayList<>();
    Map<String, TensorData> current = new LinkedHashMap<>();
    long currentBytes = 0;
    for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
      long bytes = e.getValue().numElements() * dtype.bytes();
      if (maxShardBytes > 0 && !current.isEmpty() && currentBytes + bytes > maxShardBytes) {
        shards.add(current);
        current = new LinkedHashMap<>();
        currentBytes = 0;
      }
      current.put(e.getKey(), e.getValue());
      currentBytes += bytes;
    }
    shards.add(current);
    return shards;
  }

  private long writeShard(Path file, Map<String, TensorData> tensors) throws IOException {
    SafetensorsWriter w = new SafetensorsWriter(dtype);
    metadata.forEach(w::metadata);
    tensors.forEach(w::add);
    w.write(file);
    return w.dataBytes();
  }

  private static void removeOldWeights(Path dir) throws IOException {
    List<Path> old = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        if (OLD_WEIGHTS.matcher(p.getFileName().toString()).matches()) {
          old.add(p);
        }
      }
    }
    for (Path p : old) {
      Files.deleteIfExists(p);
    }
  }

  private static void writeText(Path file, String text) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.write(tmp, text.getBytes(StandardCharsets.UTF_8));
    SafetensorsWriter.move(tmp, file);
  }
}
