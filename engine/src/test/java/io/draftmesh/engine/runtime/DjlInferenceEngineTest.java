package io.draftmesh.engine.runtime;

import io.draftmesh.engine.model.Backend;

/** The engine's behaviour on the DJL/PyTorch backend. */
class DjlInferenceEngineTest extends InferenceEngineTest {
  @Override
  Backend backend() {
    return Backend.DJL;
  }
}
