package io.draftmesh.telemetry;

import io.draftmesh.flags.Flags;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The telemetry flags every service shares, parsed before the service's own flags (which never see
 * them): where the Prometheus {@code /metrics} endpoint listens. Traces and OpenTelemetry exporters
 * are configured by the standard {@code OTEL_*} variables instead (see {@link Telemetry}).
 *
 * @param metricsHost the address {@code /metrics} binds, {@code 0.0.0.0} for all interfaces (a
 *     Prometheus server scrapes from another host)
 * @param metricsPort the port of {@code /metrics}; 0 (the default) serves none
 */
public record TelemetryConfig(String metricsHost, int metricsPort) {

  /** The port the Kubernetes manifests give every service: the OpenTelemetry exporter's default. */
  public static final int CONVENTIONAL_PORT = 9464;

  /** A flag or variable that is malformed or out of range. */
  public static final class ConfigException extends Flags.ConfigException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private enum Flag implements Flags.Option {
    METRICS_PORT(
        "metrics-port",
        "N",
        "Prometheus /metrics port, 0 = none (default 0; the k8s manifests use "
            + CONVENTIONAL_PORT
            + ")"),
    METRICS_HOST("metrics-host", "ADDR", "address /metrics binds (default 0.0.0.0)");

    private final Flags.Spec spec;

    Flag(String name, String arg, String help) {
      spec = new Flags.Spec(name, arg, help, "DRAFTMESH_" + name());
    }

    @Override
    public Flags.Spec spec() {
      return spec;
    }
  }

  private static final Flags<Flag> FLAGS = new Flags<>(Flag.class, ConfigException::new);

  /** No {@code /metrics} endpoint. (After FLAGS: the constructor validates with it.) */
  public static final TelemetryConfig OFF = new TelemetryConfig("0.0.0.0", 0);

  public TelemetryConfig {
    FLAGS.require(
        metricsPort >= 0 && metricsPort <= 65535, Flag.METRICS_PORT, metricsPort, "0..65535");
    if (metricsHost == null || metricsHost.isBlank()) {
      throw new ConfigException(
          "--metrics-host: '" + metricsHost + "' (expected: an address such as 0.0.0.0)");
    }
  }

  /** Whether a {@code /metrics} endpoint is asked for. */
  public boolean metricsEnabled() {
    return metricsPort > 0;
  }

  /** The telemetry config and the arguments left for the service's own flags. */
  public record Parsed(TelemetryConfig config, String[] rest) {}

  /**
   * Takes the telemetry flags out of {@code args} (both {@code --name value} and {@code
   * --name=value}) and reads them over {@code env}; everything else is left, in order, for the
   * service's parser.
   *
   * @throws ConfigException for a malformed value, naming the flag or variable it came from
   */
  public static Parsed parse(String[] args, Map<String, String> env) {
    List<String> mine = new ArrayList<>();
    List<String> rest = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      Flag f = ownFlag(a);
      if (f == null) {
        rest.add(a);
        continue;
      }
      mine.add(a);
      if (!a.contains("=") && i + 1 < args.length) {
        mine.add(args[++i]);
      }
    }
    Flags<Flag>.Values v = FLAGS.parse(mine.toArray(new String[0]), env, Set.of(), true);
    TelemetryConfig config =
        new TelemetryConfig(v.get(Flag.METRICS_HOST, "0.0.0.0"), v.intOf(Flag.METRICS_PORT, 0));
    return new Parsed(config, rest.toArray(new String[0]));
  }

  private static Flag ownFlag(String arg) {
    for (Flag f : Flag.values()) {
      String name = "--" + f.spec().name();
      if (arg.equals(name) || arg.startsWith(name + "=")) {
        return f;
      }
    }
    return null;
  }

  /** The flag table, for a service's {@code --help}. */
  public static String usage(int flagWidth, int envWidth) {
    StringBuilder sb = new StringBuilder();
    for (Flag f : Flag.values()) {
      Flags.Spec s = f.spec();
      sb.append(
          Flags.row(flagWidth, envWidth, "  --" + s.name() + " " + s.arg(), s.env(), s.help()));
    }
    return sb.toString();
  }
}
