package io.draftmesh.kvcache;

import io.draftmesh.serving.Role;
import io.draftmesh.telemetry.TelemetryConfig;
import java.io.PrintStream;
import java.util.Map;

/**
 * {@code kvcache [flags]}: the KV-cache service, as its image and {@code draftmesh kvcache} run it.
 */
public final class KvCacheRole implements Role {
  @Override
  public String name() {
    return "kvcache";
  }

  @Override
  public String summary() {
    return "run the shared KV-cache service: [--data-dir DIR] [flags]";
  }

  @Override
  public String usage() {
    return KvCacheMain.USAGE + "\n" + KvCacheConfig.usage() + TelemetryConfig.usage(30, 34);
  }

  @Override
  public int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    return KvCacheMain.run(args, env, err);
  }
}
