package io.draftmesh.gateway;

import java.io.IOException;
import java.time.Duration;

/**
 * One HTTP request and its response, as the request logic ({@link HttpApi}, {@link Sse}, {@link
 * HeldJson}) sees it: no transport type leaks through. {@link NettyHttpServer} implements it.
 *
 * <p>All methods are called from the one thread that handles the request, except {@link
 * ChunkedBody#write} and {@link ChunkedBody#writable}, which a heartbeat timer may call too.
 */
interface Exchange extends io.draftmesh.telemetry.HttpServerTracing.Request, AutoCloseable {
  // method(), path() (percent-decoded, without the query), header(name), headerNames() and
  // status() come from HttpServerTracing.Request.

  /** Sets a response header (before the response starts). */
  void setHeader(String name, String value);

  /**
   * The whole request body.
   *
   * @throws BodyTooLarge once more than {@code limit} bytes arrived (chunked bodies included)
   * @throws BodyTimeout when the body is not complete within {@code timeout}
   * @throws IOException when the client went away
   */
  byte[] readBody(int limit, Duration timeout) throws IOException;

  /** Sends the whole response: {@code status} and a body of known length. */
  void respond(int status, byte[] body) throws IOException;

  /** Starts a response whose body is written piece by piece (chunked). */
  ChunkedBody respondChunked(int status) throws IOException;

  /** Whether the client closed the connection (or a write to it failed). */
  boolean clientGone();

  /**
   * Runs {@code r} once when the client goes away before the response is complete (at once if it
   * already did); on the transport's thread, so {@code r} must not block.
   */
  void onClientGone(Runnable r);

  /** Ends the exchange: ends a chunked body still open; a response never started closes. */
  @Override
  void close();

  /** A body written piece by piece, with the client's flow control. */
  interface ChunkedBody {
    /** Queues {@code bytes} and flushes them; never blocks. IOException once the client is gone. */
    void write(byte[] bytes) throws IOException;

    /** Whether the client takes what is written: false while the unsent bytes are over a bound. */
    boolean writable();

    /**
     * Blocks until {@link #writable()}, so a slow reader slows the writer instead of being buffered
     * without bound; IOException when the client goes away or takes nothing for the write timeout
     * (then it is cut off).
     */
    void awaitWritable() throws IOException;
  }

  /** More body than the limit. */
  final class BodyTooLarge extends IOException {
    private static final long serialVersionUID = 1L;

    BodyTooLarge() {
      super("body over the limit", null);
    }
  }

  /** A body not complete in time. */
  final class BodyTimeout extends IOException {
    private static final long serialVersionUID = 1L;

    BodyTimeout() {
      super("body not complete in time", null);
    }
  }
}
