package io.draftmesh.engine.sampling;

import java.util.ArrayList;
import java.util.List;

/**
 * A request's sampling transforms as one function from raw logits to the distribution tokens are
 * drawn from. Built from {@link SamplingParams} in the order temperature, top-k, top-p, min-p
 * (Hugging Face's warper order); the result is renormalised over the surviving tokens. Immutable
 * and thread-safe; each call allocates its own O(V) working set.
 *
 * <p>Speculative decoding applies the same pipeline to draft and target logits, so the verifier
 * compares like with like.
 */
public final class SamplingPipeline {
  private final boolean greedy;
  private final List<LogitsTransform> transforms;

  private SamplingPipeline(boolean greedy, List<LogitsTransform> transforms) {
    this.greedy = greedy;
    this.transforms = List.copyOf(transforms);
  }

  /**
   * The pipeline for {@code params}, validated first (INVALID_ARGUMENT naming the field). Off
   * settings (0, and top-p 1, temperature 1) add no step. A top-k above the vocabulary keeps all.
   */
  public static SamplingPipeline of(SamplingParams params) {
    params.validate(Integer.MAX_VALUE);
    if (params.isGreedy()) {
      return greedy();
    }
    List<LogitsTransform> steps = new ArrayList<>(4);
    if (params.temperature() != 1f) {
      steps.add(new LogitsTransform.Temperature(params.temperature()));
    }
    if (params.topK() > 0) {
      steps.add(new LogitsTransform.TopK(params.topK()));
    }
    if (params.topP() > 0f && params.topP() < 1f) {
      steps.add(new LogitsTransform.TopP(params.topP()));
    }
    if (params.minP() > 0f) {
      steps.add(new LogitsTransform.MinP(params.minP()));
    }
    return new SamplingPipeline(false, steps);
  }

  /** Applies {@code transforms} in the given order (none: plain softmax). */
  public static SamplingPipeline of(LogitsTransform... transforms) {
    return new SamplingPipeline(false, List.of(transforms));
  }

  /** Greedy decoding: {@link #probs} is the one-hot distribution on the argmax. */
  public static SamplingPipeline greedy() {
    return new SamplingPipeline(true, List.of());
  }

  public boolean isGreedy() {
    return greedy;
  }

  public List<LogitsTransform> transforms() {
    return transforms;
  }

  /**
   * The transformed distribution of {@code logits} (length vocabSize; not modified). Sparse, most
   * likely first, when truncation leaves fewer than vocabSize/4 tokens; otherwise dense. For a
   * greedy pipeline, the one-hot on {@link Distributions#argmax} (lowest id among ties) — callers
   * usually special-case greedy and take the argmax directly. Throws INTERNAL on NaN or non-finite
   * max logits.
   */
  public ProbDist probs(float[] logits) {
    if (greedy) {
      Distributions.finiteMax(logits);
      return ProbDist.oneHot(logits.length, Distributions.argmax(logits));
    }
    Candidates c = Candidates.of(logits);
    for (LogitsTransform t : transforms) {
      t.apply(c);
    }
    return c.toProbDist();
  }

  @Override
  public String toString() {
    return greedy ? "SamplingPipeline[greedy]" : "SamplingPipeline" + transforms;
  }
}
