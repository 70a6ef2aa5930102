package io.draftmesh.zoo;

import com.google.gson.GsonBuilder;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.ModelConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a trained model's card ({@code README.md}) and its machine-readable twin ({@code
 * training.json}): shape, parameters, tokens seen, validation bits/byte, loss curve, the command
 * that reproduces it, data and licences.
 */
final class ModelCard {
  private ModelCard() {}

  static void write(
      Path dir,
      TrainConfig config,
      Trainer.Result r,
      Trainer.Data data,
      String command,
      DType dtype)
      throws IOException {
    ModelConfig mc = r.model();
    long weightBytes = Files.size(dir.resolve("model.safetensors"));
    double epochs = (double) r.tokens() / data.train().size();
    String purpose =
        config.instructMix() > 0
            ? "fine-tuned from `"
                + config.init()
                + "` to follow DraftMesh's instruction template (see below); the aligned model"
                + " of the nudging pair"
            : config.init() != null
                ? "continued from `"
                    + config.init()
                    + "`"
                    + (config.longMix() > 0
                        ? String.format(
                            " at %d-token sequences for a %d-token context (RoPE has no"
                                + " parameters: the same weights, a longer"
                                + " max_position_embeddings) on text mixed with long-context"
                                + " tasks,",
                            config.rowLength(), config.context())
                        : "")
                : config.teacher() != null
                    ? String.format(
                        "trained from scratch, distilled from `%s` (loss: %.0f%% cross-entropy"
                            + " against the teacher's next-token distribution, %.0f%% against the"
                            + " text's next token),",
                        config.teacher(), 100 * config.distill(), 100 * (1 - config.distill()))
                    : "trained from scratch";
    StringBuilder md = new StringBuilder();
    md.append("# draftmesh/").append(config.name()).append("\n\n");
    md.append(
        String.format(
            "A %,d-parameter "
                + family(mc)
                + " language model, %s by DraftMesh's own trainer"
                + " (`io.draftmesh.zoo.Trainer`, the engine's `LlamaModel` with DJL autograd) on the"
                + " King James Bible and the BSD fortune cookies. Tiny and honest: it writes"
                + " KJV-flavoured English and fortune-cookie one-liners, nothing more.%n%n",
            mc.numParameters(),
            purpose));
    md.append("| | |\n|---|---|\n");
    row(
        md,
        "architecture",
        String.format(
            "%s: hidden %d, %d layers, %d heads (%d kv heads, head dim %d), SwiGLU %d, tied"
                + " embeddings, RoPE θ=%.0f, RMSNorm ε=%s",
            mc.architecture(),
            mc.hiddenSize(),
            mc.numLayers(),
            mc.numHeads(),
            mc.numKvHeads(),
            mc.headDim(),
            mc.intermediateSize(),
            mc.ropeTheta(),
            mc.rmsNormEps()));
    row(md, "parameters", String.format("%,d", mc.numParameters()));
    row(md, "context", mc.maxPositionEmbeddings() + " tokens");
    row(
        md,
        "tokenizer",
        String.format(
            "byte-level BPE, %,d tokens (ids 0–3: `%s`, `%s`, `%s`, `%s`), "
                + (mc.vocabSize() == ZooTokenizer.DEFAULT_VOCAB_SIZE
                    ? "shared by the zoo's Llama models"
                    : "this model's own")
                + "; sha256 `%s`",
            mc.vocabSize(),
            ZooTokenizer.END_OF_TEXT,
            ZooTokenizer.USER,
            ZooTokenizer.ASSISTANT,
            ZooTokenizer.END,
            data.tokenizer().sha256()));
    row(md, "weights", String.format("%s safetensors, %.1f MB", dtype, weightBytes / 1e6));
    row(
        md,
        "training",
        String.format(
            "%,d steps × %d sequences × %d tokens = **%,d tokens seen** (%.2f passes over the"
                + " %,d-token train split)%s",
            r.steps(),
            config.batch(),
            config.rowLength(),
            r.tokens(),
            epochs,
            data.train().size(),
            (config.instructMix() > 0
                    ? String.format(
                        "; %.0f%% of sequences packed with instruction examples",
                        100 * config.instructMix())
                    : "")
                + (config.longMix() > 0 || config.refMix() > 0
                    ? String.format(
                        "; %.0f%% of sequences %s (`LongTasks`) and %.0f%% referenced verses"
                            + " (`TaskRows`)",
                        100 * config.longMix(),
                        config.maxTaskTokens() < config.rowLength()
                            ? String.format(
                                "packed with long-context task instances of %d–%d tokens",
                                TaskRows.MIN_TASK_TOKENS, config.maxTaskTokens())
                            : "one long-context task instance",
                        100 * config.refMix())
                    : "")));
    row(
        md,
        "optimizer",
        String.format(
            "AdamW (β=%.2f/%.2f, ε=%.0e, decoupled weight decay %.2f on matrices), peak lr %.1e,"
                + " %d warm-up steps, cosine to %.0f%% of peak, global-norm clip %.1f, seed %d",
            Trainer.BETA1,
            Trainer.BETA2,
            Trainer.EPS,
            config.weightDecay(),
            config.lr(),
            config.warmup(),
            100 * config.minLrRatio(),
            config.clip(),
            config.seed()));
    row(
        md,
        "compute",
        String.format(
            "%.1f min, %,.0f tokens/s on %d CPU threads (%s)",
            r.seconds() / 60,
            r.tokensPerSecond(),
            Runtime.getRuntime().availableProcessors(),
            System.getProperty("os.arch")));
    row(
        md,
        "validation",
        String.format(
            "**%.4f bits/byte** (%.3f nats/token) on the whole held-out split (%,d tokens), with"
                + " the saved %s weights loaded through the serving loader",
            r.validBitsPerByte(), r.validNatsPerToken(), data.valid().size(), dtype));
    row(
        md,
        "final train loss",
        String.format("%.3f nats/token (mean of the last 50 steps)", r.trainLoss()));
    md.append("\n![loss curve](loss-curve.png)\n\n");
    if (config.instructMix() > 0) {
      md.append("## Instruction template\n\n");
      md.append(
          "```\n<|endoftext|><|user|>{instruction}<|assistant|>Answer: {answer}<|end|>\n```\n\n");
      md.append(
          "Tasks: `Continue the text: …`, `Repeat: …`, `What is the first word of: …`, `What is"
              + " the last word of: …`, built from train-split verses and fortunes. A reply"
              + " complies when it is `Answer: ` + text + `<|end|>` with no other special token;"
              + " `./draftmesh eval zoo` measures it on held-out prompts. Generation stops at"
              + " `<|end|>` (eos ids 3 and 0).\n\n");
    }
    md.append("## Reproduce\n\n```\n").append(command).append("\n```\n\n");
    md.append(
        "The corpus, split and tokenizer are rebuilt deterministically by the same command"
            + " (Debian packages `bible-kjv`, `bible-kjv-text`, `fortunes`). Retraining reproduces"
            + " the numbers above within run-to-run noise of the native kernels.");
    Path dependsOn = config.init() != null ? config.init() : config.teacher();
    if (dependsOn != null) {
      md.append(" It reads `").append(dependsOn).append("`, which must be the committed model.");
    }
    md.append("\n\n## Data and licences\n\n");
    md.append(
        "- King James Version of the Bible (Debian `bible-kjv-text`): public domain (the"
            + " copyright of the 1611 text has expired; Crown letters patent in the UK).\n"
            + "- Fortune cookies (Debian `fortunes`, from BSD `fortune`): BSD licence, Copyright (c)"
            + " 1991 The Regents of the University of California (see"
            + " `/usr/share/doc/fortunes/copyright`); the offensive set is not used.\n"
            + "- Split: a document (KJV chapter or fortune) is held out when the first two bytes of"
            + " the SHA-256 of its text fall below 3% of the range.\n");
    Files.writeString(dir.resolve("README.md"), md.toString(), StandardCharsets.UTF_8);

    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", config.name());
    m.put("parameters", mc.numParameters());
    m.put("steps", r.steps());
    m.put("tokens_seen", r.tokens());
    m.put("train_tokens", data.train().size());
    m.put("valid_tokens", data.valid().size());
    m.put("valid_bits_per_byte", r.validBitsPerByte());
    m.put("valid_nats_per_token", r.validNatsPerToken());
    m.put("train_loss", r.trainLoss());
    m.put("seconds", r.seconds());
    m.put("tokens_per_second", r.tokensPerSecond());
    m.put("dtype", dtype.torchName());
    m.put("tokenizer_sha256", data.tokenizer().sha256());
    m.put("command", command);
    m.put("config", config.flags());
    m.put("valid_curve", r.validCurve());
    Files.writeString(
        dir.resolve("training.json"),
        new GsonBuilder().setPrettyPrinting().create().toJson(m) + "\n",
        StandardCharsets.UTF_8);
  }

  /** "Llama-architecture" or "Qwen2-architecture (q/k/v biases)". */
  private static String family(ModelConfig mc) {
    return mc.attentionBias() ? "Qwen2-architecture (q/k/v biases)" : "Llama-architecture";
  }

  private static void row(StringBuilder md, String key, String value) {
    md.append("| ").append(key).append(" | ").append(value).append(" |\n");
  }
}
