package io.draftmesh.flags;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * The flags of one service, an enum of {@link Option}s: parses {@code --name value} and {@code
 * --name=value} over environment variables (a flag wins over its variable), reads integers and
 * durations with errors that name where the value came from, and prints the {@code --help} table.
 * Every error is thrown as the {@link ConfigException} the service's factory makes.
 *
 * @param <F> the service's flag enum, in the order {@link #usage} prints
 */
public final class Flags<F extends Enum<F> & Flags.Option> {

  /**
   * One flag's spelling.
   *
   * @param name the flag without {@code --}
   * @param arg what its value is, e.g. {@code N}
   * @param help one line of help
   * @param env the environment variable it is also read from
   */
  public record Spec(String name, String arg, String help, String env) {}

  /** A flag enum constant: gives its {@link Spec}. */
  public interface Option {
    Spec spec();
  }

  /** A flag or variable that is missing, malformed or out of range. */
  public static class ConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
      super(message);
    }
  }

  private final Class<F> type;
  private final Function<String, ? extends ConfigException> error;

  /** Flags of {@code type} whose errors {@code error} makes from their message. */
  public Flags(Class<F> type, Function<String, ? extends ConfigException> error) {
    this.type = type;
    this.error = error;
  }

  /**
   * Parses {@code args} over {@code env}. A flag in {@code lists} may repeat, and its variable
   * holds {@code ;}-separated values; see {@link Values#list}. Variables are always trimmed, other
   * flag values only with {@code trimArgs}.
   */
  public Values parse(String[] args, Map<String, String> env, Set<F> lists, boolean trimArgs) {
    Values r = new Values();
    for (F f : type.getEnumConstants()) {
      String v = env.get(f.spec().env());
      if (v != null && !v.isBlank()) {
        if (lists.contains(f)) {
          for (String p : v.split(";")) {
            if (!p.isBlank()) {
              r.envLists.computeIfAbsent(f, k -> new ArrayList<>()).add(p.trim());
            }
          }
        } else {
          r.values.put(f, v.trim());
          r.origins.put(f, f.spec().env());
        }
      }
    }
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (!a.startsWith("--")) {
        throw error.apply(a + ": unexpected argument (expected: --flag value)");
      }
      String name = a.substring(2);
      String value = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      F f = of(name);
      if (f == null) {
        throw error.apply("--" + name + ": unknown flag (expected one of: " + names() + ")");
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          throw error.apply("--" + name + ": missing value (expected: " + f.spec().arg() + ")");
        }
        value = args[++i];
      }
      if (lists.contains(f)) {
        r.argLists.computeIfAbsent(f, k -> new ArrayList<>()).add(value.trim());
      } else {
        r.values.put(f, trimArgs ? value.trim() : value);
        r.origins.put(f, "--" + name);
      }
    }
    return r;
  }

  /** Throws {@code --name: value (expected: expected)} unless {@code ok}. */
  public void require(boolean ok, F f, long value, String expected) {
    if (!ok) {
      throw error.apply("--" + f.spec().name() + ": " + value + " (expected: " + expected + ")");
    }
  }

  /** The flag table, for {@code --help}, in columns of the given widths. */
  public String usage(int flagWidth, int envWidth) {
    StringBuilder sb = new StringBuilder("flags (each also read from its environment variable):\n");
    for (F f : type.getEnumConstants()) {
      Spec s = f.spec();
      sb.append(row(flagWidth, envWidth, "  --" + s.name() + " " + s.arg(), s.env(), s.help()));
    }
    return sb.toString();
  }

  /** One line of a {@link #usage} table. */
  public static String row(int flagWidth, int envWidth, String flag, String env, String help) {
    return String.format(
        Locale.ROOT, "%-" + flagWidth + "s %-" + envWidth + "s %s%n", flag, env, help);
  }

  /** {@code --a, --b, ...}: every flag, for messages. */
  public String names() {
    StringBuilder sb = new StringBuilder();
    for (F f : type.getEnumConstants()) {
      sb.append(sb.length() == 0 ? "--" : ", --").append(f.spec().name());
    }
    return sb.toString();
  }

  private F of(String name) {
    for (F f : type.getEnumConstants()) {
      if (f.spec().name().equals(name)) {
        return f;
      }
    }
    return null;
  }

  /** What {@link #parse} found: each flag's value and where it came from. */
  public final class Values {
    private final Map<F, String> values;
    private final Map<F, String> origins;
    private final Map<F, List<String>> envLists;
    private final Map<F, List<String>> argLists;

    private Values() {
      values = new EnumMap<>(type);
      origins = new EnumMap<>(type);
      envLists = new EnumMap<>(type);
      argLists = new EnumMap<>(type);
    }

    /** The value, or null if neither the flag nor its variable was given. */
    public String get(F f) {
      return values.get(f);
    }

    /** The value, or {@code fallback}. */
    public String get(F f, String fallback) {
      return values.getOrDefault(f, fallback);
    }

    /** {@code --name} or the variable the value came from; null if not given. */
    public String origin(F f) {
      return origins.get(f);
    }

    /** The value as an integer, or {@code fallback}; an error names the origin. */
    public int intOf(F f, int fallback) {
      String v = values.get(f);
      if (v == null) {
        return fallback;
      }
      try {
        return Integer.parseInt(v.trim());
      } catch (NumberFormatException e) {
        throw error.apply(origins.get(f) + ": " + v + " (expected: an integer)");
      }
    }

    /** The value as whole milliseconds, or {@code fallback} of them. */
    public Duration millis(F f, int fallback) {
      return Duration.ofMillis(intOf(f, fallback));
    }

    /** The value as whole seconds, or {@code fallback} of them. */
    public Duration seconds(F f, int fallback) {
      return Duration.ofSeconds(intOf(f, fallback));
    }

    /**
     * A repeatable flag's values: those of its variable, then those of the flags; or, with {@code
     * flagsReplaceEnv}, only the flags' when there are any.
     */
    public List<String> list(F f, boolean flagsReplaceEnv) {
      List<String> fromArgs = argLists.getOrDefault(f, List.of());
      List<String> out = new ArrayList<>();
      if (!flagsReplaceEnv || fromArgs.isEmpty()) {
        out.addAll(envLists.getOrDefault(f, List.of()));
      }
      out.addAll(fromArgs);
      return out;
    }
  }
}
