package io.draftmesh.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import io.draftmesh.engine.checkpoint.ModelConfig;

/**
 * The weight matmuls of one batch-1 decode step and nothing else: per layer x(1, in) · W^T for the
 * fused qkv, o, fused gate_up and down projections, then lm_head, with {@link Linear#linear} on
 * fresh random arrays of the model's shapes (separate arrays per layer, so each step streams every
 * weight from memory as the model does). A decoder step cannot be faster than this on the same
 * kernels.
 */
final class MatmulFloor implements AutoCloseable {
  private final NDManager manager;
  private final NDArray[][]
      layers; // per layer: wqkv, wo, wGateUp, wDown in torch's (out, in) layout
  private final NDArray lmHead; // (vocab, hidden)
  private final NDArray xHidden; // (1, hidden)
  private final NDArray xAttn; // (1, heads * headDim)
  private final NDArray xInter; // (1, intermediate)
  private final long weightBytes;

  MatmulFloor(ModelConfig c, NDManager parent) {
    manager = parent.newSubManager();
    long hidden = c.hiddenSize();
    long attn = (long) c.numHeads() * c.headDim();
    long qkv = (long) (c.numHeads() + 2 * c.numKvHeads()) * c.headDim();
    long inter = c.intermediateSize();
    layers = new NDArray[c.numLayers()][];
    long elements = (long) c.vocabSize() * hidden;
    for (int l = 0; l < layers.length; l++) {
      layers[l] =
          new NDArray[] {
            random(qkv, hidden),
            random(hidden, attn),
            random(2 * inter, hidden),
            random(hidden, inter)
          };
      elements += qkv * hidden + hidden * attn + 2 * inter * hidden + hidden * inter;
    }
    lmHead = random(c.vocabSize(), hidden);
    xHidden = random(1, hidden);
    xAttn = random(1, attn);
    xInter = random(1, inter);
    weightBytes = elements * Float.BYTES;
  }

  private NDArray random(long rows, long cols) {
    return manager.randomUniform(-0.05f, 0.05f, new Shape(rows, cols), DataType.FLOAT32);
  }

  /** fp32 bytes of every weight one step reads. */
  long weightBytes() {
    return weightBytes;
  }

  /** Runs the matmuls of one decode step and returns the elapsed nanoseconds. */
  long stepNanos() {
    try (NDScope scope = new NDScope()) {
      scope.suppressNotUsedWarning();
      long t0 = System.nanoTime();
      for (NDArray[] w : layers) {
        linear(xHidden, w[0]);
        linear(xAttn, w[1]);
        linear(xHidden, w[2]);
        linear(xInter, w[3]);
      }
      linear(xHidden, lmHead);
      return System.nanoTime() - t0;
    }
  }

  private static void linear(NDArray x, NDArray weight) {
    NDList out = Linear.linear(x, weight);
    out.close();
  }

  @Override
  public void close() {
    manager.close();
  }
}
