package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MainTest {
  @TempDir Path dir;
  final ByteArrayOutputStream out = new ByteArrayOutputStream();
  final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private int run(String... args) {
    return Main.run(
        args,
        Map.of(),
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  @Test
  void helpAndUnknownCommands() {
    assertThat(run()).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8))
        .contains("demo", "worker", "generate", "bench");
    assertThat(run("help", "worker")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("--kv-budget-mb", "DRAFTMESH_MODEL");
    assertThat(run("help", "up")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("--port-base", "--target-model");
    assertThat(run("help", "router")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("--draft-timeout-ms");
    assertThat(run("help", "generate")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("--router", "--strategy");
    assertThat(run("help", "bench")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("bench speculative");
    assertThat(run("frobnicate")).isEqualTo(2);
    assertThat(err()).contains("unknown command frobnicate");
  }

  @Test
  void benchRejectsAnUnknownSuiteAndAMissingOne() {
    assertThat(run("bench", "frobnicate")).isEqualTo(2);
    assertThat(run("bench")).isEqualTo(2);
  }

  @Test
  void routerFlagErrorsReturnTwoAndNameTheFlag() {
    assertThat(run("router", "--port", "abc")).isEqualTo(2);
    assertThat(err()).contains("--port: abc (expected: an integer)");
  }

  @Test
  void usageErrorsNameTheFlag() {
    assertThat(run("worker", "--model", dir.toString())).isEqualTo(2);
    assertThat(err()).contains("--role: missing");
    assertThat(run("worker", "--role", "oracle")).isEqualTo(2);
    assertThat(err()).contains("--role: oracle (expected: draft or target)");
    assertThat(run("generate", "--prompt", "x", "--model", dir.toString())).isEqualTo(2);
    assertThat(err()).contains("--worker: missing");
    assertThat(run("generate", "--router", "localhost:1", "--prompt", "x", "--strategy", "magic"))
        .isEqualTo(2);
    assertThat(err())
        .contains(
            "--strategy: magic (expected: autoregressive, speculative, ngram, nudging,"
                + " entropy-switch, lead-in, specpc or speckv)");
    assertThat(run("generate", "--router", "localhost:1", "--prompt", "x", "--worker", "y"))
        .isEqualTo(2);
    assertThat(err()).contains("--worker: unknown flag");
    assertThat(run("gen-checkpoint", dir.resolve("m").toString(), "--preset", "huge")).isEqualTo(2);
    assertThat(err()).contains("--preset", "tiny-llama");
  }

  @Test
  void genCheckpointWritesALoadableDirectoryOnce() {
    Path m = dir.resolve("m");
    assertThat(run("gen-checkpoint", m.toString(), "--preset", "tiny-qwen2", "--seed", "5"))
        .isZero();
    assertThat(Files.isRegularFile(m.resolve("config.json"))).isTrue();
    assertThat(Files.isRegularFile(m.resolve("tokenizer.json"))).isTrue();
    assertThat(run("gen-checkpoint", m.toString(), "--preset", "tiny-qwen2")).isEqualTo(2);
    assertThat(err()).contains("already holds a checkpoint");
  }
}
