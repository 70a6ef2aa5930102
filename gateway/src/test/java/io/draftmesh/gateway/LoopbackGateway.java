package io.draftmesh.gateway;

import io.draftmesh.flags.Keepalive;
import io.grpc.InsecureServerCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;

/** Starts gateways for tests: gRPC and HTTP on free loopback ports, production wiring. */
final class LoopbackGateway {
  private LoopbackGateway() {}

  /** A started gateway for {@code config}, its router channel to {@code config.router()}. */
  static GatewayServer start(GatewayConfig config) {
    return start(config, OpenTelemetry.noop());
  }

  /** The same, traced with {@code otel} (on both servers and the router channel). */
  static GatewayServer start(GatewayConfig config, OpenTelemetry otel) {
    try {
      GatewayServer g =
          new GatewayServer(
              NettyServerBuilder.forAddress(
                  new InetSocketAddress("127.0.0.1", 0), InsecureServerCredentials.create()),
              new InetSocketAddress("127.0.0.1", 0),
              GatewayServer.routerChannel(config.router(), Keepalive.DEFAULT, otel),
              config,
              otel);
      g.start();
      return g;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
