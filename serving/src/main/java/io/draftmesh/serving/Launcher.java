package io.draftmesh.serving;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import java.util.TreeMap;

/**
 * The entry point of every service image: {@code java -cp 'lib/*' io.draftmesh.serving.Launcher
 * ROLE [flags]} runs the {@link Role} named ROLE, found on the classpath. Kubernetes manifests pass
 * the same subcommands the {@code draftmesh} command line has ({@code worker --role draft}, {@code
 * router}, {@code gateway}, {@code kvcache}).
 */
public final class Launcher {
  private Launcher() {}

  public static void main(String[] args) throws InterruptedException {
    int code = run(args, System.getenv(), System.err);
    if (code != 0) {
      System.exit(code);
    }
  }

  /** Runs the role {@code args[0]} with the rest; 2 (and the list of roles) for an unknown one. */
  public static int run(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    Map<String, Role> roles = roles();
    String name = args.length == 0 ? "" : args[0];
    Role role = roles.get(name);
    if (role == null) {
      err.println(
          "launcher: role "
              + (name.isEmpty() ? "missing" : "'" + name + "' unknown")
              + " (expected: one of "
              + roles.keySet()
              + " [flags])");
      return 2;
    }
    return role.run(Arrays.copyOfRange(args, 1, args.length), env, err);
  }

  /** Every role on the classpath, by name. */
  public static Map<String, Role> roles() {
    Map<String, Role> out = new TreeMap<>();
    for (Role r : ServiceLoader.load(Role.class)) {
      Role before = out.putIfAbsent(r.name(), r);
      if (before != null) {
        throw new IllegalStateException(
            "role " + r.name() + " registered twice: " + before.getClass() + ", " + r.getClass());
      }
    }
    return out;
  }

  /** The role called {@code name}, if it is on the classpath. */
  public static Optional<Role> role(String name) {
    return Optional.ofNullable(roles().get(name));
  }
}
