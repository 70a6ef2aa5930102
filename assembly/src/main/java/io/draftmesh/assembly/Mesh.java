package io.draftmesh.assembly;

import io.draftmesh.router.RouterConfig;
import io.draftmesh.router.RouterServer;
import io.draftmesh.worker.WorkerConfig;
import io.draftmesh.worker.WorkerServer;
import io.opentelemetry.api.OpenTelemetry;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * A whole DraftMesh in one JVM, every service on its own real (Netty) port, as separate processes
 * would run it: a target worker, a draft worker and a router over both. What {@code draftmesh up}
 * serves and {@code draftmesh bench speculative} measures.
 *
 * <p>{@link #start} brings the workers up (binding at once, loading and warming up in the
 * background, in parallel), waits until both serve, then starts the router. {@link #close} stops
 * the components in reverse order of start, each draining: the router first (running requests get
 * its drain grace, which closes their worker sessions), then the workers.
 *
 * <p>More components join with {@link #attach} (the gateway, started on {@link #routerAddress()}):
 * they are listed in {@link #addresses()} and closed before everything started earlier. With a port
 * base, component {@code i} listens on {@code base + i} ({@link Spec#port}): target 0, draft 1,
 * router 2, the next one 3.
 *
 * <p>With {@link Spec.Builder#targetReplicas} of n &gt; 1 the target is n workers of the same
 * model, named {@link #targetReplica}{@code (i)}: the router's pool {@code target} spans them all
 * (round-robin, or KV-aware placement with a kvcache), and each is also a pool of its own by that
 * name, so a request can choose its replica.
 */
public final class Mesh implements AutoCloseable {
  public static final String TARGET = "target";
  public static final String DRAFT = "draft";
  public static final String ROUTER = "router";

  /** Port offsets from {@link Spec#portBase}. */
  public static final int TARGET_PORT_OFFSET = 0;

  public static final int DRAFT_PORT_OFFSET = 1;
  public static final int ROUTER_PORT_OFFSET = 2;

  /** The first of {@link Spec#moreWorkers}; 3 is the gateway's when {@code up} attaches one. */
  public static final int MORE_WORKERS_PORT_OFFSET = 5;

  /** The most target replicas a mesh starts. */
  public static final int MAX_TARGET_REPLICAS = 8;

  /** Longest the models may take to load and warm up. */
  static final Duration LOAD_TIMEOUT = Duration.ofMinutes(10);

  /**
   * What to start.
   *
   * @param targetModel the target worker's checkpoint directory
   * @param draftModel the draft worker's, or null for a target-only mesh
   * @param host the host name the addresses are given with (servers listen on every interface)
   * @param portBase 0 = every component on a free port; else component i on {@code portBase + i}
   * @param targetKvBudgetMb KV pool of the target worker, MiB
   * @param draftKvBudgetMb KV pool of the draft worker, MiB
   * @param maxContext longest sequence per worker (capped by each model)
   * @param maxTokensPerOp largest k per worker op
   * @param drainSeconds grace for running requests and sessions on {@link #close}
   * @param routerFlags more router flags (see {@code RouterConfig.usage()}), e.g. {@code
   *     --draft-timeout-ms 5000}
   * @param moreWorkers workers beyond target and draft, each its own router pool
   * @param kvcache the kvcache-service every target worker and the router use; null = none
   * @param prefixCache whether workers share KV blocks between sessions by content (benchmarks that
   *     time prefill on repeated prompts turn it off)
   * @param targetReplicas target workers of {@code targetModel}, 1..{@link #MAX_TARGET_REPLICAS}
   * @param targetFlags more flags for every target worker (see {@code WorkerConfig}), e.g. {@code
   *     --kvcache-deadline-ms 5000}
   * @param workerFlags more flags for every worker, target, draft and the others, e.g. {@code
   *     --kv-dtype float16}
   */
  public record Spec(
      Path targetModel,
      Path draftModel,
      String host,
      int portBase,
      int targetKvBudgetMb,
      int draftKvBudgetMb,
      int maxContext,
      int maxTokensPerOp,
      int drainSeconds,
      List<String> routerFlags,
      List<Worker> moreWorkers,
      String kvcache,
      boolean prefixCache,
      int targetReplicas,
      List<String> targetFlags,
      List<String> workerFlags) {

    public Spec {
      Objects.requireNonNull(targetModel, "targetModel");
      Objects.requireNonNull(host, "host");
      if (portBase != 0 && (portBase < 1 || portBase > 65535 - 16)) {
        throw new IllegalArgumentException(
            "--port-base: "
                + portBase
                + " (expected: 0 for free ports, or 1.."
                + (65535 - 16)
                + ")");
      }
      if (targetReplicas < 1 || targetReplicas > MAX_TARGET_REPLICAS) {
        throw new IllegalArgumentException(
            "targetReplicas: " + targetReplicas + " (expected: 1.." + MAX_TARGET_REPLICAS + ")");
      }
      routerFlags = List.copyOf(routerFlags);
      targetFlags = List.copyOf(targetFlags);
      workerFlags = List.copyOf(workerFlags);
      moreWorkers = List.copyOf(moreWorkers);
      for (Worker w : moreWorkers) {
        if (List.of(TARGET, DRAFT, ROUTER).contains(w.name())
            || w.name().startsWith(TARGET + "-")) {
          throw new IllegalArgumentException(
              "worker "
                  + w.name()
                  + ": name taken (expected: not target, target-N, draft or router)");
        }
      }
    }

    /**
     * A builder starting from free ports, one target worker, KV pools of 256 (target) and 128
     * (draft) MiB, context 4096, k up to 64 per op, 10 s drain, no more workers and no
     * kvcache-service.
     */
    public static Builder builder(Path targetModel, Path draftModel) {
      return new Builder(targetModel, draftModel);
    }

    /** The port of the component at {@code offset}: 0 (any free one) without a port base. */
    public int port(int offset) {
      return portBase == 0 ? 0 : portBase + offset;
    }

    /** The port offset of target replica {@code i}: 0 for the first, the rest after moreWorkers. */
    int targetPortOffset(int i) {
      return i == 0 ? TARGET_PORT_OFFSET : MORE_WORKERS_PORT_OFFSET + moreWorkers.size() + i - 1;
    }

    /** A {@link Spec} set field by field; {@link #build} validates it. */
    public static final class Builder {
      private final Path targetModel;
      private final Path draftModel;
      private int portBase;
      private int targetKvBudgetMb = 256;
      private int draftKvBudgetMb = 128;
      private int maxContext = 4096;
      private int maxTokensPerOp = 64;
      private int drainSeconds = 10;
      private List<String> routerFlags = List.of();
      private final List<Worker> moreWorkers = new ArrayList<>();
      private String kvcache;
      private boolean prefixCache = true;
      private int targetReplicas = 1;
      private List<String> targetFlags = List.of();
      private List<String> workerFlags = List.of();

      private Builder(Path targetModel, Path draftModel) {
        this.targetModel = targetModel;
        this.draftModel = draftModel;
      }

      /** Component {@code i} on {@code base + i}; 0 = every component on a free port. */
      public Builder portBase(int base) {
        this.portBase = base;
        return this;
      }

      public Builder kvBudgets(int targetMb, int draftMb) {
        this.targetKvBudgetMb = targetMb;
        this.draftKvBudgetMb = draftMb;
        return this;
      }

      /** Longest sequence and largest k per op, for every worker. */
      public Builder limits(int context, int tokensPerOp) {
        this.maxContext = context;
        this.maxTokensPerOp = tokensPerOp;
        return this;
      }

      public Builder drainSeconds(int seconds) {
        this.drainSeconds = seconds;
        return this;
      }

      /**
       * Links every worker (prefix fetch and publish) and the router (KV-aware placement) to the
       * kvcache-service at {@code address}; null = none.
       */
      public Builder kvCache(String address) {
        this.kvcache = address;
        return this;
      }

      /** Whether workers share KV blocks between sessions by content (default on). */
      public Builder prefixCache(boolean on) {
        this.prefixCache = on;
        return this;
      }

      public Builder routerFlags(List<String> flags) {
        this.routerFlags = flags;
        return this;
      }

      /** {@code n} target workers of the target model (default 1); see {@link Mesh}. */
      public Builder targetReplicas(int n) {
        this.targetReplicas = n;
        return this;
      }

      /** More flags for every target worker. */
      public Builder targetFlags(List<String> flags) {
        this.targetFlags = flags;
        return this;
      }

      /** More flags for every worker (target, draft and the others). */
      public Builder workerFlags(List<String> flags) {
        this.workerFlags = flags;
        return this;
      }

      /**
       * One more worker, started beside the target and the draft with the same limits and joined to
       * the router as the pool {@code name} (requests choose it by name); its port follows the
       * router's ({@code base + 3 + i}) when a port base is given.
       */
      public Builder worker(String name, Path model, WorkerConfig.Role role) {
        moreWorkers.add(new Worker(name, model, role));
        return this;
      }

      public Spec build() {
        return new Spec(
            targetModel,
            draftModel,
            "localhost",
            portBase,
            targetKvBudgetMb,
            draftKvBudgetMb,
            maxContext,
            maxTokensPerOp,
            drainSeconds,
            routerFlags,
            moreWorkers,
            kvcache,
            prefixCache,
            targetReplicas,
            targetFlags,
            workerFlags);
      }
    }
  }

  /** A worker beyond the target and the draft (its KV budget is the draft's). */
  public record Worker(String name, Path model, WorkerConfig.Role role) {
    public Worker {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(role, "role");
    }
  }

  /** A started component: what {@link #addresses()} lists and {@link #close()} stops. */
  private record Component(String name, String address, AutoCloseable server) {}

  private final Spec spec;
  private final Deque<Component> components = new ArrayDeque<>(); // newest first; guarded by this
  private final List<WorkerServer> targets = new ArrayList<>(); // replica i at i
  private WorkerServer draft;
  private RouterServer router;
  private final Map<String, WorkerServer> workers = new LinkedHashMap<>(); // moreWorkers by name
  private boolean closed; // guarded by this

  private Mesh(Spec spec) {
    this.spec = spec;
  }

  /**
   * Starts the workers, waits until they serve, then starts the router. On failure everything
   * already started is stopped and the cause thrown.
   */
  public static Mesh start(Spec spec, OpenTelemetry otel) throws IOException, InterruptedException {
    return start(spec, component -> otel);
  }

  /**
   * The same, each component with its own OpenTelemetry (as separate processes would have: their
   * own {@code service.name}, exporters and metrics), asked for by component name ({@link #TARGET},
   * {@link #DRAFT}, {@link #ROUTER} or a {@link Spec.Builder#worker} name).
   */
  public static Mesh start(Spec spec, Function<String, OpenTelemetry> otelOf)
      throws IOException, InterruptedException {
    Mesh m = new Mesh(spec);
    try {
      for (int i = 0; i < spec.targetReplicas(); i++) {
        String name = m.targetName(i);
        WorkerServer t =
            WorkerServer.onPort(
                    m.workerConfig(
                        spec.targetModel(), WorkerConfig.Role.TARGET, spec.targetPortOffset(i)),
                    otelOf.apply(name))
                .start();
        m.targets.add(t);
        m.add(name, t.port(), t);
      }
      if (spec.draftModel() != null) {
        m.draft =
            WorkerServer.onPort(
                    m.workerConfig(spec.draftModel(), WorkerConfig.Role.DRAFT, DRAFT_PORT_OFFSET),
                    otelOf.apply(DRAFT))
                .start();
        m.add(DRAFT, m.draft.port(), m.draft);
      }
      for (int i = 0; i < spec.moreWorkers().size(); i++) {
        Worker w = spec.moreWorkers().get(i);
        WorkerServer server =
            WorkerServer.onPort(
                    m.workerConfig(w.model(), w.role(), MORE_WORKERS_PORT_OFFSET + i),
                    otelOf.apply(w.name()))
                .start();
        m.workers.put(w.name(), server);
        m.add(w.name(), server.port(), server);
      }
      for (WorkerServer t : m.targets) {
        t.awaitReady(LOAD_TIMEOUT);
      }
      if (m.draft != null) {
        m.draft.awaitReady(LOAD_TIMEOUT);
      }
      for (WorkerServer w : m.workers.values()) {
        w.awaitReady(LOAD_TIMEOUT);
      }
      m.router =
          RouterServer.onPort(m.routerConfig(spec.port(ROUTER_PORT_OFFSET)), otelOf.apply(ROUTER))
              .start();
      m.add(ROUTER, m.router.port(), m.router);
      return m;
    } catch (IOException | InterruptedException | RuntimeException e) {
      m.close();
      throw e;
    }
  }

  private WorkerConfig workerConfig(Path model, WorkerConfig.Role role, int offset) {
    int kv = role == WorkerConfig.Role.TARGET ? spec.targetKvBudgetMb() : spec.draftKvBudgetMb();
    List<String> flags =
        new ArrayList<>(
            List.of(
                "--model", model.toString(),
                "--port", Integer.toString(spec.port(offset)),
                "--kv-budget-mb", Integer.toString(kv),
                "--max-context", Integer.toString(spec.maxContext()),
                "--max-tokens-per-op", Integer.toString(spec.maxTokensPerOp()),
                "--drain-seconds", Integer.toString(spec.drainSeconds())));
    if (spec.kvcache() != null && role == WorkerConfig.Role.TARGET) {
      flags.addAll(List.of("--kvcache", spec.kvcache()));
    }
    if (role == WorkerConfig.Role.TARGET) {
      flags.addAll(spec.targetFlags());
    }
    flags.addAll(spec.workerFlags());
    if (!spec.prefixCache()) {
      flags.addAll(List.of("--prefix-cache", "off"));
    }
    return WorkerConfig.parse(flags.toArray(String[]::new), Map.of(), role);
  }

  /**
   * Starts one more router over this mesh's workers, with the router's flags on a free port and
   * state of its own (Token Recycling's tables, which learn from every request a router serves):
   * for comparisons whose runs must not learn from each other. Closed with the mesh. Returns its
   * {@code host:port}.
   */
  public String startRouter(String name, OpenTelemetry otel) throws IOException {
    RouterServer r = RouterServer.onPort(routerConfig(0), otel).start();
    String address = spec.host() + ":" + r.port();
    attach(name, address, r);
    return address;
  }

  private RouterConfig routerConfig(int port) {
    List<String> flags = new ArrayList<>();
    flags.addAll(List.of("--port", Integer.toString(port)));
    List<String> replicas = new ArrayList<>();
    for (int i = 0; i < targets.size(); i++) {
      replicas.add(address(targetName(i)));
    }
    flags.addAll(List.of("--target", String.join(",", replicas)));
    if (targets.size() > 1) {
      for (int i = 0; i < targets.size(); i++) {
        flags.addAll(List.of("--pool", targetName(i) + "=" + replicas.get(i)));
      }
    }
    String tokenizers = spec.targetModel().resolve("tokenizer.json").toString();
    if (draft != null) {
      flags.addAll(List.of("--draft", address(DRAFT)));
      tokenizers += "," + spec.draftModel().resolve("tokenizer.json");
    }
    for (Worker w : spec.moreWorkers()) {
      flags.addAll(List.of("--pool", w.name() + "=" + address(w.name())));
      String t = w.model().resolve("tokenizer.json").toString();
      if (!tokenizers.contains(t)) {
        tokenizers += "," + t;
      }
    }
    flags.addAll(List.of("--tokenizers", tokenizers));
    flags.addAll(List.of("--drain-seconds", Integer.toString(spec.drainSeconds())));
    if (spec.kvcache() != null) {
      flags.addAll(List.of("--kvcache", spec.kvcache()));
    }
    flags.addAll(spec.routerFlags());
    return RouterConfig.parse(flags.toArray(String[]::new), Map.of());
  }

  private synchronized void add(String name, int port, AutoCloseable server) {
    components.addFirst(new Component(name, spec.host() + ":" + port, server));
  }

  /**
   * Adds a component started on top of this mesh (e.g. a gateway on {@link #routerAddress()}): it
   * is listed under {@code name} and closed before everything started earlier.
   *
   * @throws IllegalStateException when the mesh is closed (the component is closed at once)
   */
  public synchronized void attach(String name, String address, AutoCloseable server) {
    if (closed) {
      closeQuietly(server);
      throw new IllegalStateException("mesh closed");
    }
    components.addFirst(new Component(name, address, server));
  }

  public Spec spec() {
    return spec;
  }

  /** Every component's {@code host:port}, in order of start. */
  public synchronized Map<String, String> addresses() {
    Map<String, String> out = new LinkedHashMap<>();
    for (Iterator<Component> it = components.descendingIterator(); it.hasNext(); ) {
      Component c = it.next();
      out.put(c.name(), c.address());
    }
    return out;
  }

  /** The named component's {@code host:port}. */
  public String address(String name) {
    String a = addresses().get(name);
    if (a == null) {
      throw new IllegalArgumentException(name + ": no such component " + addresses().keySet());
    }
    return a;
  }

  public String routerAddress() {
    return address(ROUTER);
  }

  /**
   * The name of target replica {@code i}: its component (in {@link #addresses()}) and its router
   * pool; {@link #TARGET} itself when the mesh has one target.
   */
  public static String targetReplica(int i) {
    return TARGET + "-" + i;
  }

  private String targetName(int i) {
    return spec.targetReplicas() == 1 ? TARGET : targetReplica(i);
  }

  /** The (first) target worker. */
  public WorkerServer targetWorker() {
    return targets.get(0);
  }

  /** Every target replica, replica i at i. */
  public List<WorkerServer> targetWorkers() {
    return List.copyOf(targets);
  }

  /** The draft worker, or null in a target-only mesh. */
  public WorkerServer draftWorker() {
    return draft;
  }

  /** One of {@link Spec#moreWorkers}, by name. */
  public WorkerServer worker(String name) {
    WorkerServer w = workers.get(name);
    if (w == null) {
      throw new IllegalArgumentException(name + ": no such worker " + workers.keySet());
    }
    return w;
  }

  public RouterServer router() {
    return router;
  }

  /** Stops every component, newest first, each with its drain grace. Idempotent. */
  @Override
  public void close() {
    List<Component> stopping;
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      stopping = new ArrayList<>(components);
    }
    for (Component c : stopping) {
      closeQuietly(c.server());
    }
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception e) {
      org.slf4j.LoggerFactory.getLogger(Mesh.class).warn("closing {}: {}", c, e.toString());
    }
  }
}
