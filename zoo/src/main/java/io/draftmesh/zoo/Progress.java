package io.draftmesh.zoo;

import java.io.PrintStream;

/**
 * A one-line progress bar: {@code [=====> ] 512/2000 25.6% | 1,532 tok/s | 5m12s < 15m03s | loss
 * ...}. On a terminal the line is redrawn in place; otherwise a line is printed every {@value
 * #PLAIN_INTERVAL_SECONDS} seconds. Throughput and ETA cover this session only (a resumed run does
 * not count the time before the restart).
 */
final class Progress {
  static final int PLAIN_INTERVAL_SECONDS = 30;
  private static final int WIDTH = 24;

  private final PrintStream out;
  private final int total;
  private final int startStep;
  private final boolean terminal;
  private final long startNanos = System.nanoTime();
  private long tokens;
  private long lastPrintNanos;
  private boolean lineOpen;

  Progress(PrintStream out, int total, int startStep) {
    this(out, total, startStep, System.console() != null);
  }

  Progress(PrintStream out, int total, int startStep, boolean terminal) {
    this.out = out;
    this.total = total;
    this.startStep = startStep;
    this.terminal = terminal;
    this.lastPrintNanos = startNanos;
  }

  double elapsedSeconds() {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  /** Records that step {@code step} (1-based) finished after {@code stepTokens} more tokens. */
  void update(int step, long stepTokens, String status) {
    tokens += stepTokens;
    long now = System.nanoTime();
    boolean due = now - lastPrintNanos >= PLAIN_INTERVAL_SECONDS * 1_000_000_000L;
    if (!terminal && !due && step != total && step != startStep + 1) {
      return;
    }
    lastPrintNanos = now;
    String line = line(step, status);
    if (terminal) {
      out.print("\r" + line + "\u001b[K");
      lineOpen = true;
    } else {
      out.println(line);
    }
    out.flush();
  }

  String line(int step, String status) {
    double elapsed = elapsedSeconds();
    int done = step - startStep;
    double perStep = done > 0 ? elapsed / done : 0;
    double eta = perStep * (total - step);
    int filled = (int) ((long) WIDTH * step / total);
    StringBuilder bar = new StringBuilder("[");
    for (int i = 0; i < WIDTH; i++) {
      bar.append(i < filled ? '=' : i == filled ? '>' : ' ');
    }
    bar.append(']');
    return String.format(
        "%s %d/%d %.1f%% | %,.0f tok/s | %s < %s | %s",
        bar,
        step,
        total,
        100.0 * step / total,
        elapsed > 0 ? tokens / elapsed : 0,
        duration(elapsed),
        duration(eta),
        status);
  }

  /** Prints a message on its own line (below the bar on a terminal). */
  void println(String message) {
    if (lineOpen) {
      out.println();
      lineOpen = false;
    }
    out.println(message);
    out.flush();
  }

  void finish() {
    if (lineOpen) {
      out.println();
      lineOpen = false;
    }
  }

  static String duration(double seconds) {
    long s = Math.round(seconds);
    if (s >= 3600) {
      return String.format("%dh%02dm%02ds", s / 3600, (s / 60) % 60, s % 60);
    }
    if (s >= 60) {
      return String.format("%dm%02ds", s / 60, s % 60);
    }
    return s + "s";
  }
}
