package io.draftmesh.engine.checkpoint;

/**
 * A checkpoint, safetensors file or config that is malformed or does not match what the caller
 * needs. The message always names the file and the tensor or field, and says what was expected and
 * what was found. Plain I/O failures (file not readable, disk full) are reported as {@link
 * java.io.IOException} instead.
 */
public final class CheckpointException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
