package io.draftmesh.zoo;

/** DJL settings for the zoo's commands, applied before the PyTorch engine first loads. */
final class Runtimes {
  private Runtimes() {}

  /**
   * Runs DJL offline on the CPU build of PyTorch with {@code threads} intra-op threads (0: one per
   * core) and one inter-op thread, unless the JVM was started with other settings.
   */
  static void configureDjl(int threads) {
    setIfAbsent("ai.djl.offline", "true");
    if (System.getenv("PYTORCH_FLAVOR") == null) {
      setIfAbsent("PYTORCH_FLAVOR", "cpu");
    }
    int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    if (threads > 0) {
      System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(n));
    } else {
      setIfAbsent("ai.djl.pytorch.num_threads", Integer.toString(n));
    }
    setIfAbsent("ai.djl.pytorch.num_interop_threads", "1");
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }
}
