package io.draftmesh.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --name value}, {@code --name=value} and positional arguments, checked against known flags.
 */
final class Args {
  private final Map<String, String> flags = new LinkedHashMap<>();
  private final List<String> positional = new ArrayList<>();

  private Args() {}

  static Args parse(String[] args, Set<String> known, Set<String> booleans) {
    Args a = new Args();
    for (int i = 0; i < args.length; i++) {
      String s = args[i];
      if (!s.startsWith("--")) {
        a.positional.add(s);
        continue;
      }
      String name = s.substring(2);
      String value = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (!known.contains(name) && !booleans.contains(name)) {
        throw new UsageException("--" + name + ": unknown flag");
      }
      if (booleans.contains(name)) {
        a.flags.put(name, value == null ? "true" : value);
        continue;
      }
      if (value == null) {
        if (i + 1 >= args.length) {
          throw new UsageException("--" + name + ": missing value");
        }
        value = args[++i];
      }
      a.flags.put(name, value);
    }
    return a;
  }

  List<String> positional() {
    return positional;
  }

  String get(String name) {
    return flags.get(name);
  }

  String get(String name, String fallback) {
    return flags.getOrDefault(name, fallback);
  }

  boolean has(String name) {
    return flags.containsKey(name);
  }

  String require(String name, String what) {
    String v = flags.get(name);
    if (v == null || v.isEmpty()) {
      throw new UsageException("--" + name + ": missing (expected: " + what + ")");
    }
    return v;
  }

  int intValue(String name, int fallback, int min, int max) {
    String v = flags.get(name);
    if (v == null) {
      return fallback;
    }
    int n;
    try {
      n = Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": " + v + " (expected: an integer)");
    }
    if (n < min || n > max) {
      throw new UsageException("--" + name + ": " + n + " (expected: " + min + ".." + max + ")");
    }
    return n;
  }

  long longValue(String name, long fallback) {
    String v = flags.get(name);
    if (v == null) {
      return fallback;
    }
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": " + v + " (expected: an integer)");
    }
  }

  float floatValue(String name, float fallback) {
    String v = flags.get(name);
    if (v == null) {
      return fallback;
    }
    try {
      return Float.parseFloat(v.trim());
    } catch (NumberFormatException e) {
      throw new UsageException("--" + name + ": " + v + " (expected: a number)");
    }
  }
}
