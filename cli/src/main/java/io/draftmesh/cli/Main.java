package io.draftmesh.cli;

import io.draftmesh.cli.bench.BenchCommand;
import io.draftmesh.serving.Launcher;
import io.draftmesh.serving.Role;
import io.draftmesh.zoo.EvalCommand;
import io.draftmesh.zoo.TrainCommand;
import java.io.PrintStream;
import java.util.Arrays;
import java.util.Map;

/** The {@code draftmesh} command: dispatches to one subcommand and exits with its code. */
public final class Main {
  static final String USAGE =
      """
      usage: draftmesh COMMAND [flags]

      commands:
        demo             generate from a bundled tiny model through a real worker (start here)
        up               run a local mesh (target worker, draft worker, router, gateway) on the zoo models
        worker           run a model worker: --role draft|target --model DIR [flags]
        router           run the router: --target HOST:PORT [--draft HOST:PORT] [flags]
        kvcache          run the shared KV-cache service: [--data-dir DIR] [flags]
        gateway          run the public gateway: --router HOST:PORT [--model SPEC]... [flags]
        generate         stream a completion from a running router (--router) or worker (--worker)
        gen-checkpoint   write a random-weight checkpoint of a preset shape
        images           build the container images (Docker; the launcher script runs images/build)
        fuzz TARGET      a Jazzer campaign on a parser, --minutes N (the launcher script runs .ci/fuzz)
        bench            benchmarks
        train            build the corpus and tokenizer, train a zoo model (--preset target|draft|aligned)
        eval zoo         evaluate the zoo models: bits/byte, acceptance, template compliance
        help [COMMAND]   this text, or a command's flags""";

  private Main() {}

  public static void main(String[] args) {
    int code = run(args, System.getenv(), System.out, System.err);
    System.exit(code);
  }

  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err) {
    String command = args.length == 0 ? "help" : args[0];
    String[] rest = Arrays.copyOfRange(args, Math.min(1, args.length), args.length);
    try {
      return switch (command) {
        case "demo" -> DemoCommand.run(rest, env, out, err);
        case "up" -> UpCommand.run(rest, out, err);
        case "generate" -> GenerateCommand.run(rest, env, out, err);
        case "gen-checkpoint" -> GenCheckpointCommand.run(rest, out);
        case "bench" -> BenchCommand.run(rest);
        case "train" -> TrainCommand.run(rest);
        case "eval" -> EvalCommand.run(rest);
        case "help", "--help", "-h" -> help(rest, out);
        default -> {
          // The service roles (worker, router, gateway, kvcache) come from the modules on the
          // classpath, exactly as each service image runs them (io.draftmesh.serving.Launcher).
          Role role = Launcher.roles().get(command);
          if (role != null) {
            yield role.run(rest, env, err);
          }
          err.println("draftmesh: unknown command " + command);
          err.println(USAGE);
          yield 2;
        }
      };
    } catch (UsageException e) {
      err.println("draftmesh " + command + ": " + e.getMessage());
      err.println("run 'draftmesh help " + command + "' for its flags");
      return 2;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return 130;
    } catch (Exception e) {
      err.println("draftmesh " + command + ": " + e);
      return 1;
    }
  }

  private static int help(String[] args, PrintStream out) {
    String topic = args.length == 0 ? "" : args[0];
    out.println(
        switch (topic) {
          case "demo" -> DemoCommand.USAGE;
          case "generate" -> GenerateCommand.USAGE;
          case "up" -> UpCommand.USAGE;
          case "gen-checkpoint" -> GenCheckpointCommand.USAGE;
          case "bench" -> BenchCommand.USAGE;
          default -> Launcher.role(topic).map(Role::usage).orElse(USAGE);
        });
    return 0;
  }
}
