package io.draftmesh.serving;

import io.draftmesh.flags.Keepalive;
import io.grpc.ManagedChannelBuilder;
import io.grpc.ServerBuilder;
import java.util.concurrent.TimeUnit;

/** Applies a service's {@link Keepalive} to its gRPC server and to the channels it opens. */
public final class Keepalives {
  private Keepalives() {}

  /**
   * The server pings idle caller connections; a caller that vanished is cut off after an unanswered
   * ping and its calls cancelled. Callers may ping as often as every 10 s, with or without calls
   * (so a caller's keepalive never earns it a "too many pings" GOAWAY). With a connection age, each
   * caller connection is asked to move on after that long; its running calls may finish there
   * however long they take (streams are long, and are never cut for rebalancing).
   */
  public static ServerBuilder<?> server(ServerBuilder<?> builder, Keepalive k) {
    builder
        .keepAliveTime(k.time().toMillis(), TimeUnit.MILLISECONDS)
        .keepAliveTimeout(k.timeout().toMillis(), TimeUnit.MILLISECONDS)
        .permitKeepAliveTime(Keepalive.PERMITTED_PING_INTERVAL.toMillis(), TimeUnit.MILLISECONDS)
        .permitKeepAliveWithoutCalls(true);
    if (!k.maxConnectionAge().isZero()) {
      builder
          .maxConnectionAge(k.maxConnectionAge().toMillis(), TimeUnit.MILLISECONDS)
          .maxConnectionAgeGrace(Long.MAX_VALUE, TimeUnit.DAYS);
    }
    return builder;
  }

  /**
   * The channel pings only while calls run (idle channels stay quiet): a peer that vanished
   * mid-call fails the call after an unanswered ping instead of waiting for its deadline.
   */
  public static ManagedChannelBuilder<?> channel(ManagedChannelBuilder<?> builder, Keepalive k) {
    return builder
        .keepAliveTime(k.time().toMillis(), TimeUnit.MILLISECONDS)
        .keepAliveTimeout(k.timeout().toMillis(), TimeUnit.MILLISECONDS)
        .keepAliveWithoutCalls(false);
  }
}
