package io.draftmesh.cli;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.MeshModels;
import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.gateway.GatewayMain;
import io.draftmesh.gateway.GatewayServer;
import io.draftmesh.kvcache.KvCacheConfig;
import io.draftmesh.kvcache.KvCacheServer;
import io.draftmesh.telemetry.Telemetry;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * {@code draftmesh up}: a local mesh in this process (target worker, draft worker, router, each on
 * its own port; see {@link Mesh}) on the zoo models, serving until Ctrl-C or SIGTERM, then
 * draining.
 */
final class UpCommand {
  static final String USAGE =
      """
      usage: draftmesh up [--target-model DIR] [--draft-model DIR] [--port-base N] [--random]
                          [--drain-seconds S] [--kv-dtype float32|float16]
        Starts a target worker, a draft worker, a router, the gateway and a memory-only kvcache-service
        in one process, each on its own port (N..N+5 with --port-base N; free ports by default),
        prints their addresses, the
        playground URL, an API key for this run (unless DRAFTMESH_API_KEYS is set) and example
        commands, and serves until Ctrl-C or SIGTERM; then the router drains its
        running requests (up to S seconds, default 10) and everything stops.
        Models default to models/target and models/draft (the trained zoo); where those are missing,
        or with --random, random-weight checkpoints are generated into the bench cache instead.
        --kv-dtype float16 gives both workers float16 KV pools (half the memory; default float32).""";

  private UpCommand() {}

  /** Parsed flags. */
  record Options(
      Path targetModel, Path draftModel, int portBase, boolean random, int drain, KvDtype kvDtype) {
    static Options parse(String[] args) {
      Args a =
          Args.parse(
              args,
              Set.of("target-model", "draft-model", "port-base", "drain-seconds", "kv-dtype"),
              Set.of("random"));
      KvDtype kvDtype;
      try {
        kvDtype = a.has("kv-dtype") ? KvDtype.parse(a.get("kv-dtype")) : KvDtype.FLOAT32;
      } catch (IllegalArgumentException e) {
        throw new UsageException("--kv-dtype: " + e.getMessage());
      }
      if (!a.positional().isEmpty()) {
        throw new UsageException(a.positional().get(0) + ": unexpected argument");
      }
      return new Options(
          a.has("target-model") ? Path.of(a.get("target-model")) : null,
          a.has("draft-model") ? Path.of(a.get("draft-model")) : null,
          a.intValue("port-base", 0, 0, 65535 - 8),
          a.has("random") && !"false".equals(a.get("random")),
          a.intValue("drain-seconds", 10, 0, 86_400),
          kvDtype);
    }
  }

  /** Serves until the process is told to stop. */
  static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
    Options o = Options.parse(args);
    CompletableFuture<Void> stop = new CompletableFuture<>();
    CountDownLatch stopped = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              stop.complete(null);
              try {
                stopped.await(o.drain() + 30L, TimeUnit.SECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "draftmesh-up-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    try {
      return serve(o, out, err, stop, m -> {});
    } finally {
      stopped.countDown();
    }
  }

  /**
   * Starts the mesh, prints where everything is, waits for {@code stop}, then drains and stops it.
   *
   * @param started called with the running mesh (tests use it)
   */
  static int serve(
      Options o, PrintStream out, PrintStream err, Future<?> stop, Consumer<Mesh> started)
      throws Exception {
    MeshModels.Pair models;
    try {
      models = MeshModels.resolve(o.targetModel(), o.draftModel(), o.random(), null, err);
    } catch (IllegalArgumentException e) {
      throw new UsageException(e.getMessage());
    }
    err.println("starting the mesh: loading " + models.target() + " and " + models.draft());
    try (Telemetry telemetry = Telemetry.fromEnvironment("draftmesh-up");
        KvCacheServer kvcache = startKvCache(o.portBase(), telemetry);
        Mesh mesh =
            Mesh.start(
                Mesh.Spec.builder(models.target(), models.draft())
                    .portBase(o.portBase())
                    .drainSeconds(o.drain())
                    .kvCache("127.0.0.1:" + kvcache.port())
                    .workerFlags(List.of("--kv-dtype", o.kvDtype().id()))
                    .build(),
                telemetry.openTelemetry())) {
      Gateway gateway = startGateway(mesh, models, o.portBase(), System.getenv());
      // Listed with the mesh; closed by this try after the mesh (its workers publish to it).
      mesh.attach("kvcache", "127.0.0.1:" + kvcache.port(), () -> {});
      out.print(banner(mesh, models));
      out.print(gateway.banner());
      out.flush();
      started.accept(mesh);
      try {
        stop.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      err.println("draftmesh up: stopping (draining running requests)");
    }
    err.println("draftmesh up: stopped");
    return 0;
  }

  /** The public gateway in front of the mesh's router, and how to reach it. */
  record Gateway(String playground, String grpc, String apiKey) {
    String banner() {
      return "gateway: playground "
          + playground
          + "/  (API key: "
          + apiKey
          + "), public gRPC "
          + grpc
          + "\n  curl -N "
          + playground
          + "/v1/completions -H 'Authorization: Bearer "
          + apiKey
          + "' -H 'Content-Type: application/json' -d '{\"model\": \"zoo\", \"prompt\": \"In the beginning\","
          + " \"max_tokens\": 32, \"stream\": true, \"draftmesh\": {\"strategy\": \"speculative\"}}'\n";
    }
  }

  /**
   * Starts the gateway on ports base+3 (gRPC) and base+4 (HTTP), or free ones, and attaches it to
   * the mesh so it stops first. Keys come from DRAFTMESH_API_KEYS; without any, a random key is
   * made for this run and printed (the gateway never serves without a key unless told to).
   */
  static Gateway startGateway(
      Mesh mesh, MeshModels.Pair models, int portBase, Map<String, String> env)
      throws java.io.IOException {
    Map<String, String> gatewayEnv = new java.util.HashMap<>(env);
    String keys = env.getOrDefault("DRAFTMESH_API_KEYS", "");
    String key;
    if (keys.isBlank()) {
      byte[] random = new byte[12];
      new java.security.SecureRandom().nextBytes(random);
      key = "dm-" + java.util.HexFormat.of().formatHex(random);
      gatewayEnv.put("DRAFTMESH_API_KEYS", key);
    } else {
      key = "(one of DRAFTMESH_API_KEYS)";
    }
    String[] args = {
      "--router", mesh.routerAddress(),
      "--host", "127.0.0.1",
      "--grpc-port", String.valueOf(portBase == 0 ? 0 : portBase + 3),
      "--http-port", String.valueOf(portBase == 0 ? 0 : portBase + 4),
      "--model", "id=zoo,target=" + Mesh.TARGET + ",draft=" + Mesh.DRAFT + ",dir=" + models.target()
    };
    GatewayServer server = GatewayMain.start(args, gatewayEnv);
    String http = "http://127.0.0.1:" + server.ports().http();
    String grpc = "127.0.0.1:" + server.ports().grpc();
    mesh.attach("gateway", grpc, server);
    return new Gateway(http, grpc, key);
  }

  /**
   * One memory-only kvcache-service (256 MiB) on port base+5 or a free one, started before the mesh
   * so its target worker and router link to it.
   */
  static KvCacheServer startKvCache(int portBase, Telemetry telemetry) throws java.io.IOException {
    KvCacheConfig config =
        KvCacheConfig.inMemory(256L << 20).withPort(portBase == 0 ? 0 : portBase + 5);
    return KvCacheServer.onPort(config, telemetry.openTelemetry()).start();
  }

  static String banner(Mesh mesh, MeshModels.Pair models) {
    StringBuilder sb = new StringBuilder();
    sb.append("draftmesh mesh up (")
        .append(
            switch (models.source()) {
              case ZOO -> "zoo models";
              case FLAGS -> "models from the command line";
              case RANDOM -> "random-weight models: the text is noise";
            })
        .append("):\n");
    for (Map.Entry<String, String> e : mesh.addresses().entrySet()) {
      String what =
          switch (e.getKey()) {
            case Mesh.TARGET -> "target worker  " + models.target();
            case Mesh.DRAFT -> "draft worker   " + models.draft();
            case Mesh.ROUTER -> "router         strategies: autoregressive, speculative, ngram";
            case "gateway" -> "gateway        public gRPC Generation, OpenAI HTTP, playground";
            case "kvcache" -> "kvcache        shared KV blocks (memory tier, 256 MiB)";
            default -> e.getKey();
          };
      sb.append(String.format("  %-7s %-22s %s%n", e.getKey(), e.getValue(), what));
    }
    String model =
        models.source() == MeshModels.Source.ZOO
            ? ""
            : " --model " + shellQuote(models.target().toString());
    sb.append("try:\n  ./draftmesh generate --router ")
        .append(mesh.routerAddress())
        .append(" --strategy speculative --prompt 'In the beginning'")
        .append(model)
        .append("\n  (or --strategy autoregressive | ngram; --k N, --adaptive, --max-tokens N)\n")
        .append("Ctrl-C to stop.\n");
    return sb.toString();
  }

  private static String shellQuote(String s) {
    return s.matches("[A-Za-z0-9_./:=-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
  }
}
