package io.draftmesh.engine.checkpoint;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Hugging Face model directory: {@code config.json}, optional {@code generation_config.json},
 * weights in {@code model.safetensors} or in shards listed by {@code model.safetensors.index.json},
 * and usually {@code tokenizer.json}. Like transformers, a single {@code model.safetensors} wins
 * over an index when both exist.
 *
 * <p>Loading maps the weight files and validates their headers; tensor data is only read by {@link
 * #tensor}. Call {@link #requireTensors()} to check that every tensor the decoder needs is there
 * with the right shape before building a model. Thread-safe; close it to release the files (buffers
 * already returned stay valid).
 */
public final class Checkpoint implements Closeable {
  private static final Logger LOG = LoggerFactory.getLogger(Checkpoint.class);

  public static final String CONFIG_JSON = "config.json";
  public static final String GENERATION_CONFIG_JSON = "generation_config.json";
  public static final String SINGLE_FILE = "model.safetensors";
  public static final String INDEX_JSON = "model.safetensors.index.json";
  public static final String TOKENIZER_JSON = "tokenizer.json";

  private final Path dir;
  private final ModelConfig config;
  private final GenerationConfig generation;
  private final List<SafetensorsFile> files;
  private final Map<String, SafetensorsFile> byTensor;

  private Checkpoint(
      Path dir,
      ModelConfig config,
      GenerationConfig generation,
      List<SafetensorsFile> files,
      Map<String, SafetensorsFile> byTensor) {
    this.dir = dir;
    this.config = config;
    this.generation = generation;
    this.files = files;
    this.byTensor = Collections.unmodifiableMap(byTensor);
  }

  /**
   * Opens the checkpoint in {@code dir}.
   *
   * @throws CheckpointException if a file is missing or malformed, naming it
   * @throws IOException if a file cannot be read
   */
  public static Checkpoint load(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new CheckpointException("checkpoint " + dir + ": not a directory");
    }
    Path configFile = dir.resolve(CONFIG_JSON);
    if (!Files.isRegularFile(configFile)) {
      throw new CheckpointException("checkpoint " + dir + ": no " + CONFIG_JSON);
    }
    ModelConfig config = ModelConfig.parse(configFile);
    GenerationConfig generation =
        GenerationConfig.load(dir.resolve(GENERATION_CONFIG_JSON), config);
    Path single = dir.resolve(SINGLE_FILE);
    Path index = dir.resolve(INDEX_JSON);
    List<SafetensorsFile> files = new ArrayList<>();
    Map<String, SafetensorsFile> byTensor = new LinkedHashMap<>();
    try {
      if (Files.isRegularFile(single)) {
        if (Files.exists(index)) {
          LOG.warn("{}: both {} and {} exist; using {}", dir, SINGLE_FILE, INDEX_JSON, SINGLE_FILE);
        }
        SafetensorsFile f = SafetensorsFile.open(single);
        files.add(f);
        for (String name : f.names()) {
          byTensor.put(name, f);
        }
      } else if (Files.isRegularFile(index)) {
        loadShards(dir, index, files, byTensor);
      } else {
        throw new CheckpointException(
            "checkpoint " + dir + ": no " + SINGLE_FILE + " and no " + INDEX_JSON);
      }
    } catch (RuntimeException | IOException | Error e) {
      for (SafetensorsFile f : files) {
        try {
          f.close();
        } catch (IOException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
    return new Checkpoint(dir, config, generation, List.copyOf(files), byTensor);
  }

  private static void loadShards(
      Path dir, Path index, List<SafetensorsFile> files, Map<String, SafetensorsFile> byTensor)
      throws IOException {
    String src = index.toString();
    JsonObject root = Json.readObject(index);
    JsonObject weightMap = Json.optObject(root, "weight_map", src);
    if (weightMap == null) {
      throw new CheckpointException(src + ": missing weight_map");
    }
    Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
    for (Map.Entry<String, JsonElement> e : weightMap.entrySet()) {
      String tensor = e.getKey();
      JsonElement v = e.getValue();
      if (!(v.isJsonPrimitive() && v.getAsJsonPrimitive().isString())) {
        throw new CheckpointException(
            src + ": weight_map." + tensor + " must be a file name, found " + Json.describe(v));
      }
      String shardName = v.getAsString();
      SafetensorsFile shard = shards.get(shardName);
      if (shard == null) {
        Path shardPath = dir.resolve(shardName).normalize();
        boolean plainName =
            !shardName.isEmpty()
                && !shardName.contains("/")
                && !shardName.contains("\\")
                && shardPath.getParent() != null
                && shardPath.getParent().equals(dir.normalize());
        if (!plainName) {
          throw new CheckpointException(
              src
                  + ": weight_map maps "
                  + tensor
                  + " to \""
                  + shardName
                  + "\", which is not a file name inside "
                  + dir);
        }
        if (!Files.isRegularFile(shardPath)) {
          throw new CheckpointException(
              src
                  + ": weight_map maps "
                  + tensor
                  + " to shard "
                  + shardName
                  + ", which does not exist in "
                  + dir);
        }
        shard = SafetensorsFile.open(shardPath);
        files.add(shard);
        shards.put(shardName, shard);
      }
      if (!shard.has(tensor)) {
        throw new CheckpointException(
            src
                + ": weight_map maps "
                + tensor
                + " to shard "
                + shardName
                + ", which has no such tensor ("
                + shard.names().size()
                + " tensors in it)");
      }
      byTensor.put(tensor, shard);
    }
    if (byTensor.isEmpty()) {
      throw new CheckpointException(src + ": weight_map is empty");
    }
  }

  public Path dir() {
    return dir;
  }

  public ModelConfig config() {
    return config;
  }

  /** generation_config.json, or HF defaults when the file is absent. */
  public GenerationConfig generation() {
    return generation;
  }

  /** Whether the directory has a tokenizer.json. */
  public boolean hasTokenizer() {
    return Files.isRegularFile(dir.resolve(TOKENIZER_JSON));
  }

  /**
   * The checkpoint's tokenizer.json.
   *
   * @throws CheckpointException if the directory has none
   */
  public Path tokenizerJson() {
    Path p = dir.resolve(TOKENIZER_JSON);
    if (!Files.isRegularFile(p)) {
      throw new CheckpointException("checkpoint " + dir + ": no " + TOKENIZER_JSON);
    }
    return p;
  }

  /** All tensor names, in file order. */
  public Set<String> tensorNames() {
    return byTensor.keySet();
  }

  public boolean has(String name) {
    return byTensor.containsKey(name);
  }

  /** The header entry of {@code name} (dtype, shape, location). */
  public TensorInfo info(String name) {
    return fileOf(name).info(name);
  }

  public long[] shape(String name) {
    return info(name).shape();
  }

  /**
   * The tensor as float32 little-endian values in a direct buffer: zero-copy read-only for F32
   * files, widened into a new buffer (on every call) for F16/BF16. Widened buffers are direct
   * memory freed only by GC; when loading many, prefer {@link #tensor(String, FloatBuffer)}.
   *
   * @throws CheckpointException if there is no such tensor, naming the checkpoint directory
   */
  public ByteBuffer tensor(String name) {
    try {
      return fileOf(name).readFloat32(name);
    } catch (IOException e) {
      throw new CheckpointException(
          "checkpoint " + dir + ": reading tensor " + name + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * Copies the tensor as float32 into {@code dst} (widening F16/BF16), advancing its position; see
   * {@link SafetensorsFile#readFloat32(String, FloatBuffer)}.
   */
  public void tensor(String name, FloatBuffer dst) {
    try {
      fileOf(name).readFloat32(name, dst);
    } catch (IOException e) {
      throw new CheckpointException(
          "checkpoint " + dir + ": reading tensor " + name + " failed: " + e.getMessage(), e);
    }
  }

  /**
   * The stored bytes of {@code name} as a read-only little-endian slice of the mapping, no
   * conversion (the caller reads {@link #info}'s dtype); valid while the checkpoint is open.
   */
  public ByteBuffer raw(String name) {
    try {
      return fileOf(name).raw(name);
    } catch (IOException e) {
      throw new CheckpointException(
          "checkpoint " + dir + ": reading tensor " + name + " failed: " + e.getMessage(), e);
    }
  }

  private SafetensorsFile fileOf(String name) {
    SafetensorsFile f = byTensor.get(name);
    if (f == null) {
      throw new CheckpointException(
          "checkpoint "
              + dir
              + ": no tensor named "
              + name
              + " ("
              + byTensor.size()
              + " tensors in "
              + fileNames()
              + ")");
    }
    return f;
  }

  private String fileNames() {
    List<String> names = new ArrayList<>();
    for (SafetensorsFile f : files) {
      names.add(String.valueOf(f.path().getFileName()));
    }
    return String.join(", ", names);
  }

  /**
   * Checks that every tensor a Llama-family decoder with this {@link #config()} needs is present,
   * stored as F32/F16/BF16 and shaped as the config says.
   *
   * @throws CheckpointException listing every problem, one per line, each naming the file, the
   *     tensor, the expected and the found shape and the config fields the shape comes from
   */
  public void requireTensors() {
    List<String> problems =
        checkTensors(
            config,
            name -> {
              SafetensorsFile f = byTensor.get(name);
              return f == null
                  ? null
                  : new Found(String.valueOf(f.path().getFileName()), f.info(name));
            },
            "checkpoint " + dir);
    if (!problems.isEmpty()) {
      throw new CheckpointException(summarize(problems));
    }
  }

  /** A tensor found by a lookup, and the file (or source) it is in. */
  record Found(String file, TensorInfo info) {}

  /** Problems of the tensors {@code lookup} finds against {@code config}; empty when all fit. */
  static List<String> checkTensors(
      ModelConfig config, Function<String, Found> lookup, String where) {
    List<String> problems = new ArrayList<>();
    for (ModelConfig.TensorSpec spec : config.tensorSpecs()) {
      Found found = lookup.apply(spec.name());
      String expected = Arrays.toString(spec.shape()) + " (" + spec.reason() + ")";
      if (found == null) {
        problems.add(where + ": missing tensor " + spec.name() + ", expected shape " + expected);
        continue;
      }
      TensorInfo info = found.info();
      String file = found.file();
      if (!Arrays.equals(info.shape(), spec.shape())) {
        problems.add(
            file
                + ": tensor "
                + spec.name()
                + " has shape "
                + Arrays.toString(info.shape())
                + ", expected "
                + expected);
      } else if (info.floatType() == null) {
        problems.add(
            file
                + ": tensor "
                + spec.name()
                + " has dtype "
                + info.dtype()
                + ", expected F32, F16 or BF16");
      }
    }
    return problems;
  }

  static String summarize(List<String> problems) {
    int shown = Math.min(problems.size(), 20);
    StringBuilder sb = new StringBuilder(String.join("\n", problems.subList(0, shown)));
    if (problems.size() > shown) {
      sb.append("\n... and ").append(problems.size() - shown).append(" more problems");
    }
    return sb.toString();
  }

  @Override
  public void close() throws IOException {
    IOException first = null;
    for (SafetensorsFile f : files) {
      try {
        f.close();
      } catch (IOException e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Override
  public String toString() {
    return "Checkpoint["
        + dir
        + ", "
        + config.architecture()
        + ", "
        + byTensor.size()
        + " tensors]";
  }
}
