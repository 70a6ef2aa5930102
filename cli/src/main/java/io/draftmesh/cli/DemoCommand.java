package io.draftmesh.cli;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.telemetry.Telemetry;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code draftmesh demo}: the whole path once. Starts the mesh (target and draft workers, router)
 * on real ports in this process on the zoo models, streams one speculative generation through the
 * router with each token's provenance shown, prints the round statistics, and shuts down.
 */
final class DemoCommand {
  static final String USAGE =
      """
      usage: draftmesh demo [--prompt TEXT] [--strategy speculative|autoregressive|ngram]
                            [--max-tokens N] [--temperature T] [--seed S] [--random]
        Streams a generation from models/target with models/draft drafting (the trained zoo; with
        --random or where they are missing, random-weight checkpoints, whose text is noise), through
        a target worker, a draft worker and the router on real ports, then stops them.""";

  static final String DEFAULT_PROMPT = "In the beginning God created";

  private DemoCommand() {}

  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err)
      throws Exception {
    Args a =
        Args.parse(
            args,
            Set.of("prompt", "strategy", "max-tokens", "temperature", "seed"),
            Set.of("random"));
    boolean random = a.has("random") && !"false".equals(a.get("random"));
    MeshModels.Pair models = MeshModels.resolve(null, null, random, null, err);
    err.println(
        "starting the mesh on " + models.target() + " (target) and " + models.draft() + " (draft)");
    try (Telemetry telemetry = Telemetry.create(env, "draftmesh-demo");
        Mesh mesh =
            Mesh.start(
                Mesh.Spec.builder(models.target(), models.draft()).build(),
                telemetry.openTelemetry())) {
      err.println("mesh: " + mesh.addresses());
      List<String> generate =
          new ArrayList<>(
              List.of(
                  "--router",
                  mesh.routerAddress(),
                  "--model",
                  models.target().toString(),
                  "--prompt",
                  a.get("prompt", DEFAULT_PROMPT),
                  "--strategy",
                  a.get("strategy", "speculative"),
                  "--max-tokens",
                  a.get("max-tokens", "64"),
                  "--temperature",
                  a.get("temperature", "0"),
                  "--k",
                  "4",
                  "--adaptive"));
      if (a.has("seed")) {
        generate.addAll(List.of("--seed", a.get("seed")));
      }
      return RouterGenerate.run(generate.toArray(new String[0]), env, out, err);
    }
  }
}
