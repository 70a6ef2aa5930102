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
 * One server-sent-event response: {@code data: <json>\n\n} events, flushed one by one, and a
 * comment line when the stream has been idle for the heartbeat interval.
 *
 * <p>Flow control: after each event the writer waits until the client has taken what was sent (down
 * to the transport's bound), so a client that reads slowly slows the router call (whose blocking
 * stub asks for one chunk at a time) instead of being buffered for. A heartbeat is skipped while
 * the client is behind. A client that goes away (the transport sees the connection close, or a
 * write fails) cancels {@code upstream}, the context the router call runs in, so the router stops
 * decoding and closes the worker sessions.
 */
final class Sse implements AutoCloseable {
  private static final byte[] HEARTBEAT = ": keep-alive\n\n".getBytes(StandardCharsets.UTF_8);

  private final Exchange exchange;
  private final Exchange.ChunkedBody out;
  private final Context.CancellableContext upstream;
  private final long heartbeatNanos;
  private final ScheduledFuture<?> heartbeat;
  private long lastWrite = System.nanoTime(); // guarded by this
  private volatile boolean gone;

  Sse(
      Exchange exchange,
      Context.CancellableContext upstream,
      ScheduledExecutorService scheduler,
      Duration heartbeat)
      throws IOException {
    this.exchange = exchange;
    this.upstream = upstream;
    this.heartbeatNanos = heartbeat.toNanos();
    exchange.setHeader("Content-Type", "text/event-stream; charset=utf-8");
    exchange.setHeader("Cache-Control", "no-cache");
    exchange.setHeader("X-Accel-Buffering", "no"); // proxies: do not buffer
    this.out = exchange.respondChunked(200);
    long ms = heartbeat.toMillis();
    this.heartbeat = scheduler.scheduleAtFixedRate(this::beat, ms, ms, TimeUnit.MILLISECONDS);
  }

  /** Sends one event and waits until the client can take more; false once the client is gone. */
  boolean event(String json) {
    if (!write(("data: " + json + "\n\n").getBytes(StandardCharsets.UTF_8))) {
      return false;
    }
    try {
      out.awaitWritable();
      return true;
    } catch (IOException e) {
      return failed();
    }
  }

  /** Whether the client went away (a write failed, or the transport saw the connection close). */
  boolean clientGone() {
    return gone || exchange.clientGone();
  }

  private void beat() {
    synchronized (this) {
      if (System.nanoTime() - lastWrite < heartbeatNanos || !out.writable()) {
        return; // not idle, or the client has not taken the last event yet
      }
    }
    write(HEARTBEAT);
  }

  /** Queues {@code bytes}; never blocks (so the heartbeat timer never waits on a slow client). */
  private synchronized boolean write(byte[] bytes) {
    if (gone) {
      return false;
    }
    try {
      out.write(bytes);
      lastWrite = System.nanoTime();
      return true;
    } catch (IOException e) {
      return failed();
    }
  }

  private boolean failed() {
    gone = true;
    heartbeat.cancel(false);
    upstream.cancel(
        Status.CANCELLED.withDescription("HTTP client disconnected").asRuntimeException());
    return false;
  }

  @Override
  public void close() {
    heartbeat.cancel(false);
  }
}
