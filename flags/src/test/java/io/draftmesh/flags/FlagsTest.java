package io.draftmesh.flags;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class FlagsTest {
  static final class BadFlag extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    BadFlag(String message) {
      super(message);
    }
  }

  enum F implements Flags.Option {
    PORT("port", "N", "the port"),
    WAIT_MS("wait-ms", "MS", "how long"),
    NAME("name", "S", "a name"),
    ITEM("item", "X", "repeatable");

    private final Flags.Spec spec;

    F(String name, String arg, String help) {
      spec = new Flags.Spec(name, arg, help, "T_" + name());
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  static final Flags<F> FLAGS = new Flags<>(F.class, BadFlag::new);

  static Flags<F>.Values parse(Map<String, String> env, boolean trim, String... args) {
    return FLAGS.parse(args, env, Set.of(F.ITEM), trim);
  }

  @Test
  void flagsWinOverVariablesAndNameTheirOrigin() {
    Flags<F>.Values v = parse(Map.of("T_PORT", " 7 ", "T_NAME", "env"), true, "--name= a ");
    assertThat(v.intOf(F.PORT, 1)).isEqualTo(7);
    assertThat(v.origin(F.PORT)).isEqualTo("T_PORT");
    assertThat(v.get(F.NAME)).isEqualTo("a");
    assertThat(v.origin(F.NAME)).isEqualTo("--name");
    assertThat(v.millis(F.WAIT_MS, 5)).isEqualTo(Duration.ofMillis(5));
    assertThat(v.seconds(F.WAIT_MS, 2)).isEqualTo(Duration.ofSeconds(2));
    assertThat(v.get(F.WAIT_MS, "x")).isEqualTo("x");
    assertThat(parse(Map.of(), false, "--name", " a ").get(F.NAME)).isEqualTo(" a ");
  }

  @Test
  void repeatableFlagsKeepOrDropTheVariablesList() {
    Map<String, String> env = Map.of("T_ITEM", "a; b;;");
    assertThat(parse(env, true).list(F.ITEM, true)).containsExactly("a", "b");
    Flags<F>.Values v = parse(env, true, "--item", "c", "--item=d");
    assertThat(v.list(F.ITEM, false)).containsExactly("a", "b", "c", "d");
    assertThat(v.list(F.ITEM, true)).containsExactly("c", "d");
  }

  @Test
  void errorsAreTheServicesTypeAndNameTheFlag() {
    assertThatThrownBy(() -> parse(Map.of(), true, "port"))
        .isInstanceOf(BadFlag.class)
        .hasMessage("port: unexpected argument (expected: --flag value)");
    assertThatThrownBy(() -> parse(Map.of(), true, "--nope", "1"))
        .hasMessage("--nope: unknown flag (expected one of: --port, --wait-ms, --name, --item)");
    assertThatThrownBy(() -> parse(Map.of(), true, "--port"))
        .hasMessage("--port: missing value (expected: N)");
    assertThatThrownBy(() -> parse(Map.of("T_PORT", "x"), true).intOf(F.PORT, 0))
        .isInstanceOf(BadFlag.class)
        .hasMessage("T_PORT: x (expected: an integer)");
    assertThatThrownBy(() -> FLAGS.require(false, F.PORT, 9, "0..8"))
        .isInstanceOf(BadFlag.class)
        .hasMessage("--port: 9 (expected: 0..8)");
  }

  @Test
  void usageIsATableInTheEnumsOrder() {
    String n = System.lineSeparator();
    assertThat(FLAGS.usage(12, 10))
        .startsWith("flags (each also read from its environment variable):\n")
        .contains("  --port N   T_PORT     the port" + n)
        .endsWith("  --item X   T_ITEM     repeatable" + n);
    assertThat(Flags.row(4, 2, "a", "b", "c")).isEqualTo("a    b  c" + n);
  }
}
