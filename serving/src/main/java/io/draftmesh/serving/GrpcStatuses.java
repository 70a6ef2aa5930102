package io.draftmesh.serving;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Status unwrapping every server shares: a failure that reached a handler through a future is
 * wrapped in {@link CompletionException} or {@link ExecutionException}; the status a client should
 * see is the one inside. Each service keeps its own mapping of what is <em>not</em> a status (its
 * engine errors, its generic INTERNAL description); this class only finds the status.
 */
public final class GrpcStatuses {
  private GrpcStatuses() {}

  /** {@code t} without its future wrappers. */
  public static Throwable unwrap(Throwable t) {
    Throwable e = t;
    while ((e instanceof CompletionException || e instanceof ExecutionException)
        && e.getCause() != null) {
      e = e.getCause();
    }
    return e;
  }

  /**
   * The status {@code t} carries (after {@link #unwrap}), without its cause so nothing of it
   * crosses the wire; null when {@code t} is no status (a bug, for the caller to log and map).
   */
  public static Status statusOf(Throwable t) {
    Throwable e = unwrap(t);
    if (e instanceof StatusRuntimeException sre) {
      return sre.getStatus().withCause(null);
    }
    if (e instanceof StatusException se) {
      return se.getStatus().withCause(null);
    }
    return null;
  }

  /** The trailers {@code t} carries (after {@link #unwrap}), or null. */
  public static Metadata trailersOf(Throwable t) {
    Throwable e = unwrap(t);
    if (e instanceof StatusRuntimeException sre) {
      return sre.getTrailers();
    }
    if (e instanceof StatusException se) {
      return se.getTrailers();
    }
    return null;
  }
}
