package io.draftmesh.worker;

import io.draftmesh.serving.Role;
import java.io.PrintStream;
import java.util.Map;

/**
 * {@code worker --role draft|target [flags]}: a model worker of the role {@code --role} (or {@code
 * DRAFTMESH_ROLE}) names, with that role's defaults. The draft and target images run this role.
 */
public final class WorkerRole implements Role {
  @Override
  public String name() {
    return "worker";
  }

  @Override
  public String summary() {
    return "run a model worker: --role draft|target --model DIR [flags]";
  }

  @Override
  public String usage() {
    return "usage: draftmesh worker --role draft|target --model DIR [flags]\n"
        + WorkerConfig.usage()
        + io.draftmesh.telemetry.TelemetryConfig.usage(32, 32);
  }

  @Override
  public int run(String[] args, Map<String, String> env, PrintStream err) {
    for (String a : args) {
      if (a.equals("--help") || a.equals("-h")) {
        err.print(usage());
        return 0;
      }
    }
    String role = env.get("DRAFTMESH_ROLE");
    String origin = "DRAFTMESH_ROLE";
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--role") && i + 1 < args.length) {
        role = args[i + 1];
        origin = "--role";
      } else if (args[i].startsWith("--role=")) {
        role = args[i].substring("--role=".length());
        origin = "--role";
      }
    }
    if (role == null) {
      err.println("worker: --role: missing (expected: draft or target)");
      return 2;
    }
    WorkerConfig.Role parsed;
    try {
      parsed = WorkerConfig.Role.parse(role, origin);
    } catch (WorkerConfig.ConfigException e) {
      err.println("worker: " + e.getMessage());
      return 2;
    }
    return WorkerMain.run(args, env, parsed, err);
  }
}
