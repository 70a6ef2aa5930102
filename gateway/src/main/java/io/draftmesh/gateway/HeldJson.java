package io.draftmesh.gateway;

import com.sun.net.httpserver.HttpExchange;
import io.grpc.Context;
import io.grpc.Status;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A non-streaming JSON response that notices a client going away while the generation runs.
 *
 * <p>The JDK's HTTP server says nothing when a connection closes; only a write fails. So once the
 * generation has run for a heartbeat interval, the headers go out (200, chunked: the first chunk
 * has decided the request succeeds) and a space is written every interval: JSON allows whitespace
 * before the value, so clients parse the body as if nothing came before it. The first write that
 * fails cancels {@code upstream}, the context of the router call, which stops decoding and closes
 * the worker sessions. A generation shorter than the interval writes nothing early, and keeps the
 * freedom to answer with any status; a router failure after the headers went out becomes an
 * OpenAI-shaped error object in the 200 body (as in a stream).
 */
final class HeldJson implements AutoCloseable {
  private static final byte[] PADDING = {' '};

  private final HttpExchange exchange;
  private final Context.CancellableContext upstream;
  private final ScheduledFuture<?> heartbeat;
  private OutputStream out; // guarded by this; non-null once the headers are sent
  private boolean done; // guarded by this
  private volatile boolean gone;

  HeldJson(
      HttpExchange exchange,
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
    return gone;
  }

  private synchronized void beat() {
    if (done || gone) {
      return;
    }
    try {
      if (out == null) {
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        exchange.sendResponseHeaders(200, 0); // chunked
        out = exchange.getResponseBody();
      }
      out.write(PADDING);
      out.flush();
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

  /** Writes the JSON value after the padding and ends the body (after {@link #stopUncommitted}). */
  synchronized void finish(String json) throws IOException {
    out.write(json.getBytes(StandardCharsets.UTF_8));
    out.close();
  }

  @Override
  public synchronized void close() {
    done = true;
    heartbeat.cancel(false);
  }
}
