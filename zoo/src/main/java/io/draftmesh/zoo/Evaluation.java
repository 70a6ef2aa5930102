package io.draftmesh.zoo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import io.draftmesh.engine.model.LlamaModel;

/**
 * Held-out loss in bits per byte: the token stream is cut into non-overlapping windows of {@code
 * len + 1} tokens (each window's first token is context only), every other token is predicted with
 * the window so far as context, and
 *
 * <pre>bits/byte = sum(nll in nats) / ln 2 / sum(bytes of the predicted tokens)</pre>
 *
 * (the brief's "nats/token × tokens/bytes ÷ ln 2"), counting special tokens as one byte.
 */
final class Evaluation {
  private Evaluation() {}

  /** Summed negative log-likelihood over {@code tokens} predicted tokens covering {@code bytes}. */
  record Loss(double nats, long tokens, long bytes) {
    double natsPerToken() {
      return nats / tokens;
    }

    double bitsPerByte() {
      return nats / Math.log(2) / bytes;
    }
  }

  /** Number of evaluation windows in a stream. */
  static int windows(int streamLength, int len) {
    return Math.max(0, (streamLength - 1) / len);
  }

  /**
   * Evaluates {@code model} on up to {@code maxWindows} windows spread evenly over {@code stream}
   * (all windows when {@code maxWindows <= 0} or larger than their number), {@code batch} windows
   * per forward. Runs with gradient recording off; every intermediate is freed.
   */
  static Loss evaluate(
      LlamaModel model,
      NDManager manager,
      int[] stream,
      int[] byteLengths,
      int len,
      int batch,
      int maxWindows) {
    int total = windows(stream.length, len);
    if (total == 0) {
      throw new IllegalArgumentException(
          "evaluation stream has " + stream.length + " tokens (expected: > " + len + ")");
    }
    int count = maxWindows <= 0 ? total : Math.min(total, maxWindows);
    double nats = 0;
    long tokens = 0;
    long bytes = 0;
    try (GradMode noGrad = GradMode.disabled()) {
      noGrad.suppressNotUsedWarning();
      for (int first = 0; first < count; first += batch) {
        int b = Math.min(batch, count - first);
        long[] inputs = new long[b * len];
        long[] targets = new long[b * len];
        for (int i = 0; i < b; i++) {
          int w = (int) ((long) (first + i) * total / count);
          int start = w * len;
          for (int t = 0; t < len; t++) {
            inputs[i * len + t] = stream[start + t];
            targets[i * len + t] = stream[start + t + 1];
            bytes += byteLengths[stream[start + t + 1]];
          }
        }
        try (NDScope scope = new NDScope()) {
          scope.suppressNotUsedWarning();
          NDArray x = manager.create(inputs, new Shape(b, len));
          NDArray y = manager.create(targets, new Shape(b, len, 1));
          float[] nll = tokenNll(model.forwardFull(x).logSoftmax(2), y).toFloatArray();
          for (float v : nll) {
            nats += v;
          }
        }
        tokens += (long) b * len;
      }
    }
    return new Loss(nats, tokens, bytes);
  }

  /**
   * Per-token negative log-likelihood (B, T, 1) of {@code targets} (B, T, 1) under {@code logProbs}
   * (B, T, vocab), the log-softmax of the logits.
   */
  static NDArray tokenNll(NDArray logProbs, NDArray targets) {
    return logProbs.gather(targets, 2).neg();
  }
}
