package io.draftmesh.engine.runtime;

import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import java.nio.file.Path;

/**
 * How one engine is sized. Validated on construction.
 *
 * @param modelDir a Hugging Face checkpoint directory
 * @param kvBudgetBytes memory for the paged KV pool
 * @param kvBlockSize tokens per KV block
 * @param maxSessions concurrent sequences; more → RESOURCE_EXHAUSTED
 * @param maxTokensPerOp upper bound for k in score/propose/verify/append
 * @param maxBatchTokens tokens one batched forward step may feed, over all sequences
 * @param maxContext longest sequence (prompt + generated); capped by max_position_embeddings
 * @param backend which decoder implementation serves: auto (vector when the JVM has the Vector
 *     API), vector or djl
 * @param threads the vector backend's compute threads; 0 measures 1 against 2 at load (the DJL
 *     backend's threads are PyTorch's, set by {@code ai.djl.pytorch.num_threads})
 * @param kvDtype the element type of the KV pool: float32 (default) or float16, half the memory
 */
public record EngineConfig(
    Path modelDir,
    long kvBudgetBytes,
    int kvBlockSize,
    int maxSessions,
    int maxTokensPerOp,
    int maxBatchTokens,
    int maxContext,
    Backend backend,
    int threads,
    KvDtype kvDtype) {

  /** A config with the default backend (auto), measured threads and a float32 KV pool. */
  public EngineConfig(
      Path modelDir,
      long kvBudgetBytes,
      int kvBlockSize,
      int maxSessions,
      int maxTokensPerOp,
      int maxBatchTokens,
      int maxContext) {
    this(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        Backend.AUTO,
        0,
        KvDtype.FLOAT32);
  }

  public EngineConfig {
    require(kvBudgetBytes > 0, "kv budget bytes", kvBudgetBytes, "> 0");
    require(kvBlockSize >= 1 && kvBlockSize <= 1024, "kv block size", kvBlockSize, "1..1024");
    require(maxSessions >= 1, "max sessions", maxSessions, ">= 1");
    require(
        maxTokensPerOp >= 1 && maxTokensPerOp <= 1024,
        "max tokens per op",
        maxTokensPerOp,
        "1..1024");
    require(
        maxBatchTokens >= maxTokensPerOp + 1,
        "max batch tokens",
        maxBatchTokens,
        ">= max tokens per op + 1");
    require(maxContext >= 2, "max context", maxContext, ">= 2");
    if (backend == null) {
      throw EngineException.invalid("backend: null (expected: auto, vector or djl)");
    }
    require(threads >= 0 && threads <= 1024, "threads", threads, "0..1024");
    if (kvDtype == null) {
      throw EngineException.invalid("kv dtype: null (expected: float32 or float16)");
    }
  }

  /** Defaults for a model directory: 256 MiB of KV, blocks of 16, 64 sessions, k ≤ 64. */
  public static EngineConfig defaults(Path modelDir) {
    return new EngineConfig(modelDir, 256L << 20, 16, 64, 64, 512, 4096);
  }

  public EngineConfig withKvBudgetBytes(long bytes) {
    return new EngineConfig(
        modelDir,
        bytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        threads,
        kvDtype);
  }

  public EngineConfig withMaxSessions(int sessions) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        sessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        threads,
        kvDtype);
  }

  public EngineConfig withKvBlockSize(int size) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        size,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        threads,
        kvDtype);
  }

  public EngineConfig withMaxBatchTokens(int tokens) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        tokens,
        maxContext,
        backend,
        threads,
        kvDtype);
  }

  public EngineConfig withMaxContext(int tokens) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        tokens,
        backend,
        threads,
        kvDtype);
  }

  public EngineConfig withBackend(Backend b) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        b,
        threads,
        kvDtype);
  }

  public EngineConfig withThreads(int n) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        n,
        kvDtype);
  }

  public EngineConfig withKvDtype(KvDtype dtype) {
    return new EngineConfig(
        modelDir,
        kvBudgetBytes,
        kvBlockSize,
        maxSessions,
        maxTokensPerOp,
        maxBatchTokens,
        maxContext,
        backend,
        threads,
        dtype);
  }

  private static void require(boolean ok, String field, long value, String expected) {
    if (!ok) {
      throw EngineException.invalid(field + ": " + value + " (expected: " + expected + ")");
    }
  }
}
