package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineInfo;
import io.draftmesh.engine.runtime.InferenceEngine;

/** Bounded waits for an engine to get every session and KV block back. */
final class Leaks {
  private Leaks() {}

  /** Waits up to 10 s for zero active sessions and a full KV pool; fails the test otherwise. */
  static void awaitAllFree(InferenceEngine engine) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    EngineInfo info = engine.info();
    while (System.nanoTime() < deadline
        && (info.activeSessions() != 0 || info.kvBlocksFree() != info.kvBlocksTotal())) {
      Thread.sleep(10);
      info = engine.info();
    }
    assertThat(info.activeSessions()).as("active sessions").isZero();
    assertThat(info.kvBlocksFree()).as("free KV blocks").isEqualTo(info.kvBlocksTotal());
  }
}
