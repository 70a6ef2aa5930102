package io.draftmesh.serving;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.CountDownLatch;

/**
 * A TCP proxy for one connection that forwards bytes both ways until {@link #blackHole()}, then
 * holds both sockets open and silent: what a caller whose machine vanished (power loss, a dropped
 * route: no FIN, no RST) looks like to the server. Only an unanswered keepalive ping can tell.
 *
 * <p>In the test-jar: the worker's and the mesh's vanished-caller tests share it ({@link
 * Keepalives} is what they test).
 */
public final class BlackHoleProxy implements AutoCloseable {
  private final ServerSocket listen = new ServerSocket(0);
  private final CountDownLatch frozen = new CountDownLatch(1);
  private final CountDownLatch never = new CountDownLatch(1); // released only by close()
  private volatile Socket client;
  private volatile Socket upstream;

  /** Listens on a free loopback port; the first connection is forwarded to {@code targetPort}. */
  public BlackHoleProxy(int targetPort) throws IOException {
    Thread accept =
        new Thread(
            () -> {
              try {
                client = listen.accept();
                upstream = new Socket("127.0.0.1", targetPort);
                pump(client.getInputStream(), upstream.getOutputStream());
                pump(upstream.getInputStream(), client.getOutputStream());
              } catch (IOException e) {
                // closed by the test
              }
            },
            "black-hole-accept");
    accept.setDaemon(true);
    accept.start();
  }

  private void pump(InputStream in, OutputStream out) {
    Thread t =
        new Thread(
            () -> {
              byte[] buf = new byte[8192];
              try {
                int n;
                while ((n = in.read(buf)) >= 0) {
                  if (frozen.getCount() == 0) {
                    never.await(); // read, never forward, never close
                  }
                  out.write(buf, 0, n);
                  out.flush();
                }
              } catch (IOException | InterruptedException e) {
                // closed
              }
            },
            "black-hole-pump");
    t.setDaemon(true);
    t.start();
  }

  /** The port callers connect to. */
  public int port() {
    return listen.getLocalPort();
  }

  /** From now on: read, never forward, never close. */
  public void blackHole() {
    frozen.countDown();
  }

  @Override
  public void close() throws IOException {
    never.countDown();
    listen.close();
    for (Socket s : new Socket[] {client, upstream}) {
      if (s != null) {
        s.close();
      }
    }
  }
}
