package io.draftmesh.engine.model;

import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.KvBlockPool;
import java.util.List;

/**
 * A loaded Llama-family decoder that serves batched steps over the paged KV pool: what the
 * scheduler drives. Implemented by the DJL/PyTorch backend ({@link LlamaModel}, also the training
 * path and the reference) and the Vector API CPU backend ({@link
 * io.draftmesh.engine.model.cpu.VectorModel}). Both read and write the same {@link KvBlockPool}
 * layout, so a pool's contents mean the same under either.
 *
 * <p>One forward at a time: callers serialize (the scheduler is one thread).
 */
public interface DecoderModel extends AutoCloseable {
  ModelConfig config();

  /** Positions this model can serve: at most max_position_embeddings. */
  int maxContext();

  /**
   * Runs one batched step: each sequence feeds its new tokens, writes their keys/values into its
   * blocks of {@code pool} and attends over its whole history. Returns one result per sequence, in
   * batch order, with the logit rows each asked for (and its attention when captured).
   */
  List<StepResult> forward(List<SeqStep> batch, KvBlockPool pool);

  /** Which backend this is: "djl" or "vector". */
  Backend backend();

  /**
   * How it computes, for logs and engine info: e.g. {@code "vector: float32 weights, 2 threads
   * (measured 0.61 vs 1.02 ms)"}.
   */
  String describe();

  /** The dtype of the weights as held in memory: float32 or float16. */
  String weightDtype();

  @Override
  void close();
}
