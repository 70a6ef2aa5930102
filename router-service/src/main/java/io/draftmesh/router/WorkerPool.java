package io.draftmesh.router;

import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * The workers of one pool (e.g. "target", "draft"): either several static addresses, one channel
 * each, picked round-robin per request, or one DNS name whose channel balances over every address
 * the name resolves to (gRPC's {@code round_robin}; a Kubernetes headless Service). Either way one
 * Session stream runs on one backend, so a sequence keeps its affinity for the whole request.
 */
final class WorkerPool implements AutoCloseable {
  /** How long a backend's {@link ModelInfo} is trusted before it is asked again. */
  static final Duration INFO_TTL = Duration.ofSeconds(10);

  private final String name;
  private final List<Backend> backends;
  private final AtomicInteger next = new AtomicInteger();

  WorkerPool(String name, List<Backend> backends) {
    if (backends.isEmpty()) {
      throw new IllegalArgumentException("pool " + name + ": no workers");
    }
    this.name = name;
    this.backends = List.copyOf(backends);
  }

  /**
   * A pool from an address spec: {@code host:port[,host:port...]} or one target URI with a scheme
   * (e.g. {@code dns:///workers.ns.svc:50051}).
   *
   * @param channels builds a channel for one gRPC target string
   */
  static WorkerPool fromSpec(String name, String spec, Function<String, ManagedChannel> channels) {
    List<Backend> backends = new ArrayList<>();
    for (String target : parseSpec(spec)) {
      backends.add(new Backend(target, channels.apply(target)));
    }
    return new WorkerPool(name, backends);
  }

  /** The gRPC target strings of a spec; throws IllegalArgumentException naming what is wrong. */
  static List<String> parseSpec(String spec) {
    String s = spec == null ? "" : spec.trim();
    if (s.isEmpty()) {
      throw new IllegalArgumentException(
          "\"\" (expected: host:port[,host:port] or dns:///name:port)");
    }
    if (s.contains("://")) {
      if (s.contains(",")) {
        throw new IllegalArgumentException(
            s + " (expected: one target URI such as dns:///name:port, or host:port[,host:port])");
      }
      return List.of(s);
    }
    List<String> out = new ArrayList<>();
    for (String part : s.split(",")) {
      String a = part.trim();
      int colon = a.lastIndexOf(':');
      boolean ok = colon > 0 && colon < a.length() - 1;
      if (ok) {
        try {
          int port = Integer.parseInt(a.substring(colon + 1));
          ok = port > 0 && port <= 65535;
        } catch (NumberFormatException e) {
          ok = false;
        }
      }
      if (!ok) {
        throw new IllegalArgumentException(a + " (expected: host:port with a port in 1..65535)");
      }
      out.add(a);
    }
    return out;
  }

  String name() {
    return name;
  }

  List<Backend> backends() {
    return backends;
  }

  /** The backend the next request goes to. */
  Backend pick() {
    return backends.get(Math.floorMod(next.getAndIncrement(), backends.size()));
  }

  @Override
  public void close() {
    for (Backend b : backends) {
      b.channel.shutdown();
    }
    for (Backend b : backends) {
      try {
        if (!b.channel.awaitTermination(2, TimeUnit.SECONDS)) {
          b.channel.shutdownNow();
        }
      } catch (InterruptedException e) {
        b.channel.shutdownNow();
        Thread.currentThread().interrupt();
      }
    }
  }

  /** One channel to a worker (or, for a DNS target, to every worker behind the name). */
  static final class Backend {
    private final String address;
    private final ManagedChannel channel;
    private volatile ModelInfo info;
    private volatile long infoAt;
    private final AtomicInteger load = new AtomicInteger(); // requests running here

    Backend(String address, ManagedChannel channel) {
      this.address = address;
      this.channel = channel;
    }

    String address() {
      return address;
    }

    /** Requests of this router running on this backend now (KV-aware placement's load). */
    int load() {
      return load.get();
    }

    void started() {
      load.incrementAndGet();
    }

    void finished() {
      load.decrementAndGet();
    }

    ManagedChannel channel() {
      return channel;
    }

    /** The model info last seen, or null. */
    ModelInfo cachedInfo() {
      return info;
    }

    /**
     * The worker's model info, asked again when older than {@link #INFO_TTL}; UNAVAILABLE (or the
     * worker's own status) naming the address when it cannot be reached.
     */
    ModelInfo info(Duration timeout) {
      ModelInfo i = info;
      if (i != null && System.nanoTime() - infoAt < INFO_TTL.toNanos()) {
        return i;
      }
      try {
        i =
            ModelWorkerGrpc.newBlockingStub(channel)
                .withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS)
                .getModelInfo(GetModelInfoRequest.getDefaultInstance());
      } catch (StatusRuntimeException e) {
        info = null;
        Status s = e.getStatus();
        Status.Code code =
            s.getCode() == Status.Code.DEADLINE_EXCEEDED ? Status.Code.UNAVAILABLE : s.getCode();
        throw Status.fromCode(code)
            .withDescription(
                "worker "
                    + address
                    + " is unreachable: "
                    + s.getCode()
                    + (s.getDescription() == null ? "" : " " + s.getDescription()))
            .asRuntimeException();
      }
      info = i;
      infoAt = System.nanoTime();
      return i;
    }
  }
}
