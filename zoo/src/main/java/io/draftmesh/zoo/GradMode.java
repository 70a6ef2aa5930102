package io.draftmesh.zoo;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * PyTorch's per-thread autograd switch (on in a fresh thread), as a scope: {@link #disabled()}
 * turns recording off (inference, validation, optimizer updates) and {@link #close()} restores what
 * was there.
 */
final class GradMode implements AutoCloseable {
  private final boolean previous;

  private GradMode(boolean enabled) {
    Engine.getInstance(); // loads the native library
    this.previous = JniUtils.isGradMode();
    JniUtils.setGradMode(enabled);
  }

  static GradMode disabled() {
    return new GradMode(false);
  }

  /** Marks a try-with-resources scope as used (javac lints scopes whose body never names them). */
  void suppressNotUsedWarning() {}

  static boolean enabled() {
    Engine.getInstance();
    return JniUtils.isGradMode();
  }

  @Override
  public void close() {
    JniUtils.setGradMode(previous);
  }
}
