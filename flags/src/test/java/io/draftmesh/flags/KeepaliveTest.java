package io.draftmesh.flags;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class KeepaliveTest {
  enum K implements Flags.Option {
    KEEPALIVE_SECONDS("keepalive-seconds"),
    KEEPALIVE_TIMEOUT_SECONDS("keepalive-timeout-seconds"),
    MAX_CONNECTION_AGE_SECONDS("max-connection-age-seconds");

    private final Flags.Spec spec;

    K(String name) {
      spec = new Flags.Spec(name, "S", "", "T_" + name());
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  static final Flags<K> FLAGS = new Flags<>(K.class, FlagsTest.BadFlag::new);
  static final Keepalive.Names<K> NAMES =
      new Keepalive.Names<>(
          K.KEEPALIVE_SECONDS, K.KEEPALIVE_TIMEOUT_SECONDS, K.MAX_CONNECTION_AGE_SECONDS);

  static Keepalive parse(Map<String, String> env, String... args) {
    return Keepalive.parse(FLAGS, FLAGS.parse(args, env, Set.of(), true), NAMES);
  }

  @Test
  void defaultsAndFlagsAndVariables() {
    assertThat(parse(Map.of())).isEqualTo(Keepalive.DEFAULT);
    assertThat(
            parse(
                Map.of("T_MAX_CONNECTION_AGE_SECONDS", "600"),
                "--keepalive-seconds",
                "12",
                "--keepalive-timeout-seconds=2"))
        .isEqualTo(
            new Keepalive(Duration.ofSeconds(12), Duration.ofSeconds(2), Duration.ofMinutes(10)));
  }

  @Test
  void outOfRangeValuesNameTheFlagTheValueAndTheRange() {
    assertThatThrownBy(() -> parse(Map.of(), "--keepalive-seconds", "5"))
        .isInstanceOf(FlagsTest.BadFlag.class)
        .hasMessage("--keepalive-seconds: 5 (expected: 10..86400)");
    assertThatThrownBy(() -> parse(Map.of(), "--keepalive-timeout-seconds", "0"))
        .hasMessage("--keepalive-timeout-seconds: 0 (expected: 1..3600)");
    assertThatThrownBy(() -> parse(Map.of(), "--max-connection-age-seconds", "3"))
        .hasMessage("--max-connection-age-seconds: 3 (expected: 0 (never) or 10..604800)");
    assertThatThrownBy(() -> parse(Map.of(), "--keepalive-seconds", "soon"))
        .hasMessage("--keepalive-seconds: soon (expected: an integer)");
  }
}
