package io.draftmesh.flags;

import java.time.Duration;
import java.util.Objects;

/**
 * A gRPC service's connection liveness, both ways: its server pings every caller's idle connection
 * and its channels ping the services it calls while calls run. A peer that vanished without closing
 * its connection (power loss, a dropped route: no FIN, no RST) leaves an unanswered ping; the
 * connection is closed after {@code time + timeout} and its calls are cancelled, which frees what
 * they held (KV on the workers, a router slot). The router and the gateway share these flags; the
 * workers have their own (without a connection age).
 *
 * @param time ping interval on an idle connection; gRPC's Netty transport raises anything below 10
 *     s to 10 s, so that is refused rather than pretended
 * @param timeout how long a ping may go unanswered before the connection is closed
 * @param maxConnectionAge how long the server keeps one caller connection before asking the caller
 *     (GOAWAY) to open a new one, which re-resolves a {@code dns:///} target and so spreads callers
 *     over replicas that appeared since; running calls finish on the old connection. Zero = never
 */
public record Keepalive(Duration time, Duration timeout, Duration maxConnectionAge) {
  /** 30 s pings, 10 s to answer, connections kept forever. */
  public static final Keepalive DEFAULT =
      new Keepalive(Duration.ofSeconds(30), Duration.ofSeconds(10), Duration.ZERO);

  /** The shortest ping interval a server accepts from a caller (gRPC's floor, too). */
  public static final Duration PERMITTED_PING_INTERVAL = Duration.ofSeconds(10);

  public Keepalive {
    Objects.requireNonNull(time, "time");
    Objects.requireNonNull(timeout, "timeout");
    Objects.requireNonNull(maxConnectionAge, "maxConnectionAge");
  }

  /** The three flags of a service's flag enum, to read and check a Keepalive with. */
  public record Names<F extends Enum<F> & Flags.Option>(F time, F timeout, F maxConnectionAge) {}

  /** Reads the three flags (defaults: {@link #DEFAULT}) and checks them. */
  public static <F extends Enum<F> & Flags.Option> Keepalive parse(
      Flags<F> flags, Flags<F>.Values v, Names<F> names) {
    return new Keepalive(
            v.seconds(names.time(), (int) DEFAULT.time.toSeconds()),
            v.seconds(names.timeout(), (int) DEFAULT.timeout.toSeconds()),
            v.seconds(names.maxConnectionAge(), 0))
        .check(flags, names);
  }

  /** This, if every value is in range; otherwise the flags' error naming the flag and value. */
  public <F extends Enum<F> & Flags.Option> Keepalive check(Flags<F> flags, Names<F> names) {
    long t = time.toSeconds();
    flags.require(t >= 10 && t <= 86_400, names.time(), t, "10..86400");
    long to = timeout.toSeconds();
    flags.require(to >= 1 && to <= 3_600, names.timeout(), to, "1..3600");
    long age = maxConnectionAge.toSeconds();
    flags.require(
        age == 0 || (age >= 10 && age <= 604_800),
        names.maxConnectionAge(),
        age,
        "0 (never) or 10..604800");
    return this;
  }
}
