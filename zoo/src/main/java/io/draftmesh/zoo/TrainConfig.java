package io.draftmesh.zoo;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything one training run depends on. Two runs with equal configs on the same corpus produce
 * the same model (up to floating-point nondeterminism of the native kernels).
 *
 * @param name model name (directory name under models/)
 * @param hidden hidden size
 * @param layers decoder layers
 * @param heads attention heads
 * @param kvHeads key/value heads (GQA when fewer than heads)
 * @param intermediate SwiGLU width
 * @param context training sequence length; also max_position_embeddings of the saved model
 * @param vocab tokenizer vocabulary size
 * @param batch sequences per step
 * @param steps optimizer steps
 * @param lr peak learning rate
 * @param minLrRatio final learning rate as a fraction of {@code lr} (cosine floor)
 * @param warmup linear warm-up steps
 * @param weightDecay decoupled weight decay on matrices
 * @param clip global gradient-norm clip (0 = off)
 * @param seed initialization and batch sampling seed
 * @param evalEvery steps between validation runs
 * @param evalWindows validation windows per periodic run (the final one uses all)
 * @param saveEvery steps between resumable checkpoints
 * @param init checkpoint to start from (fine-tuning), or null for random initialization
 * @param instructMix fraction of sequences that are instruction examples (0 = plain LM)
 * @param teacher model whose next-token distributions the student is distilled towards, or null
 * @param distill weight of the teacher's soft targets in the loss; the data's own next token gets
 *     {@code 1 - distill} (0 without a teacher)
 * @param longMix fraction of sequences that are long-context task rows ({@link TaskRows})
 * @param refMix fraction of sequences that are referenced-verse rows ({@link TaskRows})
 * @param arch decoder family of a model trained from scratch: {@code llama}, or {@code qwen2}
 *     (q/k/v biases); a fine-tuned model keeps its --init's
 * @param seq training row length when shorter than {@code context} (0: rows of the whole context).
 *     The saved model still says {@code context}: RoPE has no parameters, but nothing guarantees
 *     the model uses positions it was not trained at — evaluation by length tells
 * @param taskTokens most tokens of one long-context task instance (0: the row); shorter instances
 *     are packed several to a row, so a row carries several answers ({@link TaskRows})
 */
public record TrainConfig(
    String name,
    int hidden,
    int layers,
    int heads,
    int kvHeads,
    int intermediate,
    int context,
    int vocab,
    int batch,
    int steps,
    double lr,
    double minLrRatio,
    int warmup,
    double weightDecay,
    double clip,
    long seed,
    int evalEvery,
    int evalWindows,
    int saveEvery,
    Path init,
    double instructMix,
    Path teacher,
    double distill,
    double longMix,
    double refMix,
    String arch,
    int seq,
    int taskTokens) {

  public static final String LLAMA = "llama";
  public static final String QWEN2 = "qwen2";

  public TrainConfig {
    positive("hidden", hidden);
    positive("layers", layers);
    positive("heads", heads);
    positive("kv-heads", kvHeads);
    positive("intermediate", intermediate);
    positive("batch", batch);
    positive("steps", steps);
    positive("eval-every", evalEvery);
    positive("eval-windows", evalWindows);
    positive("save-every", saveEvery);
    if (context < 8) {
      throw new IllegalArgumentException("--context " + context + " (expected: >= 8)");
    }
    if (vocab < 260) {
      throw new IllegalArgumentException("--vocab " + vocab + " (expected: >= 260)");
    }
    if (hidden % heads != 0 || (hidden / heads) % 2 != 0) {
      throw new IllegalArgumentException(
          "--hidden " + hidden + " / --heads " + heads + " (expected: an even head size)");
    }
    if (heads % kvHeads != 0) {
      throw new IllegalArgumentException(
          "--kv-heads " + kvHeads + " (expected: a divisor of --heads " + heads + ")");
    }
    if (!(lr > 0 && lr < 1)) {
      throw new IllegalArgumentException("--lr " + lr + " (expected: (0, 1))");
    }
    if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
      throw new IllegalArgumentException("--min-lr-ratio " + minLrRatio + " (expected: [0, 1])");
    }
    if (warmup < 0 || warmup > steps) {
      throw new IllegalArgumentException(
          "--warmup " + warmup + " (expected: 0..steps=" + steps + ")");
    }
    if (!(weightDecay >= 0 && weightDecay < 1)) {
      throw new IllegalArgumentException("--weight-decay " + weightDecay + " (expected: [0, 1))");
    }
    if (!(clip >= 0)) {
      throw new IllegalArgumentException("--clip " + clip + " (expected: >= 0)");
    }
    if (!(instructMix >= 0 && instructMix <= 1)) {
      throw new IllegalArgumentException("--instruct-mix " + instructMix + " (expected: [0, 1])");
    }
    if (!(distill >= 0 && distill <= 1)) {
      throw new IllegalArgumentException("--distill " + distill + " (expected: [0, 1])");
    }
    if (!(longMix >= 0 && refMix >= 0 && instructMix + longMix + refMix <= 1 + 1e-9)) {
      throw new IllegalArgumentException(
          "--instruct-mix "
              + instructMix
              + " --long-mix "
              + longMix
              + " --ref-mix "
              + refMix
              + " (expected: each >= 0, sum <= 1)");
    }
    if (!LLAMA.equals(arch) && !QWEN2.equals(arch)) {
      throw new IllegalArgumentException("--arch " + arch + " (expected: llama or qwen2)");
    }
    if (seq < 0 || seq > context || (seq > 0 && seq < 8)) {
      throw new IllegalArgumentException(
          "--seq " + seq + " (expected: 0 for the context, or 8.." + context + ")");
    }
    if (taskTokens < 0 || taskTokens > (seq > 0 ? seq : context)) {
      throw new IllegalArgumentException(
          "--task-tokens "
              + taskTokens
              + " (expected: 0 for the row, or at most the row length "
              + (seq > 0 ? seq : context)
              + ")");
    }
    if (distill > 0 && teacher == null) {
      throw new IllegalArgumentException(
          "--distill " + distill + " without --teacher (expected: a teacher model directory)");
    }
  }

  private static void positive(String flag, int value) {
    if (value <= 0) {
      throw new IllegalArgumentException("--" + flag + " " + value + " (expected: > 0)");
    }
  }

  /** Length of a training row: {@code seq} when set, else the context. */
  public int rowLength() {
    return seq > 0 ? seq : context;
  }

  /** Most tokens of one long-task instance: {@code taskTokens} when set, else the row. */
  public int maxTaskTokens() {
    return taskTokens > 0 ? taskTokens : rowLength();
  }

  /** Tokens the optimizer sees per step. */
  public long tokensPerStep() {
    return (long) batch * rowLength();
  }

  /** The flags that reproduce this config, in order (paths relative as given). */
  public Map<String, String> flags() {
    Map<String, String> f = new LinkedHashMap<>();
    f.put("name", name);
    f.put("hidden", Integer.toString(hidden));
    f.put("layers", Integer.toString(layers));
    f.put("heads", Integer.toString(heads));
    f.put("kv-heads", Integer.toString(kvHeads));
    f.put("intermediate", Integer.toString(intermediate));
    f.put("context", Integer.toString(context));
    f.put("vocab", Integer.toString(vocab));
    f.put("batch", Integer.toString(batch));
    f.put("steps", Integer.toString(steps));
    f.put("lr", Double.toString(lr));
    f.put("min-lr-ratio", Double.toString(minLrRatio));
    f.put("warmup", Integer.toString(warmup));
    f.put("weight-decay", Double.toString(weightDecay));
    f.put("clip", Double.toString(clip));
    f.put("seed", Long.toString(seed));
    f.put("eval-every", Integer.toString(evalEvery));
    f.put("eval-windows", Integer.toString(evalWindows));
    f.put("save-every", Integer.toString(saveEvery));
    if (init != null) {
      f.put("init", init.toString());
    }
    f.put("instruct-mix", Double.toString(instructMix));
    if (teacher != null) {
      f.put("teacher", teacher.toString());
      f.put("distill", Double.toString(distill));
    }
    // Only when used, so configs from before the tasks keep their flags (and resumable state).
    if (longMix > 0) {
      f.put("long-mix", Double.toString(longMix));
    }
    if (refMix > 0) {
      f.put("ref-mix", Double.toString(refMix));
    }
    if (!LLAMA.equals(arch)) {
      f.put("arch", arch);
    }
    if (seq > 0) {
      f.put("seq", Integer.toString(seq));
    }
    if (taskTokens > 0) {
      f.put("task-tokens", Integer.toString(taskTokens));
    }
    return f;
  }

  /** Learning rate at {@code step} (0-based): linear warm-up, then cosine down to the floor. */
  public double lrAt(int step) {
    if (warmup > 0 && step < warmup) {
      return lr * (step + 1) / warmup;
    }
    double progress = steps == warmup ? 1.0 : (double) (step - warmup) / (steps - warmup);
    progress = Math.min(1.0, Math.max(0.0, progress));
    double cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
    return lr * (minLrRatio + (1 - minLrRatio) * cosine);
  }
}
