package io.draftmesh.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import io.draftmesh.assembly.RandomModels;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code draftmesh bench engine [--json] [--quick] [--cache-dir DIR] [--models DIR] [--backends
 * LIST]}: what one engine step costs on this machine, per backend (DJL and the Vector API CPU
 * backend), for the 0.2M test model, the zoo draft and target (when {@code models/} has them) and a
 * generated ~110M-parameter Llama, side by side in one run: decode, verify and prefill steps
 * through the runtime and the raw forward, raw prefill of 256 and 512 tokens, batched decode
 * throughput, and each decode against its read floor (weight bytes held / memory bandwidth measured
 * in the same run). Prints an aligned table, or one JSON object with {@code --json}; progress goes
 * to stderr.
 *
 * <p>Performance is measured, never asserted: targets appear as notes.
 */
public final class EngineBench {
  static final double TARGET_BATCH8_SPEEDUP = 3.0;
  static final double TARGET_DECODE_OVER_FLOOR = 1.2;
  static final double TARGET_ZOO_TARGET_OVER_READ_FLOOR = 1.5;
  static final double TARGET_ZOO_DRAFT_OVER_READ_FLOOR = 2.5;
  static final double TARGET_VERIFY_OVER_DECODE = 1.3;
  static final double TARGET_ZOO_PREFILL_256_MS = 45;

  /**
   * Parsed command line.
   *
   * @param kvDtypes the KV pools the vector backend runs with, each a column of its own (DJL, the
   *     reference, always runs float32)
   */
  record Options(
      boolean json,
      boolean quick,
      Path cacheDir,
      Path modelsDir,
      List<Backend> backends,
      List<KvDtype> kvDtypes) {}

  /** The machine the numbers come from. */
  record Machine(
      int cores,
      String cpu,
      String jvm,
      String djl,
      String pytorch,
      String intraThreads,
      String interopThreads) {

    /** This machine as the "machine" object of every bench's JSON. */
    com.google.gson.JsonObject toJson() {
      com.google.gson.JsonObject o = new com.google.gson.JsonObject();
      o.addProperty("cores", cores);
      o.addProperty("cpu", cpu);
      o.addProperty("jvm", jvm);
      o.addProperty("djl", djl);
      o.addProperty("pytorch", pytorch);
      o.addProperty("intra_op_threads", intraThreads);
      o.addProperty("interop_threads", interopThreads);
      return o;
    }
  }

  /** Everything one run measured. */
  record Report(
      Options options,
      Machine machine,
      MemoryBandwidth.Result memory,
      List<ModelBench.Result> models) {}

  private static final String USAGE =
      "usage: draftmesh bench engine [--json] [--quick] [--cache-dir DIR] [--models DIR]"
          + " [--backends djl,vector] [--kv-dtypes float32,float16]\n"
          + "  --json       print one JSON object instead of the table\n"
          + "  --quick      fewer iterations, tiny model only (for tests)\n"
          + "  --cache-dir  where generated checkpoints live"
          + " (default: ${XDG_CACHE_HOME:-~/.cache}/draftmesh/bench)\n"
          + "  --models     the zoo (draft/, target/) to measure too (default: models; skipped if"
          + " absent)\n"
          + "  --backends   which backends, comma-separated (default: djl,vector)\n"
          + "  --kv-dtypes  the vector backend's KV pools, each a column (default: float32,float16;\n"
          + "               djl runs float32)\n";

  private EngineBench() {}

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the bench, printing to stdout (results) and stderr (progress). Returns the exit code. */
  public static int run(String[] args) {
    return run(args, System.out, System.err);
  }

  static int run(String[] args, PrintStream out, PrintStream err) {
    Options options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      err.println(e.getMessage());
      err.print(USAGE);
      return 2;
    }
    if (options == null) {
      out.print(USAGE);
      return 0;
    }
    try {
      Report report = measure(options, err);
      out.println(options.json() ? BenchReport.json(report) : BenchReport.table(report));
      return 0;
    } catch (RuntimeException e) {
      err.println("bench engine failed: " + e);
      e.printStackTrace(err);
      return 1;
    }
  }

  /** Null for --help. */
  static Options parse(String[] args) {
    boolean json = false;
    boolean quick = false;
    Path cacheDir = null;
    Path modelsDir = Path.of("models");
    List<Backend> backends = List.of(Backend.DJL, Backend.VECTOR);
    List<KvDtype> kvDtypes = List.of(KvDtype.FLOAT32, KvDtype.FLOAT16);
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--json" -> json = true;
        case "--quick" -> quick = true;
        case "--models" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException("--models: missing value (expected: a directory)");
          }
          modelsDir = Path.of(args[++i]);
        }
        case "--backends" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(
                "--backends: missing value (expected: djl, vector or djl,vector)");
          }
          backends = backends(args[++i]);
        }
        case "--kv-dtypes" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(
                "--kv-dtypes: missing value (expected: float32, float16 or float32,float16)");
          }
          kvDtypes = kvDtypes(args[++i]);
        }
        case "--cache-dir" -> {
          if (i + 1 >= args.length) {
            throw new IllegalArgumentException(
                "--cache-dir: missing value (expected: a directory)");
          }
          cacheDir = Path.of(args[++i]);
        }
        case "-h", "--help" -> {
          return null;
        }
        default ->
            throw new IllegalArgumentException(
                "unknown argument \""
                    + args[i]
                    + "\" (expected: --json, --quick, --cache-dir DIR, --models DIR,"
                    + " --backends LIST, --kv-dtypes LIST)");
      }
    }
    return new Options(
        json,
        quick,
        cacheDir == null ? RandomModels.defaultCacheDir() : cacheDir,
        modelsDir,
        backends,
        kvDtypes);
  }

  private static List<KvDtype> kvDtypes(String list) {
    List<KvDtype> out = new ArrayList<>();
    for (String part : list.split(",")) {
      KvDtype d;
      try {
        d = KvDtype.parse(part);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            "--kv-dtypes: " + part + " (expected: float32 or float16, comma-separated)", e);
      }
      if (!out.contains(d)) {
        out.add(d);
      }
    }
    return out;
  }

  private static List<Backend> backends(String list) {
    List<Backend> out = new ArrayList<>();
    for (String part : list.split(",")) {
      Backend b;
      try {
        b = Backend.parse(part);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("--backends: " + e.getMessage(), e);
      }
      if (b == Backend.AUTO) {
        throw new IllegalArgumentException("--backends: auto (expected: djl or vector)");
      }
      if (!out.contains(b)) {
        out.add(b);
      }
    }
    return out;
  }

  /** The zoo model {@code name} under {@code modelsDir}, or null when it is not there. */
  private static RandomModels.Spec zoo(Path modelsDir, String name) {
    Path dir = modelsDir.resolve(name);
    if (!java.nio.file.Files.isRegularFile(dir.resolve(Checkpoint.CONFIG_JSON))) {
      return null;
    }
    try {
      ModelConfig config = ModelConfig.parse(dir.resolve(Checkpoint.CONFIG_JSON));
      return new RandomModels.Spec("zoo_" + name, "zoo-" + name, config);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("reading " + dir, e);
    }
  }

  static Report measure(Options options, PrintStream progress) {
    djlDefaults();
    ModelBench.Plan plan = options.quick() ? ModelBench.Plan.quick() : ModelBench.Plan.full();
    List<RandomModels.Spec> specs = new ArrayList<>();
    List<Path> dirs = new ArrayList<>();
    specs.add(RandomModels.tiny());
    if (!options.quick()) {
      for (String name : List.of("draft", "target")) {
        RandomModels.Spec zoo = zoo(options.modelsDir(), name);
        if (zoo == null) {
          progress.printf("[zoo-%s] not in %s: skipped%n", name, options.modelsDir());
        } else {
          specs.add(zoo);
        }
      }
      specs.add(RandomModels.llama110m());
    }
    for (RandomModels.Spec spec : specs) {
      if (spec.name().startsWith("zoo_")) {
        dirs.add(options.modelsDir().resolve(spec.name().substring(4)));
      } else {
        progress.printf("[%s] checkpoint in %s%n", spec.label(), options.cacheDir());
        dirs.add(RandomModels.ensure(options.cacheDir(), spec));
      }
    }
    try (NDManager manager = NDManager.newBaseManager()) {
      Machine machine = machine();
      long bwBytes = options.quick() ? 256L << 20 : 1L << 30;
      int bwReps = options.quick() ? 3 : 5;
      progress.printf("memory bandwidth: %d MiB x %d reps%n", bwBytes >> 20, bwReps);
      MemoryBandwidth.Result memory = MemoryBandwidth.measure(manager, bwBytes, bwReps);
      List<ModelBench.Result> results = new ArrayList<>();
      for (int i = 0; i < specs.size(); i++) {
        for (Backend backend : options.backends()) {
          for (KvDtype kv :
              backend == Backend.DJL ? List.of(KvDtype.FLOAT32) : options.kvDtypes()) {
            results.add(
                new ModelBench(specs.get(i), dirs.get(i), backend, kv, plan, progress)
                    .run(manager));
          }
        }
      }
      progress.printf("memory bandwidth again: %d MiB x %d reps%n", bwBytes >> 20, bwReps);
      memory = memory.best(MemoryBandwidth.measure(manager, bwBytes, bwReps));
      return new Report(options, machine, memory, results);
    }
  }

  /**
   * Fills in DJL's offline CPU settings (see shared/machine.md) where neither the environment nor
   * the command line set them, before the engine first loads.
   */
  static void djlDefaults() {
    defaultProperty("ai.djl.offline", "true");
    defaultEnvOrProperty("PYTORCH_FLAVOR", "cpu");
    defaultEnvOrProperty(
        "DJL_CACHE_DIR",
        Path.of(System.getProperty("user.home"), ".cache", "draftmesh-djl").toString());
    defaultProperty(
        "ai.djl.pytorch.num_threads", Integer.toString(Runtime.getRuntime().availableProcessors()));
    defaultProperty("ai.djl.pytorch.num_interop_threads", "1");
  }

  private static void defaultProperty(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }

  private static void defaultEnvOrProperty(String key, String value) {
    if (System.getenv(key) == null) {
      defaultProperty(key, value);
    }
  }

  static Machine machine() {
    Engine engine = Engine.getEngine("PyTorch");
    return new Machine(
        Runtime.getRuntime().availableProcessors(),
        cpuModel(),
        System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"),
        Engine.getDjlVersion(),
        engine.getVersion(),
        System.getProperty("ai.djl.pytorch.num_threads", "default"),
        System.getProperty("ai.djl.pytorch.num_interop_threads", "default"));
  }

  private static String cpuModel() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          return line.substring(line.indexOf(':') + 1).trim();
        }
      }
    } catch (IOException | RuntimeException e) {
      // Not Linux, or not readable: the core count still says something.
    }
    return System.getProperty("os.arch");
  }
}
