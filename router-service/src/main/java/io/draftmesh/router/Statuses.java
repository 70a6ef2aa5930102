package io.draftmesh.router;

import io.draftmesh.serving.GrpcStatuses;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place failures become gRPC statuses. Statuses the router raised keep their description
 * (it names the field and what was expected); anything else is a bug, logged here with its cause
 * and sent as INTERNAL with a generic description, so no stack trace crosses the wire.
 */
final class Statuses {
  private static final Logger log = LoggerFactory.getLogger(Statuses.class);

  private Statuses() {}

  static StatusRuntimeException invalid(String description) {
    return Status.INVALID_ARGUMENT.withDescription(description).asRuntimeException();
  }

  static StatusRuntimeException notFound(String description) {
    return Status.NOT_FOUND.withDescription(description).asRuntimeException();
  }

  static StatusRuntimeException failedPrecondition(String description) {
    return Status.FAILED_PRECONDITION.withDescription(description).asRuntimeException();
  }

  /** Maps any throwable (unwrapping future wrappers) to the status a client should see. */
  static Status toStatus(Throwable t) {
    Status s = GrpcStatuses.statusOf(t);
    if (s != null) {
      return s;
    }
    log.error("unexpected failure", GrpcStatuses.unwrap(t));
    return Status.INTERNAL.withDescription("internal error in the router");
  }

  static Throwable unwrap(Throwable t) {
    return GrpcStatuses.unwrap(t);
  }
}
