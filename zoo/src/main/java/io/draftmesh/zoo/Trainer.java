package io.draftmesh.zoo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.CheckpointWriter;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.GenerationConfig;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.checkpoint.TensorData;
import io.draftmesh.engine.model.LlamaModel;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;

/**
 * Trains the engine's own {@link LlamaModel} with DJL autograd: the exact forward that serves is
 * the one that learns, so trained weights run identically in serving.
 *
 * <p>Per step: a seeded batch, {@code forwardFull} → log-softmax → gather of the targets →
 * (weighted) mean NLL, backward inside a {@link GradientCollector}, then {@link AdamW} with the
 * warm-up + cosine learning rate and global-norm clipping. With a teacher (distillation) each
 * token's loss mixes in the cross-entropy against the teacher's next-token distribution, whose
 * gradient is that of KL(teacher ‖ student): the student learns what the teacher would say, which
 * is what a speculative draft is judged on. Every step runs in an {@link NDScope}, so the only
 * arrays that survive it are the weights, their gradients and the optimizer moments ({@link
 * #liveArrays()} stays constant; tests check it).
 *
 * <p>Resumable: every {@code saveEvery} steps the weights, the moments, the step, the batch
 * generator's state and the curves go to {@code work/state}; {@code resume} continues from there
 * exactly. At the end the model is written in Hugging Face layout ({@link CheckpointWriter}, F16 by
 * default) with the tokenizer, reloaded through the serving loader and evaluated on the whole
 * validation split; the loss-curve PNG and the model card go next to it.
 */
public final class Trainer {
  static final double BETA1 = 0.9;
  static final double BETA2 = 0.95;
  static final double EPS = 1e-8;
  static final int EVAL_BATCH = 8;

  /**
   * Validation windows per forward at {@code context}: {@link #EVAL_BATCH} at 256 tokens, fewer for
   * longer windows. The attention scores are (batch, heads, T, T) per layer; at 2048 tokens a batch
   * of 8 held ~20 GB and was killed for memory.
   */
  static int evalBatch(int context) {
    return Math.max(1, EVAL_BATCH * 256 / context);
  }

  /**
   * The data one run trains and validates on.
   *
   * @param units single-line texts for instruction examples (empty without instructions)
   * @param trainDocs the train split's documents, the filler of task rows (empty without tasks)
   */
  public record Data(
      Path tokenizerJson,
      TextTokenizer tokenizer,
      TokenData train,
      TokenData valid,
      List<String> units,
      List<Corpus.Doc> trainDocs) {
    public Data(
        Path tokenizerJson,
        TextTokenizer tokenizer,
        TokenData train,
        TokenData valid,
        List<String> units) {
      this(tokenizerJson, tokenizer, train, valid, units, List.of());
    }
  }

  /** A point of a curve: at {@code step} (1-based count of updates) after {@code tokens}. */
  public record Point(int step, long tokens, double value) {}

  /**
   * What a finished run reports.
   *
   * @param validBitsPerByte on the whole validation split, with the saved (possibly F16) weights
   */
  public record Result(
      ModelConfig model,
      int steps,
      long tokens,
      double seconds,
      double tokensPerSecond,
      double trainLoss,
      double validBitsPerByte,
      double validNatsPerToken,
      List<Point> trainCurve,
      List<Point> validCurve) {}

  private final TrainConfig config;
  private final Data data;
  private final Path out;
  private final Path work;
  private final PrintStream log;
  private final String command;
  private boolean resume;
  private DType saveAs = DType.F16;
  private int liveArrays = -1;
  private int firstLiveArrays = -1;
  private BooleanSupplier stop = () -> false;

  /**
   * @param out the Hugging Face model directory to write at the end (null: none)
   * @param work where resumable state and the loss curve of an unfinished run go
   * @param command the command line that reproduces this run, for the model card
   */
  public Trainer(
      TrainConfig config, Data data, Path out, Path work, PrintStream log, String command) {
    this.config = config;
    this.data = data;
    this.out = out;
    this.work = work;
    this.log = log;
    this.command = command;
    if (data.tokenizer().vocabSize() != config.vocab()) {
      throw new IllegalArgumentException(
          "--vocab "
              + config.vocab()
              + " but the tokenizer has "
              + data.tokenizer().vocabSize()
              + " tokens (expected: equal)");
    }
  }

  /** Continue from {@code work/state} when it exists. */
  public Trainer resume(boolean resume) {
    this.resume = resume;
    return this;
  }

  /** Storage dtype of the final model (default F16). */
  public Trainer saveAs(DType dtype) {
    this.saveAs = dtype;
    return this;
  }

  /**
   * Asked after every step; when it says yes, the run saves its resumable state and {@link #run}
   * returns null (an interrupt, or a test's planned stop). The final step writes the model anyway.
   */
  public Trainer stopWhen(BooleanSupplier stop) {
    this.stop = stop;
    return this;
  }

  /** Arrays alive under the model's and optimizer's managers after the last step (-1: none). */
  int liveArrays() {
    return liveArrays;
  }

  /** The same count after this session's first step. */
  int firstLiveArrays() {
    return firstLiveArrays;
  }

  /** The decoder shape a config trains (tied embeddings, plain RoPE, bos = eos = end-of-text). */
  public static ModelConfig modelConfig(TrainConfig c) {
    boolean qwen2 = TrainConfig.QWEN2.equals(c.arch());
    return new ModelConfig(
        qwen2 ? ModelConfig.QWEN2 : ModelConfig.LLAMA,
        c.vocab(),
        c.hidden(),
        c.intermediate(),
        c.layers(),
        c.heads(),
        c.kvHeads(),
        c.hidden() / c.heads(),
        10000.0,
        null,
        1e-5,
        c.context(),
        true,
        qwen2,
        ZooTokenizer.END_OF_TEXT_ID,
        ZooTokenizer.END_OF_TEXT_ID);
  }

  public Result run() throws IOException {
    Files.createDirectories(work);
    try (NDManager base = NDManager.newBaseManager();
        LlamaModel model = initialModel(base);
        LlamaModel teacher = teacherModel(base)) {
      ModelConfig mc = model.config();
      List<NDArray> params = model.parameters();
      TrainingState state = new TrainingState(config.seed());
      Path stateDir = work.resolve("state");
      if (resume && TrainingState.exists(stateDir)) {
        state = TrainingState.read(stateDir, config, params);
        log.printf(
            "resuming %s from step %d (%,d tokens seen)%n",
            config.name(), state.step, state.tokens);
      }
      for (NDArray p : params) {
        p.setRequiresGradient(true);
      }
      Batches batches =
          new Batches(
              data.train().tokens(),
              config.batch(),
              config.rowLength(),
              config.instructMix(),
              config.instructMix() > 0 ? data.units() : null,
              data.tokenizer());
      if (config.longMix() > 0 || config.refMix() > 0) {
        if (data.trainDocs().isEmpty()) {
          throw new IllegalArgumentException("task rows need the train documents (none given)");
        }
        batches.tasks(
            new TaskRows(
                new LongTasks(data.trainDocs(), data.tokenizer()),
                KnowledgeTasks.verses(data.trainDocs()),
                data.train().tokens(),
                data.tokenizer(),
                config.rowLength(),
                config.maxTaskTokens()),
            config.longMix(),
            config.refMix());
      }
      int[] byteLengths = TokenData.byteLengths(data.tokenizer());
      // Train loss in nats/token → bits/byte with the train split's bytes per token.
      double bytesPerToken = (double) data.train().bytes() / data.train().size();
      try (AdamW opt = new AdamW(params, base, BETA1, BETA2, EPS, config.weightDecay());
          NDManager batchManager = base.newSubManager()) {
        if (state.moments != null) {
          opt.importState(state.moments, state.optimizerSteps);
          state.moments = null;
        }
        log.printf(
            "training %s: %,d parameters, %,d train tokens (%.2f bytes/token), %d steps × %,d"
                + " tokens%n",
            config.name(),
            mc.numParameters(),
            data.train().size(),
            bytesPerToken,
            config.steps(),
            config.tokensPerStep());
        Progress progress = new Progress(log, config.steps(), state.step);
        double secondsBefore = state.seconds;
        double ema = Double.NaN;
        double answerEma = Double.NaN; // only logged: rows without answers leave it unchanged
        while (state.step < config.steps()) {
          double lr = config.lrAt(state.step);
          Batches.Batch batch = batches.next(state.rng);
          StepLoss step = trainStep(model, teacher, config.distill(), batchManager, batch);
          double loss = step.data();
          double gradNorm = opt.step(lr, config.clip());
          state.step++;
          state.tokens += config.tokensPerStep();
          state.optimizerSteps = opt.steps();
          ema = Double.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
          if (!Double.isNaN(step.answer())) {
            answerEma =
                Double.isNaN(answerEma) ? step.answer() : 0.9 * answerEma + 0.1 * step.answer();
          }
          state.trainCurve.add(new Point(state.step, state.tokens, loss));
          liveArrays = countArrays(base);
          if (firstLiveArrays < 0) {
            firstLiveArrays = liveArrays;
          }
          progress.update(
              state.step,
              config.tokensPerStep(),
              String.format(
                  "loss %.3f (%.3f bpb)%s lr %.2e |g| %.2f",
                  ema,
                  bitsPerByte(ema, bytesPerToken),
                  Double.isNaN(answerEma) ? "" : String.format(" answers %.3f", answerEma),
                  lr,
                  gradNorm));
          boolean last = state.step == config.steps();
          if (state.step % config.evalEvery() == 0 || last) {
            Evaluation.Loss v =
                Evaluation.evaluate(
                    model,
                    batchManager,
                    data.valid().tokens(),
                    byteLengths,
                    config.context(),
                    evalBatch(config.context()),
                    config.evalWindows());
            state.validCurve.add(new Point(state.step, state.tokens, v.bitsPerByte()));
            progress.println(
                String.format(
                    "step %d: valid %.4f bits/byte (%.3f nats/token), train %.4f bits/byte",
                    state.step,
                    v.bitsPerByte(),
                    v.natsPerToken(),
                    bitsPerByte(ema, bytesPerToken)));
          }
          boolean stopping = !last && stop.getAsBoolean();
          if (state.step % config.saveEvery() == 0 || last || stopping) {
            state.seconds = secondsBefore + progress.elapsedSeconds();
            state.write(stateDir, config, params, opt.exportState());
            LossCurve.write(
                work.resolve("loss-curve.png"),
                config.name(),
                state.trainCurve,
                state.validCurve,
                bytesPerToken);
          }
          if (stopping) {
            progress.finish();
            log.printf(
                "stopped at step %d of %d; state saved in %s (continue with --resume)%n",
                state.step, config.steps(), stateDir);
            return null;
          }
        }
        progress.finish();
      }
      if (out == null) {
        return null;
      }
      return finish(model, base, state, bytesPerToken);
    }
  }

  /**
   * Losses of one step.
   *
   * @param data the (weighted) mean NLL of the text's next tokens
   * @param answer mean NLL of the long-task answer tokens (weight {@link TaskRows#ANSWER_WEIGHT}),
   *     NaN when the batch has none: the signal that retrieval is being learned, which the
   *     haystack's tokens would drown in {@code data}
   */
  record StepLoss(double data, double answer) {}

  /**
   * One forward/backward; gradients accumulate in the params. Returns the (weighted) mean NLL of
   * the text's next tokens, comparable across runs with and without a teacher, and the answers'.
   *
   * @param teacher the model distilled from, or null
   * @param distill weight of the teacher's soft targets (0 without a teacher)
   */
  static StepLoss trainStep(
      LlamaModel model, LlamaModel teacher, double distill, NDManager manager, Batches.Batch b) {
    try (NDScope scope = new NDScope();
        GradientCollector gc = Engine.getInstance().newGradientCollector()) {
      scope.suppressNotUsedWarning();
      NDArray x = manager.create(b.inputs(), new Shape(b.rows(), b.len()));
      NDArray y = manager.create(b.targets(), new Shape(b.rows(), b.len(), 1));
      NDArray teacherProbs = null; // (B, T, vocab)
      if (teacher != null) {
        try (GradMode off = GradMode.disabled()) {
          off.suppressNotUsedWarning();
          teacherProbs = teacher.forwardFull(x).softmax(2);
        }
      }
      NDArray logProbs = model.forwardFull(x).logSoftmax(2); // (B, T, vocab)
      NDArray nll = Evaluation.tokenNll(logProbs, y); // (B, T, 1)
      NDArray tokenLoss = nll;
      if (teacherProbs != null) {
        NDArray soft = teacherProbs.mul(logProbs).sum(new int[] {2}, true).neg(); // (B, T, 1)
        tokenLoss = nll.mul((float) (1 - distill)).add(soft.mul((float) distill));
      }
      NDArray w = null; // (B, T, 1) or null: every token counts
      float norm = 1f;
      float[] answers = null; // 1 at answer tokens, else 0
      int answerCount = 0;
      if (b.weights() != null) {
        double total = 0;
        answers = new float[b.weights().length];
        for (int i = 0; i < answers.length; i++) {
          float v = b.weights()[i];
          total += v;
          if (v == TaskRows.ANSWER_WEIGHT) {
            answers[i] = 1f;
            answerCount++;
          }
        }
        w = manager.create(b.weights(), new Shape(b.rows(), b.len(), 1));
        norm = (float) Math.max(1.0, total);
      }
      NDArray loss = weightedMean(tokenLoss, w, norm);
      NDArray dataLoss = tokenLoss == nll ? loss : weightedMean(nll, w, norm);
      gc.backward(loss);
      double answer = Double.NaN;
      if (answerCount > 0) {
        NDArray mask = manager.create(answers, new Shape(b.rows(), b.len(), 1));
        answer = weightedMean(nll, mask, answerCount).getFloat();
      }
      return new StepLoss(dataLoss.getFloat(), answer);
    }
  }

  /** Mean of per-token values (B, T, 1), or their {@code w}-weighted sum over {@code norm}. */
  private static NDArray weightedMean(NDArray perToken, NDArray w, float norm) {
    return w == null ? perToken.mean() : perToken.mul(w).sum().div(norm);
  }

  /** The distillation teacher, frozen, or null when the config has none. */
  private LlamaModel teacherModel(NDManager base) throws IOException {
    return config.teacher() == null ? null : loadTrained("--teacher", config.teacher(), base);
  }

  private LlamaModel initialModel(NDManager base) throws IOException {
    if (config.init() != null) {
      return loadTrained("--init", extendedContext(config.init()), base);
    }
    Path initDir = work.resolve("init");
    RandomCheckpoint.write(initDir, modelConfig(config), config.seed(), DType.F32, 0);
    try (Checkpoint ckpt = Checkpoint.load(initDir)) {
      return LlamaModel.load(ckpt, base, config.context());
    }
  }

  /**
   * {@code dir} itself when its context covers the run's, else a copy in {@code work/init-context}
   * whose config.json says {@code max_position_embeddings = context}. The weights are unchanged:
   * RoPE has no parameters, so a model continues at longer positions from the same weights.
   */
  private Path extendedContext(Path dir) throws IOException {
    JsonObject json =
        JsonParser.parseString(Files.readString(dir.resolve("config.json"))).getAsJsonObject();
    if (json.get("max_position_embeddings").getAsInt() >= config.context()) {
      return dir;
    }
    Path copy = work.resolve("init-context");
    Files.createDirectories(copy);
    try (var files = Files.list(dir)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        if (Files.isRegularFile(f) && !f.getFileName().toString().equals("config.json")) {
          Files.copy(f, copy.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
      }
    }
    json.addProperty("max_position_embeddings", config.context());
    Files.writeString(
        copy.resolve("config.json"), new GsonBuilder().setPrettyPrinting().create().toJson(json));
    log.printf(
        "--init %s: context extended to %d positions (same weights)%n", dir, config.context());
    return copy;
  }

  /** A trained model named by {@code flag}; its vocabulary must be the one this run trains. */
  private LlamaModel loadTrained(String flag, Path dir, NDManager base) throws IOException {
    try (Checkpoint ckpt = Checkpoint.load(dir)) {
      int vocab = ckpt.config().vocabSize();
      if (vocab != config.vocab()) {
        throw new IllegalArgumentException(
            flag + " " + dir + " has vocab " + vocab + " (expected: " + config.vocab() + ")");
      }
      return LlamaModel.load(ckpt, base, config.context());
    }
  }

  /** Saves the HF model, reloads it through the serving loader and evaluates it in full. */
  private Result finish(LlamaModel model, NDManager base, TrainingState state, double bytesPerToken)
      throws IOException {
    ModelConfig mc = model.config();
    List<Integer> eos =
        config.instructMix() > 0
            ? List.of(ZooTokenizer.END_ID, ZooTokenizer.END_OF_TEXT_ID)
            : List.of(ZooTokenizer.END_OF_TEXT_ID);
    GenerationConfig generation =
        new GenerationConfig(1.0, 0, 1.0, 128, eos, ZooTokenizer.END_OF_TEXT_ID, false);
    save(
        model,
        out,
        saveAs,
        generation,
        data.tokenizerJson(),
        Map.of(
            "draftmesh.trained_steps",
            Integer.toString(state.step),
            "draftmesh.seed",
            Long.toString(config.seed())));

    Evaluation.Loss valid;
    try (NDManager evalManager = NDManager.newBaseManager();
        Checkpoint ckpt = Checkpoint.load(out);
        LlamaModel reloaded = LlamaModel.load(ckpt, evalManager, config.context())) {
      valid =
          Evaluation.evaluate(
              reloaded,
              evalManager,
              data.valid().tokens(),
              TokenData.byteLengths(data.tokenizer()),
              config.context(),
              evalBatch(config.context()),
              0);
    }
    int n = state.trainCurve.size();
    double recent = 0;
    int k = Math.min(50, n);
    for (int i = n - k; i < n; i++) {
      recent += state.trainCurve.get(i).value();
    }
    Result result =
        new Result(
            mc,
            state.step,
            state.tokens,
            state.seconds,
            state.seconds > 0 ? state.tokens / state.seconds : 0,
            k > 0 ? recent / k : Double.NaN,
            valid.bitsPerByte(),
            valid.natsPerToken(),
            List.copyOf(state.trainCurve),
            List.copyOf(state.validCurve));
    LossCurve.write(
        out.resolve("loss-curve.png"),
        config.name(),
        state.trainCurve,
        state.validCurve,
        bytesPerToken);
    ModelCard.write(out, config, result, data, command, saveAs);
    log.printf(
        "saved %s: valid %.4f bits/byte on %,d tokens (%s weights), %,d tokens seen in %.1f min%n",
        out, valid.bitsPerByte(), valid.tokens(), saveAs, state.tokens, state.seconds / 60);
    return result;
  }

  /**
   * Writes {@code model} as a Hugging Face checkpoint (HF tensor names, fused projections split
   * back) with the tokenizer and generation config.
   */
  static void save(
      LlamaModel model,
      Path dir,
      DType dtype,
      GenerationConfig generation,
      Path tokenizerJson,
      Map<String, String> metadata)
      throws IOException {
    Map<String, TensorData> tensors = new LinkedHashMap<>();
    try (NDManager export = model.manager().newSubManager()) {
      for (Map.Entry<String, NDArray> e : model.exportTensors(export).entrySet()) {
        NDArray a = e.getValue();
        tensors.put(e.getKey(), TensorData.of(a.toFloatArray(), a.getShape().getShape()));
      }
    }
    CheckpointWriter writer =
        new CheckpointWriter(model.config())
            .dtype(dtype)
            .generation(generation)
            .tokenizer(tokenizerJson);
    metadata.forEach(writer::metadata);
    writer.write(dir, tensors);
  }

  /** Arrays alive in {@code manager} and all its sub-managers. */
  static int countArrays(NDManager manager) {
    int n = manager.getManagedArrays().size();
    return n;
  }

  static double bitsPerByte(double natsPerToken, double bytesPerToken) {
    return natsPerToken / Math.log(2) / bytesPerToken;
  }
}
