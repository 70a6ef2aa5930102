package io.draftmesh.router;

import io.draftmesh.serving.Role;
import java.io.PrintStream;
import java.util.Map;

/** {@code router [flags]}: the router, as the router image and {@code draftmesh router} run it. */
public final class RouterRole implements Role {
  @Override
  public String name() {
    return "router";
  }

  @Override
  public String summary() {
    return "run the router: --target HOST:PORT [--draft HOST:PORT] [flags]";
  }

  @Override
  public String usage() {
    return "usage: draftmesh router --target HOST:PORT [--draft HOST:PORT] [flags]\n"
        + RouterConfig.usage()
        + io.draftmesh.telemetry.TelemetryConfig.usage(30, 34);
  }

  @Override
  public int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    return RouterMain.run(args, env, err);
  }
}
