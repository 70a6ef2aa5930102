package io.draftmesh.engine.runtime;

import io.draftmesh.engine.model.Backend;

/** The engine's behaviour on the Vector API backend. */
class VectorInferenceEngineTest extends InferenceEngineTest {
  @Override
  Backend backend() {
    return Backend.VECTOR;
  }
}
