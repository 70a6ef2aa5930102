package io.draftmesh.router;

import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The workers of one pool (e.g. "target", "draft"), one channel per worker address, picked
 * round-robin per request (or by {@link KvPlacement}). The addresses are either a static list or
 * what one DNS name resolves to ({@code dns:///name:port}, a Kubernetes headless Service: one A
 * record per ready pod), resolved again every {@code resolveInterval}: a new address gets a
 * channel, a vanished one is retired (no new request picks it; its channel shuts down once the last
 * request holding it ends, so a request's sessions stay on their replica). A failed or empty answer
 * keeps the last addresses. Another target URI (another scheme) is one channel balancing inside
 * gRPC ({@code round_robin}), which placement cannot choose within.
 */
final class WorkerPool implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(WorkerPool.class);

  /** How long a backend's {@link ModelInfo} is trusted before it is asked again. */
  static final Duration INFO_TTL = Duration.ofSeconds(10);

  /** Resolves a host name to its addresses ({@link InetAddress#getAllByName} in production). */
  @FunctionalInterface
  interface Lookup {
    InetAddress[] addresses(String host) throws UnknownHostException;
  }

  private final String name;
  private final Function<String, ManagedChannel> channels;
  private final DnsName dns; // null: a static list (or a URI balanced inside gRPC)
  private final Lookup lookup;
  private final ScheduledExecutorService resolver; // null without dns
  private final Set<Backend> retiring = ConcurrentHashMap.newKeySet();
  private final AtomicInteger next = new AtomicInteger();
  private volatile List<Backend> backends; // sorted by address; replaced whole on a change
  private volatile boolean failing; // the last resolution failed (logged once)
  private boolean closed; // guarded by this

  private WorkerPool(
      String name,
      List<Backend> backends,
      Function<String, ManagedChannel> channels,
      DnsName dns,
      Lookup lookup,
      Duration resolveInterval) {
    this.name = name;
    this.backends = List.copyOf(backends);
    this.channels = channels;
    this.dns = dns;
    this.lookup = lookup;
    if (dns == null) {
      resolver = null;
      return;
    }
    resolver =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "resolve-" + name);
              t.setDaemon(true);
              return t;
            });
    refresh(); // at once, so a router that starts after its workers serves from its first request
    long every = resolveInterval.toMillis();
    resolver.scheduleWithFixedDelay(this::refresh, every, every, TimeUnit.MILLISECONDS);
  }

  /**
   * A pool from an address spec: {@code host:port[,host:port...]}, {@code dns:///name:port}
   * (resolved again every {@code resolveInterval}), or another target URI with a scheme.
   *
   * @param channels builds a channel for one gRPC target string
   */
  static WorkerPool fromSpec(
      String name,
      String spec,
      Function<String, ManagedChannel> channels,
      Duration resolveInterval) {
    return fromSpec(name, spec, channels, resolveInterval, InetAddress::getAllByName);
  }

  /** The same with {@code lookup} resolving DNS names (tests). */
  static WorkerPool fromSpec(
      String name,
      String spec,
      Function<String, ManagedChannel> channels,
      Duration resolveInterval,
      Lookup lookup) {
    List<String> targets = parseSpec(spec);
    DnsName dns = targets.size() == 1 ? DnsName.parse(targets.get(0)) : null;
    if (dns != null) {
      return new WorkerPool(name, List.of(), channels, dns, lookup, resolveInterval);
    }
    List<Backend> backends = new ArrayList<>();
    for (String target : targets) {
      backends.add(new Backend(target, channels.apply(target)));
    }
    return new WorkerPool(name, backends, channels, null, lookup, resolveInterval);
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
      DnsName.parse(s); // a dns: URI must name a host and a port
      return List.of(s);
    }
    List<String> out = new ArrayList<>();
    for (String part : s.split(",")) {
      String a = part.trim();
      if (portOf(a) < 0) {
        throw new IllegalArgumentException(a + " (expected: host:port with a port in 1..65535)");
      }
      out.add(a);
    }
    return out;
  }

  /** The port of {@code host:port}, or -1 when there is none in 1..65535. */
  private static int portOf(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      return -1;
    }
    try {
      int port = Integer.parseInt(hostPort.substring(colon + 1));
      return port > 0 && port <= 65535 ? port : -1;
    } catch (NumberFormatException e) {
      return -1;
    }
  }

  /** A {@code dns:///name:port} target: the name the router resolves itself, and the port. */
  record DnsName(String host, int port) {
    /** The name of a {@code dns:} URI; null for another scheme; throws when it is malformed. */
    static DnsName parse(String uri) {
      if (!uri.regionMatches(true, 0, "dns:", 0, 4)) {
        return null;
      }
      String expected = " (expected: dns:///name:port)";
      if (!uri.regionMatches(true, 0, "dns:///", 0, 7)) {
        // dns://server/name names a DNS server, which the JDK's resolver cannot be told to ask.
        throw new IllegalArgumentException(uri + expected);
      }
      String hostPort = uri.substring(7);
      int port = portOf(hostPort);
      if (port < 0 || hostPort.contains("/")) {
        throw new IllegalArgumentException(uri + expected);
      }
      String host = hostPort.substring(0, hostPort.lastIndexOf(':'));
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      return new DnsName(host, port);
    }
  }

  String name() {
    return name;
  }

  /** The backends now (a DNS pool's change while a request iterates is seen by the next). */
  List<Backend> backends() {
    return backends;
  }

  /**
   * The backend the next request goes to, held for it (see {@link Backend#tryHold}): round-robin,
   * passing over a worker whose connection failed (gone, and not yet out of DNS) while another is
   * left; UNAVAILABLE when a DNS pool has resolved no address yet.
   */
  Backend acquire() {
    while (true) {
      List<Backend> bs = backends;
      if (bs.isEmpty()) {
        throw Status.UNAVAILABLE
            .withDescription("pool " + name + ": no worker address resolved yet")
            .asRuntimeException();
      }
      int start = next.getAndIncrement();
      Backend pick = bs.get(Math.floorMod(start, bs.size()));
      for (int i = 0; i < bs.size(); i++) {
        Backend b = bs.get(Math.floorMod(start + i, bs.size()));
        if (b.connectable()) {
          pick = b;
          break;
        }
      }
      // Only a backend retired since the list was read refuses, and the pool's list lacks it
      // before it is retired: the next turn reads a list without it.
      if (pick.tryHold()) {
        return pick;
      }
    }
  }

  /** Resolves the DNS name again and follows the change. */
  void refresh() {
    retiring.removeIf(Backend::shutDown); // their last requests ended
    List<String> resolved = new ArrayList<>();
    try {
      for (InetAddress a : lookup.addresses(dns.host())) {
        String host = a.getHostAddress();
        String address = (a instanceof Inet6Address ? "[" + host + "]" : host) + ":" + dns.port();
        if (!resolved.contains(address)) {
          resolved.add(address);
        }
      }
    } catch (UnknownHostException | RuntimeException e) {
      if (!failing) {
        log.warn("pool {}: {} not resolved ({}); keeping {}", name, dns.host(), e, addresses());
      }
      failing = true;
      return;
    }
    failing = false;
    if (resolved.isEmpty()) {
      return;
    }
    Collections.sort(resolved);
    List<Backend> retired = new ArrayList<>();
    synchronized (this) {
      if (closed || resolved.equals(addresses())) {
        return;
      }
      Map<String, Backend> current = new LinkedHashMap<>();
      for (Backend b : backends) {
        current.put(b.address(), b);
      }
      List<Backend> now = new ArrayList<>();
      for (String address : resolved) {
        Backend b = current.remove(address);
        now.add(b != null ? b : new Backend(address, channels.apply(address)));
      }
      backends = List.copyOf(now);
      retired.addAll(current.values());
      retiring.addAll(retired);
    }
    log.info("pool {}: {} resolves to {}", name, dns.host(), resolved);
    for (Backend b : retired) {
      b.retire();
    }
  }

  private List<String> addresses() {
    List<String> out = new ArrayList<>();
    for (Backend b : backends) {
      out.add(b.address());
    }
    return out;
  }

  @Override
  public void close() {
    List<Backend> all;
    synchronized (this) {
      closed = true;
      all = new ArrayList<>(backends);
      all.addAll(retiring);
    }
    if (resolver != null) {
      resolver.shutdownNow();
    }
    for (Backend b : all) {
      b.channel.shutdown();
    }
    for (Backend b : all) {
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

  /**
   * One channel to a worker (or, for a URI balanced inside gRPC, to every worker behind it). The
   * requests using it hold it ({@link #tryHold}, {@link #release}); a backend a DNS pool no longer
   * resolves to is retired, and its channel shuts down when the last holder releases it.
   */
  static final class Backend {
    private static final int SHUT = -1; // holders: the channel is shut down

    private final String address;
    private final ManagedChannel channel;
    private volatile ModelInfo info;
    private volatile long infoAt;
    private final AtomicInteger load = new AtomicInteger(); // requests running here
    private final AtomicInteger holders = new AtomicInteger(); // or SHUT
    private volatile boolean retired;

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

    /** Holds this backend for a request; false once it is retired and shut down. */
    boolean tryHold() {
      while (true) {
        int h = holders.get();
        if (h == SHUT) {
          return false;
        }
        if (holders.compareAndSet(h, h + 1)) {
          return true;
        }
      }
    }

    /** A request holding this backend ended. */
    void release() {
      if (holders.decrementAndGet() == 0 && retired) {
        shutDownIfUnheld();
      }
    }

    /** No request picks this backend again; its channel shuts down once no request holds it. */
    void retire() {
      retired = true;
      shutDownIfUnheld();
    }

    private void shutDownIfUnheld() {
      if (holders.compareAndSet(0, SHUT)) {
        channel.shutdown(); // orderly: nothing runs on it any more
      }
    }

    boolean shutDown() {
      return holders.get() == SHUT;
    }

    /**
     * False while the channel's last connection attempt failed (a worker gone before DNS says so);
     * true otherwise, also when idle (it connects on the first call).
     */
    boolean connectable() {
      ConnectivityState s = channel.getState(false);
      return s != ConnectivityState.TRANSIENT_FAILURE && s != ConnectivityState.SHUTDOWN;
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
