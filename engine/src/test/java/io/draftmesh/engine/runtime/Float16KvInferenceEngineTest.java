package io.draftmesh.engine.runtime;

import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;

/** The engine's behaviour on the Vector API backend with a float16 KV pool. */
class Float16KvInferenceEngineTest extends InferenceEngineTest {
  @Override
  Backend backend() {
    return Backend.VECTOR;
  }

  @Override
  KvDtype kvDtype() {
    return KvDtype.FLOAT16;
  }
}
