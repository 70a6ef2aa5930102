package io.draftmesh.cli.bench;

import java.io.PrintStream;

/**
 * {@code draftmesh bench}: benchmarks (to be filled in; the engine bench lives in the bench
 * module).
 */
public final class BenchCommand {
  public static final String USAGE =
      """
      usage: draftmesh bench engine [flags]
        Measures engine step costs on this machine (not implemented yet).""";

  private BenchCommand() {}

  /** Runs a benchmark; returns the exit code. */
  public static int run(String[] args) {
    PrintStream err = System.err;
    err.println(USAGE);
    return 2;
  }
}
