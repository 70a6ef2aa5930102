package io.draftmesh.gateway;

import io.grpc.Status;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The HTTP API's bound on completion requests in flight (backpressure over buffering, design
 * invariant 5): at most {@code --http-threads} served at once, each holding one of the HTTP
 * server's threads for its whole length (an open SSE stream included); at most {@code --http-queue}
 * more waiting, in arrival order, for one of those places; and every request past both refused at
 * once with RESOURCE_EXHAUSTED (HTTP 429) naming the limit, instead of waiting in the HTTP server's
 * queue for as long as the streams ahead of it run.
 *
 * <p>The HTTP server's pool has a few threads more than this admits ({@link GatewayServer}), so a
 * refusal, a health check or a model listing never waits behind running streams.
 */
final class HttpAdmission {
  private final int threads;
  private final int queue;
  private final Semaphore places; // fair: waiting requests are served in arrival order
  private final AtomicInteger inFlight = new AtomicInteger(); // served + waiting

  HttpAdmission(int threads, int queue) {
    this.threads = threads;
    this.queue = queue;
    this.places = new Semaphore(threads, true);
  }

  /**
   * Counts one more request in flight, or refuses it.
   *
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED when {@code threads + queue} are in
   *     flight
   */
  Ticket admit() {
    int n;
    do {
      n = inFlight.get();
      if (n >= threads + queue) {
        throw Errors.limited(
            Errors.SERVER_LIMIT,
            1,
            "server busy: "
                + n
                + " requests in flight (expected: at most --http-threads "
                + threads
                + " served + --http-queue "
                + queue
                + " waiting; retry later)");
      }
    } while (!inFlight.compareAndSet(n, n + 1));
    return new Ticket();
  }

  /** Requests admitted and not yet finished: served and waiting. */
  int inFlight() {
    return inFlight.get();
  }

  /** One admitted request, used by the thread that handles it; close it when the request ends. */
  final class Ticket implements AutoCloseable {
    private boolean served;
    private boolean closed;

    /** Waits until one of the {@code --http-threads} places is free, and takes it. */
    void awaitTurn() {
      try {
        places.acquire();
        served = true;
      } catch (InterruptedException e) {
        // The server is stopping (its pool interrupts the threads it shuts down).
        Thread.currentThread().interrupt();
        throw Status.UNAVAILABLE
            .withDescription("the gateway is shutting down (expected: retry on another replica)")
            .asRuntimeException();
      }
    }

    @Override
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      if (served) {
        places.release();
      }
      inFlight.decrementAndGet();
    }
  }
}
