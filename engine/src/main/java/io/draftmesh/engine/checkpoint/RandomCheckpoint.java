package io.draftmesh.engine.checkpoint;

import io.draftmesh.engine.tokenizer.BpeTrainer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes Hugging Face checkpoints with random weights, for tests and benchmarks: the same layout,
 * names, dtypes and files as a real Llama/Qwen2/Mistral checkpoint, plus a matching byte-level BPE
 * tokenizer.json whose vocab is exactly {@code vocab_size}.
 *
 * <p>Weights: embeddings, projections and lm_head ~ N(0, 0.02²); RMSNorm weights 1 + N(0, 0.05²)
 * (not all ones, so a model that ignores them is caught); q/k/v biases ~ N(0, 0.02²). Every tensor
 * has its own stream derived from (seed, name), so values do not depend on the order, the dtype
 * rounding aside, or the sharding. Tensors are generated chunk by chunk while being written: the
 * heap never holds a whole tensor.
 *
 * <p>Tokenizer: trained by {@link BpeTrainer} on a built-in English text, padded with synthetic
 * merges up to vocab_size; id 0 is {@value #EOS_TOKEN}, id 1 is {@value #BOS_TOKEN}, ids 2..257 are
 * the bytes. It depends only on vocab_size, so two presets with the same vocab share a tokenizer (a
 * draft and its target must).
 *
 * <p>Command line: {@code RandomCheckpoint <dir> <preset> [--dtype f32|f16|bf16] [--shard-bytes N]
 * [--seed N]}, presets {@code tiny-llama}, {@code tiny-qwen2}, {@code tiny-gqa}, {@code
 * llama-110m}.
 */
public final class RandomCheckpoint {
  public static final String EOS_TOKEN = "<|endoftext|>";
  public static final String BOS_TOKEN = "<|begin_of_text|>";
  public static final int EOS_ID = 0;
  public static final int BOS_ID = 1;
  public static final List<String> SPECIAL_TOKENS = List.of(EOS_TOKEN, BOS_TOKEN);

  private static final double WEIGHT_STD = 0.02;
  private static final double NORM_NOISE_STD = 0.05;

  private RandomCheckpoint() {}

  /** Llama: vocab 512, hidden 64, 2 layers, 4 heads (no GQA), intermediate 176; untied. */
  public static ModelConfig tinyLlama() {
    return new ModelConfig(
        ModelConfig.LLAMA,
        512,
        64,
        176,
        2,
        4,
        4,
        16,
        10000.0,
        null,
        1e-5,
        1024,
        false,
        false,
        BOS_ID,
        EOS_ID);
  }

  /** Qwen2: vocab 512, hidden 64, 2 layers, 4 heads / 2 kv heads, q/k/v biases, tied. */
  public static ModelConfig tinyQwen2() {
    return new ModelConfig(
        ModelConfig.QWEN2,
        512,
        64,
        176,
        2,
        4,
        2,
        16,
        1_000_000.0,
        null,
        1e-6,
        1024,
        true,
        true,
        BOS_ID,
        EOS_ID);
  }

  /**
   * Mistral-style GQA: vocab 512, hidden 128, 2 layers, 8 heads / 2 kv heads (head_dim 16), llama3
   * rope scaling factor 8 over an original 1024 positions (so head dims fall in all three bands:
   * kept, blended and divided), max positions 4096.
   */
  public static ModelConfig tinyGqa() {
    return new ModelConfig(
        ModelConfig.MISTRAL,
        512,
        128,
        352,
        2,
        8,
        2,
        16,
        10000.0,
        ModelConfig.RopeScaling.llama3(8.0, 1024),
        1e-5,
        4096,
        false,
        false,
        BOS_ID,
        EOS_ID);
  }

  /**
   * llama2.c's 110M "stories" shape: vocab 32000, hidden 768, 12 layers, 12 heads, intermediate
   * 2048, 2048 positions, tied embeddings: 109.5M parameters, 438 MB as F32.
   */
  public static ModelConfig llama110M() {
    return new ModelConfig(
        ModelConfig.LLAMA,
        32000,
        768,
        2048,
        12,
        12,
        12,
        64,
        10000.0,
        null,
        1e-5,
        2048,
        true,
        false,
        BOS_ID,
        EOS_ID);
  }

  /** A preset by command-line name: tiny-llama, tiny-qwen2, tiny-gqa, llama-110m. */
  public static ModelConfig preset(String name) {
    switch (name.toLowerCase(Locale.ROOT).replace("_", "-")) {
      case "tiny-llama":
      case "tinyllama":
        return tinyLlama();
      case "tiny-qwen2":
      case "tinyqwen2":
        return tinyQwen2();
      case "tiny-gqa":
      case "tinygqa":
        return tinyGqa();
      case "llama-110m":
      case "llama110m":
        return llama110M();
      default:
        throw new IllegalArgumentException(
            "preset \"" + name + "\" (expected: tiny-llama, tiny-qwen2, tiny-gqa, llama-110m)");
    }
  }

  /**
   * Writes a random checkpoint with a matching tokenizer.json into {@code dir}.
   *
   * @param storeAs storage dtype of the weights
   * @param maxShardBytes 0 for one model.safetensors, else the largest shard in bytes
   */
  public static void write(
      Path dir, ModelConfig config, long seed, DType storeAs, long maxShardBytes)
      throws IOException {
    Files.createDirectories(dir);
    Path tokenizer = dir.resolve(Checkpoint.TOKENIZER_JSON);
    writeTokenizer(tokenizer, config.vocabSize());
    new CheckpointWriter(config)
        .dtype(storeAs)
        .maxShardBytes(maxShardBytes)
        .metadata("draftmesh.random_seed", Long.toString(seed))
        .write(dir, randomTensors(config, seed));
  }

  /**
   * Lazily generated random tensors for {@code config}, in HF order; nothing is computed until a
   * tensor is written or read through {@link TensorData#open()}.
   */
  public static Map<String, TensorData> randomTensors(ModelConfig config, long seed) {
    Map<String, TensorData> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, long[]> e : config.tensorShapes().entrySet()) {
      String name = e.getKey();
      boolean norm = name.endsWith("norm.weight");
      double mean = norm ? 1.0 : 0.0;
      double std = norm ? NORM_NOISE_STD : WEIGHT_STD;
      long streamSeed = mix(seed, name);
      tensors.put(
          name,
          TensorData.generated(
              e.getValue(),
              () -> {
                SplittableRandom random = new SplittableRandom(streamSeed);
                return (dst, length) -> {
                  for (int i = 0; i < length; i++) {
                    dst[i] = (float) (mean + std * random.nextGaussian());
                  }
                };
              }));
    }
    return tensors;
  }

  private static long mix(long seed, String name) {
    long h = 0xcbf29ce484222325L; // FNV-1a 64 over the UTF-8 name
    for (byte b : name.getBytes(StandardCharsets.UTF_8)) {
      h ^= b & 0xFF;
      h *= 0x100000001b3L;
    }
    long z = seed ^ h;
    z = (z ^ (z >>> 33)) * 0xff51afd7ed558ccdL;
    z = (z ^ (z >>> 33)) * 0xc4ceb9fe1a85ec53L;
    return z ^ (z >>> 33);
  }

  /**
   * Writes the test tokenizer for {@code vocabSize} (special tokens, 256 bytes, merges learned from
   * the built-in text, then synthetic merges up to the size).
   */
  public static void writeTokenizer(Path tokenizerJson, int vocabSize) throws IOException {
    new BpeTrainer(vocabSize, SPECIAL_TOKENS)
        .padToVocabSize(true)
        .train(sampleText())
        .write(tokenizerJson, BOS_TOKEN);
  }

  /** The built-in English text the test tokenizers are trained on (about 4 KB). */
  public static String sampleText() {
    return SampleText.TEXT;
  }

  /** {@code RandomCheckpoint <dir> <preset> [--dtype f32|f16|bf16] [--shard-bytes N] [--seed N]} */
  public static void main(String[] args) throws IOException {
    String usage =
        "usage: RandomCheckpoint <dir> <tiny-llama|tiny-qwen2|tiny-gqa|llama-110m>"
            + " [--dtype f32|f16|bf16] [--shard-bytes N] [--seed N]";
    Path dir = null;
    String preset = null;
    DType dtype = DType.F32;
    long shardBytes = 0;
    long seed = 0;
    try {
      for (int i = 0; i < args.length; i++) {
        String a = args[i];
        switch (a) {
          case "--dtype":
            dtype = DType.parse(value(args, ++i, a));
            break;
          case "--shard-bytes":
            shardBytes = Long.parseLong(value(args, ++i, a));
            break;
          case "--seed":
            seed = Long.parseLong(value(args, ++i, a));
            break;
          case "-h":
          case "--help":
            System.out.println(usage);
            return;
          default:
            if (a.startsWith("--")) {
              throw new IllegalArgumentException("unknown option " + a);
            } else if (dir == null) {
              dir = Paths.get(a);
            } else if (preset == null) {
              preset = a;
            } else {
              throw new IllegalArgumentException("unexpected argument " + a);
            }
        }
      }
      if (dir == null || preset == null) {
        throw new IllegalArgumentException("missing <dir> or <preset>");
      }
      ModelConfig config = preset(preset);
      long start = System.nanoTime();
      write(dir, config, seed, dtype, shardBytes);
      System.out.printf(
          Locale.ROOT,
          "wrote %s (%,d parameters, %s) to %s in %.1f s%n",
          preset,
          config.numParameters(),
          dtype.torchName(),
          dir,
          (System.nanoTime() - start) / 1e9);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      System.err.println(usage);
      System.exit(2);
    }
  }

  private static String value(String[] args, int i, String option) {
    if (i >= args.length) {
      throw new IllegalArgumentException(option + " needs a value");
    }
    return args[i];
  }
}
