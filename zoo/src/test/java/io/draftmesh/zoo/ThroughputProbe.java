package io.draftmesh.zoo;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.model.LlamaModel;
import java.nio.file.Files;
import java.nio.file.Path;

/** Dev tool: measures train-step time for a shape. Args: hidden layers heads inter batch ctx steps */
public class ThroughputProbe {
  public static void main(String[] a) throws Exception {
    Runtimes.configureDjl(0);
    int hidden = Integer.parseInt(a[0]), layers = Integer.parseInt(a[1]), heads = Integer.parseInt(a[2]);
    int inter = Integer.parseInt(a[3]), batch = Integer.parseInt(a[4]), ctx = Integer.parseInt(a[5]);
    int steps = Integer.parseInt(a[6]);
    int vocab = a.length > 7 ? Integer.parseInt(a[7]) : 4096;
    TrainConfig c = new TrainConfig("p", hidden, layers, heads, heads, inter, ctx, vocab, batch, steps, 1e-3, 0.1, 1, 0.1, 1.0, 1, 1000, 8, 1000, null, 0);
    Path dir = Files.createTempDirectory("probe");
    RandomCheckpoint.write(dir, Trainer.modelConfig(c), 1, DType.F32, 0);
    System.out.println("grad mode at start: " + GradMode.enabled());
    try (NDManager base = NDManager.newBaseManager(); Checkpoint ck = Checkpoint.load(dir);
        LlamaModel m = LlamaModel.load(ck, base, ctx)) {
      System.out.printf("params %,d%n", m.config().numParameters());
      for (NDArray p : m.parameters()) p.setRequiresGradient(true);
      AdamW opt = new AdamW(m.parameters(), base, 0.9, 0.95, 1e-8, 0.1);
      NDManager bm = base.newSubManager();
      SplitMix64 rng = new SplitMix64(1);
      long fwd = 0, bwd = 0, upd = 0;
      for (int s = 0; s < steps; s++) {
        long[] x = new long[batch * ctx], y = new long[batch * ctx];
        for (int i = 0; i < x.length; i++) { x[i] = rng.nextInt(vocab); y[i] = rng.nextInt(vocab); }
        long t0 = System.nanoTime(), t1, t2;
        try (NDScope scope = new NDScope(); GradientCollector gc = Engine.getInstance().newGradientCollector()) {
          NDArray loss = Evaluation.tokenNll(m.forwardFull(bm.create(x, new Shape(batch, ctx))), bm.create(y, new Shape(batch, ctx, 1))).mean();
          loss.getFloat();
          t1 = System.nanoTime();
          gc.backward(loss);
          t2 = System.nanoTime();
        }
        opt.step(1e-3, 1.0);
        long t3 = System.nanoTime();
        if (s >= 2) { fwd += t1 - t0; bwd += t2 - t1; upd += t3 - t2; }
        if (s == 2 || s == steps - 1) System.out.printf("step %d live %d%n", s, base.getManagedArrays().size());
      }
      int n = steps - 2;
      double stepMs = (fwd + bwd + upd) / 1e6 / n;
      System.out.printf("fwd %.1f ms, bwd %.1f ms, adamw %.1f ms; step %.1f ms; %.0f tok/s%n",
          fwd / 1e6 / n, bwd / 1e6 / n, upd / 1e6 / n, stepMs, batch * ctx / (stepMs / 1000));
    }
  }
}
