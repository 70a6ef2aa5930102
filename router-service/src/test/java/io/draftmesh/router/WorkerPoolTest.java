package io.draftmesh.router;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A {@code dns:///} pool's own re-resolution: one backend per resolved address, added and retired
 * as the answers change, a retired backend's channel kept while a request holds it. The lookup is a
 * table the test edits (DnsDiscoveryIT resolves through a real DNS server); {@link
 * WorkerPool#refresh} is called by the test, the interval being an hour.
 */
class WorkerPoolTest {
  static final Duration HOUR = Duration.ofHours(1);

  /** The channels the pool asked for, by target (in-process: nothing listens behind them). */
  final Map<String, ManagedChannel> channels = new LinkedHashMap<>();

  /** What the name resolves to now; null = the lookup fails. */
  volatile List<String> answer = List.of("127.0.0.2", "127.0.0.3");

  WorkerPool pool() {
    return WorkerPool.fromSpec(
        "target",
        "dns:///workers.test:7000",
        target -> {
          ManagedChannel c = InProcessChannelBuilder.forName(target).build();
          channels.put(target, c);
          return c;
        },
        HOUR,
        this::lookup);
  }

  InetAddress[] lookup(String host) throws UnknownHostException {
    assertThat(host).isEqualTo("workers.test");
    List<String> a = answer;
    if (a == null) {
      throw new UnknownHostException(host);
    }
    List<InetAddress> out = new ArrayList<>();
    for (String ip : a) {
      out.add(InetAddress.getByName(ip)); // literals: no lookup
    }
    return out.toArray(InetAddress[]::new);
  }

  static List<String> addresses(WorkerPool pool) {
    return pool.backends().stream().map(WorkerPool.Backend::address).toList();
  }

  @Test
  void oneBackendPerResolvedAddressFollowingTheAnswers() {
    try (WorkerPool pool = pool()) {
      assertThat(addresses(pool)).containsExactly("127.0.0.2:7000", "127.0.0.3:7000");
      WorkerPool.Backend three = pool.backends().get(1);
      answer = List.of("127.0.0.4", "127.0.0.3", "127.0.0.3");
      pool.refresh();
      assertThat(addresses(pool)).containsExactly("127.0.0.3:7000", "127.0.0.4:7000");
      assertThat(pool.backends().get(0)).as("a kept address keeps its channel").isSameAs(three);
      assertThat(channels.get("127.0.0.2:7000").isShutdown()).as("retired, unheld").isTrue();
      assertThat(channels.get("127.0.0.3:7000").isShutdown()).isFalse();
      assertThat(channels).hasSize(3);
    }
    assertThat(channels.values()).allMatch(ManagedChannel::isShutdown);
  }

  @Test
  void aFailedOrEmptyAnswerKeepsTheLastAddresses() {
    try (WorkerPool pool = pool()) {
      answer = null;
      pool.refresh();
      assertThat(addresses(pool)).containsExactly("127.0.0.2:7000", "127.0.0.3:7000");
      answer = List.of();
      pool.refresh();
      assertThat(addresses(pool)).containsExactly("127.0.0.2:7000", "127.0.0.3:7000");
      assertThat(channels.values()).noneMatch(ManagedChannel::isShutdown);
    }
  }

  @Test
  void aNameThatNeverResolvedIsUnavailableUntilItDoes() {
    answer = null;
    try (WorkerPool pool = pool()) {
      assertThatThrownBy(pool::acquire)
          .isInstanceOf(StatusRuntimeException.class)
          .hasMessage("UNAVAILABLE: pool target: no worker address resolved yet");
      answer = List.of("127.0.0.9");
      pool.refresh();
      assertThat(pool.acquire().address()).isEqualTo("127.0.0.9:7000");
    }
  }

  @Test
  void aRetiredBackendServesItsRequestsUntilTheLastOneEnds() {
    try (WorkerPool pool = pool()) {
      WorkerPool.Backend first = pool.acquire();
      WorkerPool.Backend second = pool.acquire();
      assertThat(List.of(first.address(), second.address()))
          .as("round-robin")
          .containsExactlyInAnyOrder("127.0.0.2:7000", "127.0.0.3:7000");
      WorkerPool.Backend two = first.address().endsWith(".2:7000") ? first : second;
      assertThat(two.tryHold()).isTrue(); // a second request on the same replica
      answer = List.of("127.0.0.3");
      pool.refresh();
      assertThat(addresses(pool)).containsExactly("127.0.0.3:7000");
      for (int i = 0; i < 4; i++) {
        WorkerPool.Backend b = pool.acquire();
        assertThat(b.address()).as("no new request on a retired backend").endsWith(".3:7000");
        b.release();
      }
      two.release();
      assertThat(two.channel().isShutdown()).as("one request still holds it").isFalse();
      two.release();
      assertThat(two.channel().isShutdown()).isTrue();
      assertThat(two.tryHold()).as("shut down for good").isFalse();
    }
  }

  @Test
  void roundRobinPassesOverAWorkerWhoseConnectionFailed() throws Exception {
    try (WorkerPool pool = pool()) {
      // Nothing listens behind 127.0.0.2's in-process name: its first connection fails.
      ManagedChannel down = channels.get("127.0.0.2:7000");
      CountDownLatch failed = new CountDownLatch(1);
      watch(down, down.getState(true), failed);
      assertThat(failed.await(10, TimeUnit.SECONDS)).isTrue();
      for (int i = 0; i < 4; i++) {
        WorkerPool.Backend b = pool.acquire();
        assertThat(b.address()).endsWith(".3:7000");
        b.release();
      }
    }
  }

  /** Counts {@code failed} down once {@code c} reaches TRANSIENT_FAILURE. */
  static void watch(ManagedChannel c, ConnectivityState seen, CountDownLatch failed) {
    if (seen == ConnectivityState.TRANSIENT_FAILURE) {
      failed.countDown();
      return;
    }
    c.notifyWhenStateChanged(seen, () -> watch(c, c.getState(false), failed));
  }

  @Test
  void dnsTargetsNameAHostAndAPort() {
    assertThat(WorkerPool.DnsName.parse("dns:///workers.ns.svc:50051"))
        .isEqualTo(new WorkerPool.DnsName("workers.ns.svc", 50051));
    assertThat(WorkerPool.DnsName.parse("dns:///[::1]:7"))
        .isEqualTo(new WorkerPool.DnsName("::1", 7));
    assertThat(WorkerPool.DnsName.parse("xds:///workers")).isNull();
    assertThatThrownBy(() -> WorkerPool.parseSpec("dns:///workers"))
        .hasMessage("dns:///workers (expected: dns:///name:port)");
    assertThatThrownBy(() -> WorkerPool.parseSpec("dns://8.8.8.8/workers:1"))
        .hasMessage("dns://8.8.8.8/workers:1 (expected: dns:///name:port)");
  }
}
