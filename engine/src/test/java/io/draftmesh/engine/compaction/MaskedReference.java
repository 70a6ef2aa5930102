package io.draftmesh.engine.compaction;

import io.draftmesh.engine.checkpoint.Checkpoint;
import io.draftmesh.engine.checkpoint.ModelConfig;
import io.draftmesh.engine.kv.BlockTable;
import io.draftmesh.engine.kv.KvBlockPool;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * An independent decode step, written from the Hugging Face Llama/Qwen2 equations in plain Java
 * (double accumulation): one new token at a given RoPE position attends, per layer and KV head, to
 * the chosen positions of a full, uncompacted cache plus the tokens this reference fed itself. It
 * is "a full-cache forward whose attention is masked to the kept keys", without going through
 * either backend's attention or the compactor.
 */
final class MaskedReference {
  private final ModelConfig c;
  private final float[] embed; // (vocab, hidden)
  private final float[] lmHead; // (vocab, hidden)
  private final float[] finalNorm; // (hidden)
  private final float[][] wq, wk, wv, wo, bq, bk, bv, gate, up, down, inNorm, postNorm;
  private final double[] invFreq; // (headDim / 2)

  // The history: a full cache in a pool, and per layer and KV head the positions visible in it.
  private final KvBlockPool pool;
  private final BlockTable table;
  private final int[][][] visible; // (layers, kvHeads, n)
  // Tokens this reference fed: per layer, per token, (kvHeads * headDim) keys and values.
  private final List<List<float[]>> ownKeys = new ArrayList<>();
  private final List<List<float[]>> ownValues = new ArrayList<>();

  MaskedReference(Checkpoint ckpt, KvBlockPool pool, BlockTable table, int[][][] visible) {
    this.c = ckpt.config();
    this.pool = pool;
    this.table = table;
    this.visible = visible;
    embed = read(ckpt, "model.embed_tokens.weight");
    lmHead = c.tieWordEmbeddings() ? embed : read(ckpt, "lm_head.weight");
    finalNorm = read(ckpt, "model.norm.weight");
    int layers = c.numLayers();
    wq = new float[layers][];
    wk = new float[layers][];
    wv = new float[layers][];
    wo = new float[layers][];
    bq = new float[layers][];
    bk = new float[layers][];
    bv = new float[layers][];
    gate = new float[layers][];
    up = new float[layers][];
    down = new float[layers][];
    inNorm = new float[layers][];
    postNorm = new float[layers][];
    for (int l = 0; l < layers; l++) {
      String p = "model.layers." + l + ".";
      wq[l] = read(ckpt, p + "self_attn.q_proj.weight");
      wk[l] = read(ckpt, p + "self_attn.k_proj.weight");
      wv[l] = read(ckpt, p + "self_attn.v_proj.weight");
      wo[l] = read(ckpt, p + "self_attn.o_proj.weight");
      if (c.attentionBias()) {
        bq[l] = read(ckpt, p + "self_attn.q_proj.bias");
        bk[l] = read(ckpt, p + "self_attn.k_proj.bias");
        bv[l] = read(ckpt, p + "self_attn.v_proj.bias");
      }
      gate[l] = read(ckpt, p + "mlp.gate_proj.weight");
      up[l] = read(ckpt, p + "mlp.up_proj.weight");
      down[l] = read(ckpt, p + "mlp.down_proj.weight");
      inNorm[l] = read(ckpt, p + "input_layernorm.weight");
      postNorm[l] = read(ckpt, p + "post_attention_layernorm.weight");
      ownKeys.add(new ArrayList<>());
      ownValues.add(new ArrayList<>());
    }
    invFreq = ModelConfig.RopeScaling.inverseFrequencies(c);
  }

  private static float[] read(Checkpoint ckpt, String name) {
    long n = 1;
    for (long d : ckpt.shape(name)) {
      n *= d;
    }
    FloatBuffer b = FloatBuffer.allocate(Math.toIntExact(n));
    ckpt.tensor(name, b);
    return b.array();
  }

  /** Feeds {@code token} at RoPE position {@code pos}; returns its next-token logits. */
  float[] step(int token, int pos) {
    int hidden = c.hiddenSize();
    int hd = c.headDim();
    int heads = c.numHeads();
    int kvHeads = c.numKvHeads();
    int group = heads / kvHeads;
    double[] x = new double[hidden];
    for (int i = 0; i < hidden; i++) {
      x[i] = embed[token * hidden + i];
    }
    for (int l = 0; l < c.numLayers(); l++) {
      double[] h = rmsNorm(x, inNorm[l]);
      double[] q = linear(wq[l], bq[l], h, heads * hd);
      double[] k = linear(wk[l], bk[l], h, kvHeads * hd);
      double[] v = linear(wv[l], bv[l], h, kvHeads * hd);
      rope(q, heads, pos);
      rope(k, kvHeads, pos);
      float[] kf = new float[k.length];
      float[] vf = new float[v.length];
      for (int i = 0; i < k.length; i++) {
        kf[i] = (float) k[i]; // the cache stores float32
        vf[i] = (float) v[i];
      }
      ownKeys.get(l).add(kf);
      ownValues.get(l).add(vf);
      double[] att = new double[heads * hd];
      ByteBuffer keys = pool.keys(l);
      ByteBuffer values = pool.values(l);
      for (int head = 0; head < heads; head++) {
        int kh = head / group;
        int[] seen = visible[l][kh];
        List<float[]> own = ownKeys.get(l);
        int n = seen.length + own.size();
        double[] s = new double[n];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) {
          double dot = 0;
          for (int d = 0; d < hd; d++) {
            dot += q[head * hd + d] * key(keys, l, kh, j, seen, own, d);
          }
          s[j] = dot / Math.sqrt(hd);
          max = Math.max(max, s[j]);
        }
        double sum = 0;
        for (int j = 0; j < n; j++) {
          s[j] = Math.exp(s[j] - max);
          sum += s[j];
        }
        for (int j = 0; j < n; j++) {
          for (int d = 0; d < hd; d++) {
            att[head * hd + d] += s[j] / sum * key(values, l, kh, j, seen, ownValues.get(l), d);
          }
        }
      }
      add(x, linear(wo[l], null, att, hidden));
      double[] h2 = rmsNorm(x, postNorm[l]);
      int inter = c.intermediateSize();
      double[] g = linear(gate[l], null, h2, inter);
      double[] u = linear(up[l], null, h2, inter);
      for (int i = 0; i < inter; i++) {
        g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
      }
      add(x, linear(down[l], null, g, hidden));
    }
    double[] out = linear(lmHead, null, rmsNorm(x, finalNorm), c.vocabSize());
    float[] logits = new float[out.length];
    for (int i = 0; i < out.length; i++) {
      logits[i] = (float) out[i];
    }
    return logits;
  }

  /** Element d of the j-th visible key (or value): from the pool, then this reference's own. */
  private double key(
      ByteBuffer buf, int layer, int kh, int j, int[] seen, List<float[]> own, int d) {
    int hd = c.headDim();
    if (j < seen.length) {
      long slot = table.slot(seen[j]);
      long off = ((long) kh * pool.slots() + slot) * hd + d;
      return buf.getFloat(Math.toIntExact(off * Float.BYTES));
    }
    return own.get(j - seen.length)[kh * hd + d];
  }

  private double[] rmsNorm(double[] x, float[] w) {
    double ss = 0;
    for (double v : x) {
      ss += v * v;
    }
    double inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i] * inv * w[i];
    }
    return out;
  }

  /** y = W x (+ b), W (out, in) row-major as Hugging Face stores a Linear. */
  private static double[] linear(float[] w, float[] b, double[] x, int out) {
    double[] y = new double[out];
    for (int o = 0; o < out; o++) {
      double s = b == null ? 0 : b[o];
      for (int i = 0; i < x.length; i++) {
        s += w[o * x.length + i] * x[i];
      }
      y[o] = s;
    }
    return y;
  }

  /** Rotate-half RoPE: (a, b) = (x[i], x[i + half]) becomes (a cos - b sin, b cos + a sin). */
  private void rope(double[] x, int count, int pos) {
    int hd = c.headDim();
    int half = hd / 2;
    for (int h = 0; h < count; h++) {
      for (int i = 0; i < half; i++) {
        double angle = pos * invFreq[i];
        double cs = Math.cos(angle);
        double sn = Math.sin(angle);
        double a = x[h * hd + i];
        double b = x[h * hd + i + half];
        x[h * hd + i] = a * cs - b * sn;
        x[h * hd + i + half] = b * cs + a * sn;
      }
    }
  }

  private static void add(double[] x, double[] y) {
    for (int i = 0; i < x.length; i++) {
      x[i] += y[i];
    }
  }
}
