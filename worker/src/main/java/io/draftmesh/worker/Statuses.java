package io.draftmesh.worker;

import io.draftmesh.engine.runtime.EngineException;
import io.draftmesh.serving.GrpcStatuses;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place failures become gRPC statuses. An {@link EngineException} keeps its message (it
 * names the field and what was expected); anything else is a bug, logged here with its cause and
 * sent as INTERNAL with a generic description, so no stack trace or internal detail crosses the
 * wire.
 */
public final class Statuses {
  private static final Logger log = LoggerFactory.getLogger(Statuses.class);

  static final String INTERNAL_DESCRIPTION = "internal error in the model worker";

  private Statuses() {}

  /** The status code an engine failure of this kind is reported with. */
  public static Status.Code code(EngineException.Kind kind) {
    return switch (kind) {
      case INVALID_ARGUMENT -> Status.Code.INVALID_ARGUMENT;
      case NOT_FOUND -> Status.Code.NOT_FOUND;
      case FAILED_PRECONDITION -> Status.Code.FAILED_PRECONDITION;
      case RESOURCE_EXHAUSTED -> Status.Code.RESOURCE_EXHAUSTED;
      case UNAVAILABLE -> Status.Code.UNAVAILABLE;
      case CANCELLED -> Status.Code.CANCELLED;
      case INTERNAL -> Status.Code.INTERNAL;
    };
  }

  /** Maps any throwable (unwrapping future wrappers) to the status a client should see. */
  public static Status toStatus(Throwable t) {
    Throwable e = unwrap(t);
    if (e instanceof EngineException ee) {
      if (ee.kind() == EngineException.Kind.INTERNAL) {
        // The engine's INTERNAL messages may carry exception text; keep it in the log only.
        log.error("engine failure", ee);
        return Status.INTERNAL.withDescription(INTERNAL_DESCRIPTION);
      }
      return Status.fromCode(code(ee.kind())).withDescription(ee.getMessage());
    }
    Status known = GrpcStatuses.statusOf(e);
    if (known != null) {
      return known;
    }
    log.error("unexpected failure", e);
    return Status.INTERNAL.withDescription(INTERNAL_DESCRIPTION);
  }

  /** {@link #toStatus} as an exception for {@code StreamObserver.onError}. */
  public static StatusRuntimeException toException(Throwable t) {
    return toStatus(t).asRuntimeException();
  }

  static StatusRuntimeException invalid(String description) {
    return Status.INVALID_ARGUMENT.withDescription(description).asRuntimeException();
  }

  static StatusRuntimeException precondition(String description) {
    return Status.FAILED_PRECONDITION.withDescription(description).asRuntimeException();
  }

  static Throwable unwrap(Throwable t) {
    return GrpcStatuses.unwrap(t);
  }
}
