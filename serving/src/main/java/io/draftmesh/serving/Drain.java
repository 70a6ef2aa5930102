package io.draftmesh.serving;

import io.grpc.Server;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Graceful stop of a gRPC server, the same on every service: refuse new calls, give running ones
 * {@code grace} to finish, then cancel what is left (which runs their cancel handlers: sessions
 * close, KV is freed) and wait briefly for the cancelled calls to unwind. The caller turns health
 * NOT_SERVING first, so load balancers stop sending before the listener closes.
 */
public final class Drain {
  /** How long cancelled calls get to unwind after the grace. */
  static final Duration AFTER_CANCEL = Duration.ofSeconds(5);

  private Drain() {}

  /**
   * Drains {@code server}; returns true when calls were still running at the end of the grace and
   * were cancelled. An interrupt cancels at once (and keeps the thread's interrupt flag).
   *
   * @param onGraceOver runs just before the remaining calls are cancelled (e.g. to log how many)
   */
  public static boolean stop(Server server, Duration grace, Runnable onGraceOver) {
    server.shutdown();
    try {
      if (server.awaitTermination(grace.toNanos(), TimeUnit.NANOSECONDS)) {
        return false;
      }
      onGraceOver.run();
      server.shutdownNow();
      server.awaitTermination(AFTER_CANCEL.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
      return true;
    }
  }
}
