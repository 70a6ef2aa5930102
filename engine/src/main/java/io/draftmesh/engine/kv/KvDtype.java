package io.draftmesh.engine.kv;

/**
 * The element type of the paged KV pool. float16 halves the pool's memory and what every decode
 * step reads from it (llama.cpp's default); keys and values are rounded to nearest-even once, when
 * written, and computed with in float32.
 */
public enum KvDtype {
  FLOAT32("float32", Float.BYTES),
  FLOAT16("float16", Short.BYTES);

  /** The largest finite float16, 65504: a key or value beyond it does not fit a float16 pool. */
  public static final float FLOAT16_MAX = 65504f;

  private final String id;
  private final int bytes;

  KvDtype(String id, int bytes) {
    this.id = id;
    this.bytes = bytes;
  }

  /** The name flags, configs and {@code ModelSpec.dtype} use: float32 or float16. */
  public String id() {
    return id;
  }

  /** Bytes of one element. */
  public int bytes() {
    return bytes;
  }

  /** The failure of a step that writes {@code worst} (NaN or beyond ±65504) into a float16 pool. */
  public static IllegalStateException outOfRange(float worst) {
    return new IllegalStateException(
        "kv dtype float16: a key or value is "
            + worst
            + " (expected: within float16's range, |x| <= 65504; serve this model with --kv-dtype"
            + " float32)");
  }

  /** The dtype named {@code text}: float32 or float16; otherwise IllegalArgumentException. */
  public static KvDtype parse(String text) {
    for (KvDtype d : values()) {
      if (d.id.equals(text)) {
        return d;
      }
    }
    throw new IllegalArgumentException(text + " (expected: float32 or float16)");
  }
}
