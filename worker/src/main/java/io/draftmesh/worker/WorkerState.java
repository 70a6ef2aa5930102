package io.draftmesh.worker;

import io.draftmesh.engine.runtime.InferenceEngine;
import io.grpc.Status;

/**
 * Where a worker is in its life, shared by the server (which moves it forward) and the service
 * (which refuses calls with UNAVAILABLE unless it is serving).
 */
final class WorkerState {
  enum Phase {
    WARMING_UP("model is warming up"),
    SERVING("serving"),
    DRAINING("worker is draining"),
    FAILED("model failed to load"),
    BROKEN("the engine failed (expected: another worker; this one needs a restart)"),
    STOPPED("worker is stopped");

    final String description;

    Phase(String description) {
      this.description = description;
    }
  }

  /** What the engine reports about its tensors, fixed once loaded. */
  /** The serving engine, and its link to kvcache-service (null without one). */
  record Loaded(InferenceEngine engine, String dtype, String device, KvCacheLink kvcache) {}

  private volatile Phase phase = Phase.WARMING_UP;
  private volatile Loaded loaded;

  Phase phase() {
    return phase;
  }

  void serving(Loaded l) {
    loaded = l;
    phase = Phase.SERVING;
  }

  void moveTo(Phase p) {
    phase = p;
  }

  /** The engine if serving; otherwise UNAVAILABLE with the reason. */
  Loaded require() {
    Phase p = phase;
    Loaded l = loaded;
    if (p != Phase.SERVING || l == null) {
      throw Status.UNAVAILABLE.withDescription(p.description).asRuntimeException();
    }
    return l;
  }

  /** The engine once loaded, whatever the phase (for shutdown and tests); null before. */
  Loaded loaded() {
    return loaded;
  }
}
