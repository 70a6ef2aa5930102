package io.draftmesh.worker;

import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.runtime.EngineConfig;
import io.draftmesh.engine.runtime.InferenceEngine;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** A tiny random Llama checkpoint and small engine configs for tests. */
final class TinyModel {
  static final int MAX_CONTEXT = 128;
  static final int MAX_TOKENS_PER_OP = 16;
  static final int MAX_SESSIONS = 4;
  static final int BLOCK_SIZE = 16;

  private TinyModel() {}

  /** Writes the checkpoint under {@code dir} and returns its directory. */
  static Path write(Path dir) {
    Path model = dir.resolve("tiny-llama");
    try {
      RandomCheckpoint.write(model, RandomCheckpoint.tinyLlama(), 7, DType.F32, 0);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return model;
  }

  /** 4 MiB of KV in blocks of 16, 4 sessions, k <= 16, context 128. */
  static EngineConfig config(Path model) {
    return new EngineConfig(
        model, 4L << 20, BLOCK_SIZE, MAX_SESSIONS, MAX_TOKENS_PER_OP, 64, MAX_CONTEXT);
  }

  static InferenceEngine load(EngineConfig config) {
    return InferenceEngine.load(config);
  }

  /** A deterministic prompt of n ids. */
  static int[] prompt(int n, int seed) {
    int[] p = new int[n];
    for (int i = 0; i < n; i++) {
      p[i] = 2 + (i * 37 + seed * 101) % 500;
    }
    return p;
  }
}
