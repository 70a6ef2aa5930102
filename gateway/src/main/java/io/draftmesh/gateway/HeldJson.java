package io.draftmesh.gateway;

import io.grpc.Context;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A non-streaming JSON response that keeps the connection visibly alive while the generation runs.
 *
 * <p>Once the generation has run for a heartbeat interval, the headers go out (200, chunked: the
 * first chunk has decided the request succeeds) and a space is written every interval: JSON allows
 * whitespace before the value, so clients parse the body as if nothing came before it. Proxies and
 * clients with idle timers see bytes, and a write that fails cancels {@code upstream}, the context
 * of the router call, which stops decoding and closes the worker sessions (the transport also
 * cancels it as soon as it sees the connection close: {@link HttpApi}). A generation shorter than
 * the interval writes nothing early, and keeps the freedom to answer with any status; a router
 * failure after the headers went out becomes an OpenAI-shaped error object in the 200 body (as in a
 * stream).
 */
final class HeldJson implements AutoCloseable {
  private static final byte[] PADDING = {' '};

  private final Exchange exchange;
  private final Context.CancellableContext upstream;
  private final ScheduledFuture<?> heartbeat;
  private Exchange.ChunkedBody out; // guarded by this; non-null once the headers are sent
  private boolean done; // guarded by this
  private volatile boolean gone;

  HeldJson(
      Exchange exchange,
      Context.CancellableContext upstream,
      ScheduledExecutorService scheduler,
      Duration interval) {
    this.exchange = exchange;
    this.upstream = upstream;
    long ms = Math.max(1, interval.toMillis());
    this.heartbeat = scheduler.scheduleAtFixedRate(this::beat, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Whether a write failed: the client went away (the router call is cancelled). */
  boolean clientGone() {
    return gone || exchange.clientGone();
  }

  private synchronized void beat() {
    if (done || gone) {
      return;
    }
    try {
      if (out == null) {
        exchange.setHeader("Content-Type", "application/json");
        out = exchange.respondChunked(200);
      }
      if (out.writable()) { // a client that takes nothing gets no more padding queued
        out.write(PADDING);
      }
    } catch (IOException e) {
      gone = true;
      heartbeat.cancel(false);
      upstream.cancel(
          Status.CANCELLED.withDescription("HTTP client disconnected").asRuntimeException());
    }
  }

  /**
   * Ends the heartbeat. Returns true if no header was sent, so the caller answers as usual (any
   * status); false if the body is already under way and must be finished with {@link #finish}.
   */
  synchronized boolean stopUncommitted() {
    done = true;
    heartbeat.cancel(false);
    return out == null;
  }

  /**
   * Writes the JSON value after the padding (after {@link #stopUncommitted}); the exchange's close
   * ends the body.
   */
  synchronized void finish(String json) throws IOException {
    out.write(json.getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public synchronized void close() {
    done = true;
    heartbeat.cancel(false);
  }
}
