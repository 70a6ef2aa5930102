package io.draftmesh.engine.model;

import java.util.Locale;

/**
 * Which implementation of {@link DecoderModel} serves a checkpoint. {@link #AUTO} picks {@link
 * #VECTOR} when it can run (the JVM has the {@code jdk.incubator.vector} module, i.e. was started
 * with {@code --add-modules jdk.incubator.vector}), else {@link #DJL}.
 */
public enum Backend {
  AUTO,
  /** Plain Java over the Vector API on CPU: fused in-place kernels, no per-op overhead. */
  VECTOR,
  /** DJL/PyTorch: the reference, the training path and the path to GPUs. */
  DJL;

  /** The command-line spelling: auto, vector, djl. */
  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Parses {@code auto|vector|djl}; the message names what was expected. */
  public static Backend parse(String text) {
    for (Backend b : values()) {
      if (b.id().equals(text.trim().toLowerCase(Locale.ROOT))) {
        return b;
      }
    }
    throw new IllegalArgumentException(text + " (expected: auto, vector or djl)");
  }

  /** Whether the Vector API module is in this JVM's boot layer. */
  public static boolean vectorAvailable() {
    return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
  }

  /** What {@code this} means on this JVM: AUTO becomes VECTOR or DJL. */
  public Backend resolve() {
    if (this != AUTO) {
      return this;
    }
    return vectorAvailable() ? VECTOR : DJL;
  }
}
