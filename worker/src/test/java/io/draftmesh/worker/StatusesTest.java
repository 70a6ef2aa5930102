package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.engine.runtime.EngineException;
import io.grpc.Status;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

class StatusesTest {
  @Test
  void everyEngineKindHasItsCodeAndKeepsTheMessage() {
    for (EngineException.Kind kind : EngineException.Kind.values()) {
      Status st = Statuses.toStatus(new CompletionException(new EngineException(kind, "x: 1")));
      assertThat(st.getCode().name()).isEqualTo(kind.name());
      if (kind != EngineException.Kind.INTERNAL) {
        assertThat(st.getDescription()).isEqualTo("x: 1");
      }
    }
  }

  @Test
  void internalFailuresNeverCarryTheirCause() {
    Status engine =
        Statuses.toStatus(
            new EngineException(EngineException.Kind.INTERNAL, "forward failed: java.lang.Oops"));
    Status other = Statuses.toStatus(new NullPointerException("field x"));
    for (Status st : new Status[] {engine, other}) {
      assertThat(st.getCode()).isEqualTo(Status.Code.INTERNAL);
      assertThat(st.getDescription()).isEqualTo(Statuses.INTERNAL_DESCRIPTION);
      assertThat(st.getCause()).isNull();
    }
  }
}
