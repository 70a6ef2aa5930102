package io.draftmesh.serving;

import java.io.PrintStream;
import java.util.Map;

/**
 * One deployable role of the mesh (worker, router, gateway, kvcache): the subcommand a container
 * runs. Each service module registers its role in {@code
 * META-INF/services/io.draftmesh.serving.Role}, so a classpath holds exactly the roles of the
 * modules on it: the router image has no worker role (and no DJL), the {@code draftmesh} command
 * line has them all. {@link Launcher} finds them.
 */
public interface Role {
  /** The subcommand: {@code worker}, {@code router}, {@code gateway}, {@code kvcache}. */
  String name();

  /** One line for the command list. */
  String summary();

  /** The full usage text ({@code draftmesh help NAME}). */
  String usage();

  /**
   * Serves until the process is told to stop; returns the exit code (2 for bad flags, 1 when the
   * service cannot start).
   */
  int run(String[] args, Map<String, String> env, PrintStream err) throws InterruptedException;
}
