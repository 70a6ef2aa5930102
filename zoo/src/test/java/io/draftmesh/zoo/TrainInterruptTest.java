package io.draftmesh.zoo;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SIGTERM to a real training process: it saves its state, exits cleanly and resumes. */
class TrainInterruptTest {
  private static final Pattern STOPPED = Pattern.compile("stopped at step (\\d+) of 100000");

  @TempDir Path dir;

  @Test
  void sigtermSavesTheStateAndTheRunResumesFromIt() throws Exception {
    Corpus corpus = TinyCorpus.write(dir.resolve("corpus"), 200);
    List<String> args =
        new ArrayList<>(
            List.of(
                "--preset",
                "tiny",
                "--corpus",
                corpus.dir().toString(),
                "--vocab",
                "384",
                "--work",
                dir.resolve("work").toString(),
                "--out",
                dir.resolve("out").toString(),
                "--threads",
                "1",
                "--steps",
                "100000",
                "--save-every",
                "100000"));

    String first = trainThenTerminate(args);
    int step = stoppedAt(first);
    assertThat(Files.readString(dir.resolve("work/state/state.json")))
        .contains("\"step\": " + step);

    args.add("--resume");
    String second = trainThenTerminate(args);
    assertThat(second).contains("resuming tiny from step " + step + " ");
    assertThat(stoppedAt(second)).isGreaterThan(step);
    try (Stream<Path> files = Files.list(dir)) {
      assertThat(files.filter(f -> f.getFileName().toString().startsWith("hs_err")))
          .as("JVM crash logs")
          .isEmpty();
    }
  }

  /** Starts a training process, sends SIGTERM after its first step, returns all it printed. */
  private String trainThenTerminate(List<String> args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Dai.djl.offline=true");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(TrainProcess.class.getName());
    cmd.addAll(args);
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    // A run that ignores the signal must fail this test, not hang it: kill it after a while.
    Thread watchdog =
        new Thread(
            () -> {
              try {
                if (!p.waitFor(90, TimeUnit.SECONDS)) {
                  p.destroyForcibly();
                }
              } catch (InterruptedException e) {
                p.destroyForcibly();
              }
            });
    watchdog.setDaemon(true);
    watchdog.start();
    // A piped run prints its first step's progress line at once: "[=> ...] 12/100000 ...".
    Pattern stepLine = Pattern.compile("\\] \\d+/100000 ");
    StringBuilder out = new StringBuilder();
    boolean signalled = false;
    try (InputStream in = p.getInputStream()) {
      int c;
      while ((c = in.read()) >= 0) {
        out.append((char) c);
        if (!signalled && c == '\n' && stepLine.matcher(out).find()) {
          // Not Process.destroy(): it closes the pipe this test still reads.
          new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor();
          signalled = true;
        }
      }
    }
    p.waitFor();
    assertThat(signalled).as(out.toString()).isTrue();
    // 128 + SIGTERM: the JVM's own exit for the signal, reached after the shutdown hook.
    assertThat(p.exitValue()).as(out.toString()).isEqualTo(143);
    return out.toString();
  }

  private static int stoppedAt(String output) {
    Matcher m = STOPPED.matcher(output);
    assertThat(m.find()).as(output).isTrue();
    return Integer.parseInt(m.group(1));
  }
}
