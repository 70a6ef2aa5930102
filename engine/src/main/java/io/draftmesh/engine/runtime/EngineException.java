package io.draftmesh.engine.runtime;

/**
 * A failure the engine can explain to its caller. {@link Kind} maps one-to-one onto a gRPC status
 * code in the worker (the engine itself knows nothing of gRPC); the message names the field and
 * what was expected.
 */
public final class EngineException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Why the operation failed, from the caller's point of view. */
  public enum Kind {
    INVALID_ARGUMENT,
    NOT_FOUND,
    FAILED_PRECONDITION,
    RESOURCE_EXHAUSTED,
    UNAVAILABLE,
    CANCELLED,
    INTERNAL
  }

  private final Kind kind;

  public EngineException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public EngineException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static EngineException invalid(String message) {
    return new EngineException(Kind.INVALID_ARGUMENT, message);
  }

  public static EngineException exhausted(String message) {
    return new EngineException(Kind.RESOURCE_EXHAUSTED, message);
  }

  public static EngineException precondition(String message) {
    return new EngineException(Kind.FAILED_PRECONDITION, message);
  }
}
