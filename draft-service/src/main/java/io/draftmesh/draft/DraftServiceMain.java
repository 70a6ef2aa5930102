package io.draftmesh.draft;

import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerMain;
import java.util.Map;

/**
 * The draft worker: serves the ModelWorker contract for a model that proposes draft tokens (a small
 * or aligned model; many sessions, small KV budget). All logic lives in the worker module.
 */
public final class DraftServiceMain {
  private DraftServiceMain() {}

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
    return WorkerMain.run(args, env, WorkerConfig.Role.DRAFT);
  }
}
