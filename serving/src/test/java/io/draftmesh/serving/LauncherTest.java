package io.draftmesh.serving;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LauncherTest {
  /** Registered for this test in src/test/resources/META-INF/services. */
  public static final class EchoRole implements Role {
    @Override
    public String name() {
      return "echo";
    }

    @Override
    public String summary() {
      return "prints its flags";
    }

    @Override
    public String usage() {
      return "usage: echo [ARGS]";
    }

    @Override
    public int run(String[] args, Map<String, String> env, PrintStream err) {
      err.print(String.join(" ", args) + "|" + env.getOrDefault("X", ""));
      return args.length == 0 ? 2 : 0;
    }
  }

  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private final PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);

  private String err() {
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void runsTheNamedRoleWithTheRestOfTheArguments() throws Exception {
    assertThat(Launcher.run(new String[] {"echo", "--a", "1"}, Map.of("X", "y"), err)).isZero();
    assertThat(err()).isEqualTo("--a 1|y");
    assertThat(Launcher.run(new String[] {"echo"}, Map.of(), err)).isEqualTo(2);
  }

  @Test
  void anUnknownOrMissingRoleExitsTwoNamingTheRolesThereAre() throws Exception {
    assertThat(Launcher.run(new String[] {"gateway"}, Map.of(), err)).isEqualTo(2);
    assertThat(err()).contains("role 'gateway' unknown").contains("[echo]");
    bytes.reset();
    assertThat(Launcher.run(new String[] {}, Map.of(), err)).isEqualTo(2);
    assertThat(err()).contains("role missing (expected: one of [echo]");
  }

  @Test
  void rolesAreFoundOnTheClasspath() {
    assertThat(Launcher.roles()).containsOnlyKeys("echo");
    assertThat(Launcher.role("echo")).get().extracting(Role::summary).isEqualTo("prints its flags");
    assertThat(Launcher.role("worker")).isEmpty();
  }
}
