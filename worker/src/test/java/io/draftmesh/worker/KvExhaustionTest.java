package io.draftmesh.worker;

import static io.draftmesh.worker.SessionStream.closeOp;
import static io.draftmesh.worker.SessionStream.open;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineConfig;
import io.grpc.Status;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A KV pool of four blocks: running out is RESOURCE_EXHAUSTED and frees what was taken. */
class KvExhaustionTest {
  @TempDir static Path dir;
  static InProcessWorker worker;

  @BeforeAll
  static void start() throws Exception {
    Path model = TinyModel.write(dir);
    // tiny-llama: 2 layers x 4 kv heads x head dim 16, fp32 keys and values: 16 KiB per block of
    // 16.
    EngineConfig config = TinyModel.config(model).withKvBudgetBytes(4 * 16384);
    worker = InProcessWorker.ready(WorkerConfig.Role.TARGET, () -> TinyModel.load(config));
    assertThat(worker.engine().info().kvBlocksTotal()).isEqualTo(4);
  }

  @AfterAll
  static void stop() throws Exception {
    worker.close();
  }

  @Test
  void promptNeedingMoreBlocksThanThePoolHolds() throws Exception {
    try (SessionStream s = worker.session()) {
      Status st = s.fails(open(TinyModel.prompt(100, 1)));
      assertThat(st.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(st.getDescription()).isNotBlank();
    }
    Leaks.awaitAllFree(worker.engine());
  }

  @Test
  void secondSessionFindsThePoolTakenAndTheFirstStillWorks() throws Exception {
    try (SessionStream first = worker.session();
        SessionStream second = worker.session()) {
      assertThat(first.call(open(TinyModel.prompt(40, 2))).getKvBlocks()).isEqualTo(3);
      Status st = second.fails(open(TinyModel.prompt(40, 3)));
      assertThat(st.getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
      assertThat(first.call(SessionStream.propose(2)).getLength()).isEqualTo(42);
      assertThat(first.call(closeOp()).getClosed().getKvBlocksFreed()).isEqualTo(3);
    }
    Leaks.awaitAllFree(worker.engine());
    try (SessionStream s = worker.session()) {
      assertThat(s.call(open(TinyModel.prompt(60, 4))).getKvBlocks()).isEqualTo(4);
    }
    Leaks.awaitAllFree(worker.engine());
  }
}
