package io.draftmesh.zoo;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import java.util.List;

/**
 * Seeded training batches: random windows of the train token stream and, for instruction tuning,
 * rows packed with templated instruction examples whose loss is taken on the replies only.
 *
 * <p>Everything random is drawn from the {@link SplitMix64} passed in, in a fixed order, so a
 * restored generator state continues the exact batch sequence of an interrupted run.
 */
final class Batches {
  /**
   * One batch: row-major (rows, len) inputs and next-token targets, and a loss weight per target
   * (null: every target counts).
   */
  record Batch(long[] inputs, long[] targets, float[] weights, int rows, int len) {}

  private final int[] stream;
  private final int rows;
  private final int len;
  private final double instructMix;
  private final List<String> units;
  private final TextTokenizer tokenizer;
  private TaskRows taskRows;
  private double longMix;
  private double refMix;

  /**
   * @param stream the train token stream
   * @param instructMix probability that a row is packed with instruction examples
   * @param units single-line texts to build instruction examples from (unused when mix is 0)
   */
  Batches(
      int[] stream,
      int rows,
      int len,
      double instructMix,
      List<String> units,
      TextTokenizer tokenizer) {
    if (stream.length < len + 2) {
      throw new IllegalArgumentException(
          "train stream has "
              + stream.length
              + " tokens (expected: > context + 1 = "
              + (len + 1)
              + ")");
    }
    if (instructMix > 0 && (units == null || units.isEmpty())) {
      throw new IllegalArgumentException("instruction mix " + instructMix + " but no texts");
    }
    this.stream = stream;
    this.rows = rows;
    this.len = len;
    this.instructMix = instructMix;
    this.units = units;
    this.tokenizer = tokenizer;
  }

  /**
   * Adds long-context task rows (probability {@code longMix}) and referenced-verse rows ({@code
   * refMix}) after the instruction rows' share; the rest stay plain text.
   */
  Batches tasks(TaskRows rows, double longMix, double refMix) {
    if (instructMix + longMix + refMix > 1 + 1e-9) {
      throw new IllegalArgumentException(
          "--instruct-mix + --long-mix + --ref-mix = "
              + (instructMix + longMix + refMix)
              + " (expected: <= 1)");
    }
    this.taskRows = rows;
    this.longMix = longMix;
    this.refMix = refMix;
    return this;
  }

  Batch next(SplitMix64 rng) {
    long[] inputs = new long[rows * len];
    long[] targets = new long[rows * len];
    float[] weights = null;
    boolean mixed = instructMix > 0 || longMix > 0 || refMix > 0;
    for (int r = 0; r < rows; r++) {
      // One draw per row decides its kind (none without a mix, as before tasks existed).
      double u = mixed ? rng.nextDouble() : 1;
      boolean special = u < instructMix + longMix + refMix;
      if (special && weights == null) {
        weights = new float[rows * len];
        java.util.Arrays.fill(weights, 0, r * len, 1f);
      }
      if (u < instructMix) {
        packInstructions(rng, inputs, targets, weights, r * len);
      } else if (u < instructMix + longMix) {
        taskRows.longTask(rng, inputs, targets, weights, r * len);
      } else if (u < instructMix + longMix + refMix) {
        taskRows.referencedVerses(rng, inputs, targets, weights, r * len);
      } else {
        int start = rng.nextInt(stream.length - len - 1);
        for (int t = 0; t < len; t++) {
          inputs[r * len + t] = stream[start + t];
          targets[r * len + t] = stream[start + t + 1];
        }
        if (weights != null) {
          java.util.Arrays.fill(weights, r * len, (r + 1) * len, 1f);
        }
      }
    }
    return new Batch(inputs, targets, weights, rows, len);
  }

  /** Fills one row with consecutive examples; the last one is cut at the row's end. */
  private void packInstructions(
      SplitMix64 rng, long[] inputs, long[] targets, float[] weights, int offset) {
    int[] ids = new int[len + 1];
    boolean[] trained = new boolean[len + 1];
    int filled = 0;
    while (filled < len + 1) {
      String unit = units.get(rng.nextInt(units.size()));
      Instructions.Encoded e = Instructions.encode(Instructions.example(unit, rng), tokenizer);
      int n = Math.min(e.ids().length, len + 1 - filled);
      System.arraycopy(e.ids(), 0, ids, filled, n);
      System.arraycopy(e.trained(), 0, trained, filled, n);
      filled += n;
    }
    for (int t = 0; t < len; t++) {
      inputs[offset + t] = ids[t];
      targets[offset + t] = ids[t + 1];
      weights[offset + t] = trained[t + 1] ? 1f : 0f;
    }
  }
}
