package io.draftmesh.zoo;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import java.util.List;

/**
 * AdamW (Loshchilov and Hutter 2019) over a fixed list of parameter arrays, updated in place: Adam
 * moments with bias correction, weight decay decoupled from the gradient ({@code p -= lr * wd * p})
 * and applied to matrices only (not to norm gains), and global-norm gradient clipping before the
 * update.
 *
 * <p>The moments live in a manager of their own (a child of the one given), so they neither leak
 * into nor get freed with the model's arrays. {@link #step} runs in its own {@link NDScope} and
 * zeroes the parameters' gradients afterwards (PyTorch accumulates them across backward passes).
 * Call it outside a gradient collector.
 */
final class AdamW implements AutoCloseable {
  private final List<NDArray> params;
  private final NDManager manager;
  private final NDArray[] m; // first moments, one per parameter, same shapes
  private final NDArray[] v; // second moments
  private final boolean[] decay;
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private long steps;

  AdamW(
      List<NDArray> params,
      NDManager parent,
      double beta1,
      double beta2,
      double eps,
      double weightDecay) {
    this.params = List.copyOf(params);
    this.manager = parent.newSubManager();
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    int n = this.params.size();
    this.m = new NDArray[n];
    this.v = new NDArray[n];
    this.decay = new boolean[n];
    for (int i = 0; i < n; i++) {
      NDArray p = this.params.get(i);
      m[i] = manager.zeros(p.getShape(), p.getDataType());
      v[i] = manager.zeros(p.getShape(), p.getDataType());
      decay[i] = p.getShape().dimension() >= 2;
    }
  }

  /** Updates taken so far (the bias-correction step count). */
  long steps() {
    return steps;
  }

  /**
   * Clips the gradients to global L2 norm {@code maxNorm} (0 = no clipping), applies one AdamW
   * update with learning rate {@code lr} and zeroes the gradients. A step whose gradient norm is
   * not finite is skipped (gradients zeroed, moments and step count untouched).
   *
   * @return the global gradient norm before clipping
   */
  double step(double lr, double maxNorm) {
    double norm;
    // In-place updates of leaf parameters are legal only unrecorded. PyTorch's grad mode is per
    // thread and on in a fresh one, so this cannot rely on the caller's thread having it off.
    try (NDScope scope = new NDScope();
        GradMode off = GradMode.disabled()) {
      scope.suppressNotUsedWarning();
      off.suppressNotUsedWarning();
      NDArray[] g = new NDArray[params.size()];
      NDArray sumSq = null;
      for (int i = 0; i < g.length; i++) {
        g[i] = params.get(i).getGradient();
        NDArray s = g[i].square().sum();
        sumSq = sumSq == null ? s : sumSq.add(s);
      }
      norm = Math.sqrt(sumSq.getFloat());
      if (Double.isFinite(norm)) {
        steps++;
        double clip = maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1.0;
        double bc1 = 1 - Math.pow(beta1, steps);
        double bc2 = 1 - Math.pow(beta2, steps);
        for (int i = 0; i < g.length; i++) {
          NDArray p = params.get(i);
          NDArray grad = clip == 1.0 ? g[i] : g[i].mul((float) clip);
          m[i].muli((float) beta1).addi(grad.mul((float) (1 - beta1)));
          v[i].muli((float) beta2).addi(grad.square().muli((float) (1 - beta2)));
          if (decay[i] && weightDecay > 0) {
            p.muli((float) (1 - lr * weightDecay));
          }
          // p -= lr * mhat / (sqrt(vhat) + eps), mhat = m / bc1, vhat = v / bc2
          NDArray denom = v[i].div((float) bc2).sqrt().addi((float) eps);
          p.subi(m[i].div(denom).muli((float) (lr / bc1)));
        }
      }
    }
    zeroGradients();
    return norm;
  }

  /** Sets every parameter's accumulated gradient to zero. */
  void zeroGradients() {
    for (NDArray p : params) {
      if (p instanceof PtNDArray pt) {
        JniUtils.zeroGrad(pt);
      } else {
        try (NDScope scope = new NDScope()) {
          scope.suppressNotUsedWarning();
          NDArray g = p.getGradient();
          g.subi(g);
        }
      }
    }
  }

  /** The moments as float arrays, for a resumable checkpoint: m0, v0, m1, v1, ... */
  float[][] exportState() {
    float[][] out = new float[2 * params.size()][];
    for (int i = 0; i < params.size(); i++) {
      out[2 * i] = m[i].toFloatArray();
      out[2 * i + 1] = v[i].toFloatArray();
    }
    return out;
  }

  /** Restores moments and step count saved by {@link #exportState}. */
  void importState(float[][] state, long steps) {
    if (state.length != 2 * params.size()) {
      throw new IllegalArgumentException(
          "optimizer state has " + state.length + " arrays (expected: " + 2 * params.size() + ")");
    }
    for (int i = 0; i < params.size(); i++) {
      m[i].set(state[2 * i]);
      v[i].set(state[2 * i + 1]);
    }
    this.steps = steps;
  }

  /** Arrays this optimizer owns (constant: the moments). */
  int liveArrays() {
    return manager.getManagedArrays().size();
  }

  @Override
  public void close() {
    manager.close();
  }
}
