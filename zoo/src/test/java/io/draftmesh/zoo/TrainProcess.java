package io.draftmesh.zoo;

/** {@code draftmesh train} as a process of its own, for tests that signal it. */
final class TrainProcess {
  private TrainProcess() {}

  public static void main(String[] args) throws Exception {
    System.exit(TrainCommand.run(args));
  }
}
