package io.draftmesh.gateway;

import com.google.gson.Gson;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpServerExpectContinueHandler;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's HTTP/1.1 transport, and the only place that knows it is Netty: connections are read
 * and request heads parsed on a few event-loop threads, so a client that sends its headers slowly,
 * or holds an idle keep-alive connection, costs a socket and no thread. A request whose head is
 * complete is handed, as an {@link Exchange}, to the handler on the bounded {@code workers} pool
 * (handlers block: the router calls), while its body keeps arriving on the event loop.
 *
 * <p>Per connection, on its event loop: a request head must be complete within {@code
 * --header-timeout-ms} of its first byte (else 408 and close); an idle keep-alive connection is
 * closed after {@code --idle-timeout-ms} (a new connection that sends nothing, after the header
 * timeout); bodies are kept up to {@code --max-body-bytes} (more, chunked or not, is dropped and
 * the handler's read fails with {@link Exchange.BodyTooLarge}). A response is kept alive unless the
 * client asked to close, the handler set {@code Connection: close}, the server is draining, or the
 * request body had not all arrived when the response started; a connection closed with body bytes
 * still coming is shut for output first and closed once the client stops sending (or after {@link
 * #LINGER}), so the client reads the answer instead of a reset. Disconnects are seen at once
 * ({@link Exchange#onClientGone}); a chunked body waits for channel writability, so a slow reader
 * slows its writer.
 */
final class NettyHttpServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NettyHttpServer.class);
  private static final Gson GSON = new com.google.gson.GsonBuilder().serializeNulls().create();

  /** How long a closing connection keeps reading (and dropping) a body the client still sends. */
  static final Duration LINGER = Duration.ofSeconds(2);

  /** The longest request line and header block (a request's are a few hundred bytes). */
  private static final int MAX_LINE = 8192;

  private static final int MAX_HEADERS = 16384;

  /** Connections the accept queue holds (accepting costs no thread, so it can be deep). */
  private static final int ACCEPT_BACKLOG = 1024;

  /** The request logic; runs on a worker thread, may block. */
  interface Handler {
    void handle(Exchange exchange);
  }

  private final InetSocketAddress address;
  private final GatewayConfig config;
  private final ExecutorService workers;
  private final Handler handler;
  private final EventLoopGroup boss;
  private final EventLoopGroup loops;
  private final ChannelGroup channels = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
  private volatile Channel server;
  private volatile boolean draining;

  NettyHttpServer(
      InetSocketAddress address, GatewayConfig config, ExecutorService workers, Handler handler) {
    this.address = address;
    this.config = config;
    this.workers = workers;
    this.handler = handler;
    this.boss = new MultiThreadIoEventLoopGroup(1, threads("gateway-netty-accept-"), nio());
    // Event loops only parse and copy bytes; two cover thousands of connections.
    int n = Math.max(2, Math.min(4, Runtime.getRuntime().availableProcessors()));
    this.loops = new MultiThreadIoEventLoopGroup(n, threads("gateway-netty-io-"), nio());
  }

  private static io.netty.channel.IoHandlerFactory nio() {
    return NioIoHandler.newFactory();
  }

  /** Binds; throws when the address cannot be bound. */
  void start() throws IOException {
    ServerBootstrap b =
        new ServerBootstrap()
            .group(boss, loops)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, ACCEPT_BACKLOG)
            .option(ChannelOption.SO_REUSEADDR, true)
            .childOption(ChannelOption.TCP_NODELAY, true) // SSE events go out as they are made
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    channels.add(ch);
                    Connection c = new Connection(ch);
                    ch.pipeline()
                        .addLast("first-byte", c.firstByte)
                        .addLast(
                            "codec",
                            new HttpServerCodec(
                                new HttpDecoderConfig()
                                    .setMaxInitialLineLength(MAX_LINE)
                                    .setMaxHeaderSize(MAX_HEADERS)))
                        .addLast("expect-continue", new HttpServerExpectContinueHandler())
                        .addLast("exchanges", c);
                  }
                });
    try {
      server = b.bind(address).sync().channel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted binding " + address, e);
    } catch (RuntimeException e) {
      // Netty rethrows the bind's checked exception unchecked.
      throw e.getCause() instanceof IOException io ? io : new IOException(e.getMessage(), e);
    } catch (Exception e) {
      throw new IOException(e.getMessage(), e);
    }
  }

  /** The bound port. */
  int port() {
    return ((InetSocketAddress) server.localAddress()).getPort();
  }

  /** Stops accepting connections; responses from now on close their connections. */
  void stopAccepting() {
    draining = true;
    Channel s = server;
    if (s != null) {
      s.close().syncUninterruptibly();
    }
  }

  /** Closes every connection (a stream still running then fails its next write) and the loops. */
  @Override
  public void close() {
    stopAccepting();
    channels.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }

  private static ThreadFactory threads(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /**
   * One connection's state machine, on its event loop: waiting for a request (idle timer), reading
   * a head (header timer), busy with one exchange (no timer: a stream may run for minutes), or
   * closing (dropping what still arrives).
   */
  private final class Connection extends ChannelInboundHandlerAdapter {
    private final Channel channel;
    private State state = State.WAITING;
    private boolean fresh = true; // no request yet on this connection
    private ScheduledFuture<?> timer;
    private NettyExchange current;

    /** Sees raw bytes before the codec: the first one of a request starts the header timer. */
    final ChannelInboundHandlerAdapter firstByte =
        new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (state == State.WAITING) {
              state = State.HEAD;
              arm(config.headerTimeout(), this::headTimedOut);
            }
            ctx.fireChannelRead(msg);
          }

          private void headTimedOut() {
            if (state == State.HEAD) {
              refuse(Errors.headerTimeout(config.headerTimeout()));
            }
          }
        };

    Connection(Channel channel) {
      this.channel = channel;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      waitForRequest();
      ctx.fireChannelActive();
    }

    private void waitForRequest() {
      state = State.WAITING;
      // A connection that never sent a request is given the header timeout, not the idle one.
      arm(
          fresh ? config.headerTimeout() : config.idleTimeout(),
          () -> {
            if (state == State.WAITING) {
              log.debug("HTTP connection {} idle: closed", channel.remoteAddress());
              channel.close();
            }
          });
    }

    private void arm(Duration after, Runnable r) {
      cancelTimer();
      timer = channel.eventLoop().schedule(r, after.toNanos(), TimeUnit.NANOSECONDS);
    }

    private void cancelTimer() {
      if (timer != null) {
        timer.cancel(false);
        timer = null;
      }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        if (state == State.CLOSING) {
          return; // dropped: the answer is sent, the connection closes
        }
        if (msg instanceof HttpRequest req) {
          request(req);
        }
        if (msg instanceof HttpContent c && current != null && state == State.BUSY) {
          current.arrived(c.content(), c instanceof LastHttpContent);
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    private void request(HttpRequest req) {
      if (state == State.BUSY) {
        // Pipelined behind a running exchange: not served. The running one's answer closes the
        // connection, and the client sends this one again on a new one (RFC 9112 9.3.2).
        current.pipelined = true;
        return;
      }
      cancelTimer();
      fresh = false;
      if (!req.decoderResult().isSuccess()) {
        Throwable why = req.decoderResult().cause();
        refuse(
            why instanceof TooLongHttpHeaderException
                ? Errors.malformedRequest(431, "headers: more than " + MAX_HEADERS + " bytes")
                : why instanceof TooLongHttpLineException
                    ? Errors.malformedRequest(414, "request line: more than " + MAX_LINE + " bytes")
                    : Errors.malformedRequest(
                        400,
                        "request: not HTTP/1.1 ("
                            + (why instanceof TooLongFrameException ? "too long" : "malformed")
                            + ")"));
        return;
      }
      String path;
      try {
        URI uri = new URI(req.uri());
        path = uri.getPath() == null ? "" : uri.getPath();
      } catch (URISyntaxException e) {
        refuse(Errors.malformedRequest(400, "request target: not a valid URI"));
        return;
      }
      state = State.BUSY;
      NettyExchange ex = new NettyExchange(this, req, path);
      current = ex;
      try {
        workers.execute(() -> handler.handle(ex));
      } catch (RejectedExecutionException full) {
        // Every thread busy and the pool's queue full: a flood's last resort, answered here.
        current = null;
        refuse(Errors.overloaded());
      }
    }

    /** Answers on the event loop, without a handler, and closes. */
    private void refuse(Errors.HttpError e) {
      cancelTimer();
      byte[] body = GSON.toJson(e.toJson()).getBytes(StandardCharsets.UTF_8);
      FullHttpResponseBuilder r = new FullHttpResponseBuilder(e.status(), body);
      r.headers().set(HttpHeaderNames.CONTENT_TYPE, "application/json");
      r.headers().set("X-Content-Type-Options", "nosniff");
      if (e.retryAfter() > 0) {
        r.headers().set(HttpHeaderNames.RETRY_AFTER, Long.toString(e.retryAfter()));
      }
      r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      state = State.CLOSING;
      channel.writeAndFlush(r.build()).addListener(f -> closeAfterAnswer(false));
    }

    /**
     * After the last byte of an answer that closes the connection: at once if the client has sent
     * all it will, else shut output, drop what still arrives, and close when the client does.
     */
    private void closeAfterAnswer(boolean requestComplete) {
      log.debug("HTTP connection {}: closing after the answer", channel.remoteAddress());
      state = State.CLOSING;
      if (requestComplete || !(channel instanceof SocketChannel sc) || !channel.isActive()) {
        channel.close();
        return;
      }
      sc.shutdownOutput();
      arm(LINGER, channel::close);
    }

    /** The exchange's answer is all written (on the event loop). */
    void answered(NettyExchange ex, boolean keepAlive) {
      if (ex != current) {
        return;
      }
      current = null;
      if (keepAlive && !ex.pipelined && channel.isActive()) {
        waitForRequest();
      } else {
        closeAfterAnswer(ex.bodyComplete());
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (current != null) {
        current.writabilityChanged();
      }
      ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      log.debug("HTTP connection {} closed in state {}", channel.remoteAddress(), state);
      cancelTimer();
      state = State.CLOSING;
      if (current != null) {
        current.gone();
        current = null;
      }
      ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      // A reset connection, mostly: the client is gone.
      log.debug("HTTP connection {}: {}", channel.remoteAddress(), cause.toString());
      channel.close();
    }
  }

  private enum State {
    WAITING,
    HEAD,
    BUSY,
    CLOSING
  }

  /** A full response: status, headers, a body of known length. */
  private static final class FullHttpResponseBuilder {
    private final DefaultFullHttpResponse response;

    FullHttpResponseBuilder(int status, byte[] body) {
      response =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              HttpResponseStatus.valueOf(status),
              Unpooled.wrappedBuffer(body));
      HttpUtil.setContentLength(response, body.length);
    }

    HttpHeaders headers() {
      return response.headers();
    }

    DefaultFullHttpResponse build() {
      return response;
    }
  }

  /**
   * One request and its response. The body fills on the event loop and is read by the handler's
   * thread; the response is written from the handler's thread (Netty queues the writes onto the
   * event loop, in order).
   */
  private final class NettyExchange implements Exchange, Exchange.ChunkedBody {
    private final Connection connection;
    private final Channel channel;
    private final HttpRequest request;
    private final String path;
    private final HttpHeaders responseHeaders = new DefaultHttpHeaders();
    private final Object lock = new Object(); // body, writability and client-gone waits
    private ByteArrayOutputStream body = new ByteArrayOutputStream(); // guarded by lock
    private long received; // guarded by lock
    private boolean bodyEnded; // guarded by lock
    private final List<Runnable> onGone = new ArrayList<>(); // guarded by lock
    private volatile boolean gone;
    private volatile int status = -1;
    private volatile boolean pipelined; // another request came behind this one
    private boolean chunked; // handler's thread only
    private boolean ended; // handler's thread only
    private boolean keepAlive; // decided when the response starts

    NettyExchange(Connection connection, HttpRequest request, String path) {
      this.connection = connection;
      this.channel = connection.channel;
      this.request = request;
      this.path = path;
      // No body to wait for: complete now (the codec's empty last content may come after the
      // handler has already answered, which must not read as a body still arriving).
      this.bodyEnded =
          !HttpUtil.isTransferEncodingChunked(request)
              && HttpUtil.getContentLength(request, 0L) == 0;
    }

    // Event loop side.

    void arrived(ByteBuf content, boolean last) {
      synchronized (lock) {
        if (bodyEnded) {
          return; // a pipelined request's body: not this one's
        }
        int n = content.readableBytes();
        received += n;
        if (body != null && received <= config.maxBodyBytes()) {
          byte[] b = new byte[n];
          content.readBytes(b);
          body.write(b, 0, n);
        } else {
          body = null; // over the limit: nothing more is kept
        }
        bodyEnded |= last;
        lock.notifyAll();
      }
    }

    boolean bodyComplete() {
      synchronized (lock) {
        return bodyEnded;
      }
    }

    void writabilityChanged() {
      synchronized (lock) {
        lock.notifyAll();
      }
    }

    void gone() {
      List<Runnable> run;
      synchronized (lock) {
        gone = true;
        lock.notifyAll();
        run = List.copyOf(onGone);
        onGone.clear();
      }
      run.forEach(Runnable::run);
    }

    // Handler side.

    @Override
    public String method() {
      return request.method().name();
    }

    @Override
    public String path() {
      return path;
    }

    @Override
    public String header(String name) {
      return request.headers().get(name);
    }

    @Override
    public Iterable<String> headerNames() {
      return request.headers().names();
    }

    @Override
    public void setHeader(String name, String value) {
      responseHeaders.set(name, value);
    }

    @Override
    public byte[] readBody(int limit, Duration timeout) throws IOException {
      long deadline = System.nanoTime() + timeout.toNanos();
      synchronized (lock) {
        while (!bodyEnded && body != null && received <= limit && !gone) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            throw new Exchange.BodyTimeout();
          }
          try {
            TimeUnit.NANOSECONDS.timedWait(lock, left);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted reading the body", e);
          }
        }
        if (body == null || received > limit) {
          throw new Exchange.BodyTooLarge();
        }
        if (!bodyEnded) {
          throw new IOException("client went away sending its body");
        }
        return body.toByteArray();
      }
    }

    /** The status line and headers of the response; decides whether the connection stays. */
    private void head(HttpResponse r) {
      r.headers().add(responseHeaders);
      boolean http10 = request.protocolVersion().equals(HttpVersion.HTTP_1_0);
      keepAlive =
          HttpUtil.isKeepAlive(request)
              && !HttpHeaderValues.CLOSE.contentEqualsIgnoreCase(
                  String.valueOf(responseHeaders.get(HttpHeaderNames.CONNECTION)))
              && !draining
              && !pipelined
              && bodyComplete()
              && !(http10 && chunked); // HTTP/1.0 has no chunks: the body ends with the connection
      log.debug(
          "HTTP {} {} from {}: {} keep-alive {} (body complete {}, pipelined {})",
          method(),
          path,
          channel.remoteAddress(),
          r.status().code(),
          keepAlive,
          bodyComplete(),
          pipelined);
      if (!keepAlive) {
        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      } else if (http10) {
        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      }
      status = r.status().code();
    }

    @Override
    public void respond(int code, byte[] bytes) throws IOException {
      if (status >= 0) {
        throw new IllegalStateException("response already started");
      }
      FullHttpResponseBuilder r = new FullHttpResponseBuilder(code, bytes);
      head(r.build());
      ended = true;
      if (gone) {
        throw new IOException("client went away");
      }
      last(r.build());
    }

    /**
     * Writes the response's last message; once it is on the wire the connection waits for the next
     * request or closes. The listener is on the promise before the write is queued, so it runs on
     * the event loop as the write completes, before the loop reads anything more: a client that
     * sends its next request the moment it has this answer finds the connection waiting for it.
     * (Added after the write, it could run later, as a task of its own, and the next request would
     * have been read as a pipelined one while this exchange still looked busy.)
     */
    private void last(Object message) {
      boolean keep = keepAlive;
      ChannelPromise done = channel.newPromise();
      done.addListener(
          f -> {
            if (f.isSuccess()) {
              connection.answered(this, keep);
            } else {
              log.debug(
                  "HTTP answer to {} failed: {}", channel.remoteAddress(), f.cause().toString());
              channel.close();
            }
          });
      channel.writeAndFlush(message, done);
    }

    @Override
    public ChunkedBody respondChunked(int code) throws IOException {
      if (status >= 0) {
        throw new IllegalStateException("response already started");
      }
      chunked = true;
      HttpResponse r =
          new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(code));
      head(r);
      if (!request.protocolVersion().equals(HttpVersion.HTTP_1_0)) {
        HttpUtil.setTransferEncodingChunked(r, true);
      }
      send(r);
      return this;
    }

    private void send(Object message) throws IOException {
      if (gone) {
        throw new IOException("client went away");
      }
      channel.writeAndFlush(message, channel.newPromise().addListener(closeOnFailure));
    }

    private final ChannelFutureListener closeOnFailure =
        f -> {
          if (!f.isSuccess()) {
            log.debug(
                "HTTP write to {} failed: {}", f.channel().remoteAddress(), f.cause().toString());
            f.channel().close(); // the client is gone: channelInactive tells the exchange
          }
        };

    @Override
    public void write(byte[] bytes) throws IOException {
      send(new DefaultHttpContent(Unpooled.wrappedBuffer(bytes)));
    }

    @Override
    public boolean writable() {
      return channel.isWritable();
    }

    @Override
    public void awaitWritable() throws IOException {
      long deadline = System.nanoTime() + config.writeTimeout().toNanos();
      synchronized (lock) {
        while (!channel.isWritable() && !gone) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            channel.close();
            throw new IOException(
                "client read nothing for " + config.writeTimeout().toMillis() + " ms");
          }
          try {
            TimeUnit.NANOSECONDS.timedWait(lock, left);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted waiting for the client", e);
          }
        }
      }
      if (gone) {
        throw new IOException("client went away");
      }
    }

    @Override
    public int status() {
      return status;
    }

    @Override
    public boolean clientGone() {
      return gone;
    }

    @Override
    public void onClientGone(Runnable r) {
      synchronized (lock) {
        if (!gone) {
          onGone.add(r);
          return;
        }
      }
      r.run();
    }

    @Override
    public void close() {
      synchronized (lock) {
        onGone.clear();
      }
      if (status < 0) {
        log.debug("HTTP {} {}: closed unanswered", method(), path);
        channel.close(); // nothing answered (the client went away, or a handler bug)
      } else if (chunked && !ended) {
        ended = true;
        if (!gone) {
          last(LastHttpContent.EMPTY_LAST_CONTENT);
        }
      }
    }
  }
}
