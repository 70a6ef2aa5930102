package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The gateway runs no model, so its runtime classpath (what its image ships; written by the
 * dependency plugin to target/runtime-classpath.txt) must carry neither DJL nor PyTorch natives.
 * The test classpath may (tests compare with the engine), which is why the file is checked, not
 * this JVM's classpath.
 */
class RuntimeClasspathTest {
  @Test
  void runtimeClasspathCarriesNoDjlOrPyTorch() throws Exception {
    Path file = Path.of("target", "runtime-classpath.txt");
    assertThat(file).as("written by the dependency plugin before the tests").isRegularFile();
    List<String> entries = Arrays.asList(Files.readString(file).strip().split(File.pathSeparator));
    assertThat(entries).as("a real classpath").anyMatch(e -> e.contains("grpc-netty-shaded"));
    assertThat(entries)
        .as("no model runtime on the gateway's classpath")
        .noneMatch(e -> e.contains("/ai/djl/") || e.contains("pytorch") || e.contains("/engine/"));
  }
}
