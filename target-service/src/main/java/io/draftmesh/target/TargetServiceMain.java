package io.draftmesh.target;

import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerMain;
import java.util.Map;

/**
 * The target worker: serves the ModelWorker contract for a model that verifies draft tokens (the
 * large model; fewer sessions, large KV budget). All logic lives in the worker module.
 */
public final class TargetServiceMain {
  private TargetServiceMain() {}

  public static void main(String[] args) {
    int code = run(args, System.getenv());
    if (code != 0) {
      System.exit(code);
    }
  }

  /**
   * Serves until shutdown; returns the exit code (2 for bad flags, 1 if the model fails to load).
   */
  public static int run(String[] args, Map<String, String> env) {
    return WorkerMain.run(args, env, WorkerConfig.Role.TARGET);
  }
}
