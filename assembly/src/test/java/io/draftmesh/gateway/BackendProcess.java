package io.draftmesh.gateway;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A real observability backend (Zipkin, Prometheus) run as a child process on a loopback port for
 * one test class: started, waited for until its health URL answers, and killed at the end. Its
 * output goes to a log file that a failure message names.
 */
final class BackendProcess implements AutoCloseable {
  final int port;
  final Path log;
  private final Process process;
  private final HttpClient http = HttpClient.newHttpClient();

  private BackendProcess(int port, Path log, Process process) {
    this.port = port;
    this.log = log;
    this.process = process;
  }

  /** Starts {@code command} (which must listen on {@code port}) and waits for {@code health}. */
  static BackendProcess start(
      String name, int port, List<String> command, String health, Duration within)
      throws IOException, InterruptedException {
    Path log = Files.createTempFile(name + "-", ".log");
    Process p =
        new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    BackendProcess b = new BackendProcess(port, log, p);
    long deadline = System.nanoTime() + within.toNanos();
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        throw new IllegalStateException(
            name + " exited with " + p.exitValue() + " before it was healthy; see " + log);
      }
      try {
        if (b.get(health).statusCode() == 200) {
          return b;
        }
      } catch (IOException notYet) {
        // Not listening yet.
      }
      Thread.sleep(250);
    }
    b.close();
    throw new IllegalStateException(name + " not healthy after " + within + "; see " + log);
  }

  /** A free loopback port (the backend binds it right after). */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  HttpResponse<String> get(String pathAndQuery) throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + pathAndQuery))
            .timeout(Duration.ofSeconds(10))
            .GET()
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** GETs {@code pathAndQuery} until {@code done} accepts the body; returns the last body. */
  String poll(String pathAndQuery, Predicate<String> done, Duration within)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + within.toNanos();
    String body = "";
    while (true) {
      HttpResponse<String> r = get(pathAndQuery);
      body = r.body();
      if (r.statusCode() == 200 && done.test(body)) {
        return body;
      }
      if (System.nanoTime() > deadline) {
        return body;
      }
      Thread.sleep(250);
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
