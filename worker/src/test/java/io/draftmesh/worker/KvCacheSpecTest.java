package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.runtime.InferenceEngine;
import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.ModelSpec;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model spec a worker registers with the kvcache-service names its KV pool's dtype, so a
 * float16 replica and a float32 one of the same weights never exchange blocks (their bytes differ
 * in size and meaning): their fingerprints, which seed every block key, differ.
 */
class KvCacheSpecTest {
  @TempDir static Path dir;

  @Test
  void theKvDtypeIsPartOfTheSpecAndTheFingerprint() {
    Path model = TinyModel.write(dir);
    ModelSpec full;
    ModelSpec half;
    try (InferenceEngine e = TinyModel.load(TinyModel.config(model))) {
      full = KvCacheLink.spec(e);
    }
    try (InferenceEngine e = TinyModel.load(TinyModel.config(model).withKvDtype(KvDtype.FLOAT16))) {
      half = KvCacheLink.spec(e);
      assertThat(e.pool().blockBytes() * 2)
          .isEqualTo(
              io.draftmesh.engine.kv.KvBlockPool.bytesPerBlock(
                  e.pool().layers(),
                  e.pool().kvHeads(),
                  e.pool().headDim(),
                  e.pool().blockSize(),
                  KvDtype.FLOAT32));
    }
    assertThat(full.getDtype()).isEqualTo("float32");
    assertThat(half.getDtype()).isEqualTo("float16");
    assertThat(half.toBuilder().setDtype("float32").build()).isEqualTo(full);
    assertThat(KvKeys.fingerprint(half)).isNotEqualTo(KvKeys.fingerprint(full));
  }
}
