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
 * One server-sent-event response: {@code data: <json>\n\n} events, flushed one by one, and a
 * comment line when the stream has been idle for the heartbeat interval.
 *
 * <p>A client that goes away is noticed by the first write that fails (an event or a heartbeat,
 * whichever comes first); that cancels {@code upstream}, the context the router call runs in, so
 * the router stops decoding and closes the worker sessions.
 */
final class Sse implements AutoCloseable {
  private static final byte[] HEARTBEAT = ": keep-alive\n\n".getBytes(StandardCharsets.UTF_8);

  private final OutputStream out;
  private final Context.CancellableContext upstream;
  private final long heartbeatNanos;
  private final ScheduledFuture<?> heartbeat;
  private long lastWrite = System.nanoTime(); // guarded by this
  private volatile boolean gone;

  Sse(
      HttpExchange exchange,
      Context.CancellableContext upstream,
      ScheduledExecutorService scheduler,
      Duration heartbeat)
      throws IOException {
    this.upstream = upstream;
    this.heartbeatNanos = heartbeat.toNanos();
    exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
    exchange.getResponseHeaders().set("Cache-Control", "no-cache");
    exchange.getResponseHeaders().set("X-Accel-Buffering", "no"); // proxies: do not buffer
    exchange.sendResponseHeaders(200, 0); // chunked
    this.out = exchange.getResponseBody();
    long ms = heartbeat.toMillis();
    this.heartbeat = scheduler.scheduleAtFixedRate(this::beat, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Sends one event; false once the client is gone. */
  boolean event(String json) {
    return write(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8));
  }

  /** Whether a write failed: the client went away. */
  boolean clientGone() {
    return gone;
  }

  private void beat() {
    synchronized (this) {
      if (System.nanoTime() - lastWrite < heartbeatNanos) {
        return;
      }
    }
    write(HEARTBEAT);
  }

  private synchronized boolean write(byte[] bytes) {
    if (gone) {
      return false;
    }
    try {
      out.write(bytes);
      out.flush();
      lastWrite = System.nanoTime();
      return true;
    } catch (IOException e) {
      gone = true;
      heartbeat.cancel(false);
      upstream.cancel(
          Status.CANCELLED.withDescription("HTTP client disconnected").asRuntimeException());
      return false;
    }
  }

  @Override
  public void close() {
    heartbeat.cancel(false);
  }
}
