package io.draftmesh.cli;

import io.draftmesh.cli.bench.BenchCommand;
import io.draftmesh.draft.DraftServiceMain;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheMain;
import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterMain;
import io.draftmesh.target.TargetServiceMain;
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
        up               run a local mesh (target worker, draft worker, router) on the zoo models
        worker           run a model worker: --role draft|target --model DIR [flags]
        router           run the router: --target HOST:PORT [--draft HOST:PORT] [flags]
        kvcache          run the shared KV-cache service: [--data-dir DIR] [flags]
        generate         stream a completion from a running router (--router) or worker (--worker)
        gen-checkpoint   write a random-weight checkpoint of a preset shape
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
        case "worker" -> worker(rest, env);
        case "router" -> router(rest, env, err);
        case "kvcache" -> KvCacheMain.run(rest, env, err);
        case "generate" -> GenerateCommand.run(rest, env, out, err);
        case "gen-checkpoint" -> GenCheckpointCommand.run(rest, out);
        case "bench" -> BenchCommand.run(rest);
        case "train" -> TrainCommand.run(rest);
        case "eval" -> EvalCommand.run(rest);
        case "help", "--help", "-h" -> help(rest, out);
        default -> {
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

  /** {@code worker --role draft|target ...}: runs that service's main with the same flags. */
  private static int worker(String[] args, Map<String, String> env) {
    if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
      return help(new String[] {"worker"}, System.out);
    }
    String role = env.get("DRAFTMESH_ROLE");
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals("--role") && i + 1 < args.length) {
        role = args[i + 1];
      } else if (args[i].startsWith("--role=")) {
        role = args[i].substring("--role=".length());
      }
    }
    if (role == null) {
      throw new UsageException("--role: missing (expected: draft or target)");
    }
    return switch (role) {
      case "draft" -> DraftServiceMain.run(args, env);
      case "target" -> TargetServiceMain.run(args, env);
      default -> throw new UsageException("--role: " + role + " (expected: draft or target)");
    };
  }

  /** {@code router ...}: runs the router's main with the same flags until it is stopped. */
  private static int router(String[] args, Map<String, String> env, PrintStream err)
      throws InterruptedException {
    return RouterMain.run(args, env, err);
  }

  private static int help(String[] args, PrintStream out) {
    String topic = args.length == 0 ? "" : args[0];
    out.println(
        switch (topic) {
          case "demo" -> DemoCommand.USAGE;
          case "generate" -> GenerateCommand.USAGE;
          case "up" -> UpCommand.USAGE;
          case "router" ->
              "usage: draftmesh router --target HOST:PORT [--draft HOST:PORT] [flags]\n"
                  + RouterConfig.usage();
          case "kvcache" -> KvCacheMain.USAGE + "\n" + KvCacheConfig.usage();
          case "gen-checkpoint" -> GenCheckpointCommand.USAGE;
          case "bench" -> BenchCommand.USAGE;
          case "worker" ->
              "usage: draftmesh worker --role draft|target --model DIR [flags]\n"
                  + io.draftmesh.worker.WorkerConfig.usage();
          default -> USAGE;
        });
    return 0;
  }
}
