package io.draftmesh.gateway;

import io.draftmesh.serving.Role;
import java.io.PrintStream;
import java.util.Map;

/**
 * {@code gateway [flags]}: the public gateway, as its image and {@code draftmesh gateway} run it.
 */
public final class GatewayRole implements Role {
  @Override
  public String name() {
    return "gateway";
  }

  @Override
  public String summary() {
    return "run the public gateway: --router HOST:PORT [--model SPEC]... [flags]";
  }

  @Override
  public String usage() {
    return "usage: draftmesh gateway --router HOST:PORT [--model SPEC]... [flags]\n"
        + "API keys: DRAFTMESH_API_KEYS=key1,key2 or --api-keys-file PATH\n"
        + GatewayConfig.usage()
        + io.draftmesh.telemetry.TelemetryConfig.usage(32, 42);
  }

  @Override
  public int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    return GatewayMain.run(args, env, err);
  }
}
