package io.draftmesh.bench;

import io.draftmesh.gateway.GatewayConfig;
import io.draftmesh.gateway.GatewayServer;
import io.opentelemetry.api.OpenTelemetry;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code draftmesh bench load}: the gateway under N concurrent streaming clients on loopback, up to
 * and past its HTTP limits. The gateway is the production one ({@link GatewayServer#create}, its
 * HTTP server, thread pool and {@code HttpAdmission}, one real gRPC connection to its upstream);
 * the upstream is a {@link PacedRouter} writing one token every {@code --pace-ms}, so every
 * admitted stream stays open for its whole length and the figures are the gateway's, not a model's.
 * Clients are the JDK's asynchronous HttpClient (one selector thread, no thread per stream).
 *
 * <p>The gateway runs with {@code --http-threads} = {@code --streams} and {@code --http-queue} =
 * {@code --queue}, and a per-key limit that never binds, so its HTTP admission is the limit under
 * test. Phase 1 opens {@code --streams} SSE streams, one every 2 ms, until all are streaming
 * (served at once). Phase 2 sends {@code --queue} more, which are admitted and wait for a place.
 * Phase 3, once the gateway counts all of them in flight, sends {@code --overload} more: each must
 * be refused at once (429 {@code server_busy}) while the admitted ones go on. Reported: TTFT
 * (served at once, and after waiting) and inter-token p50/p99, failures among the admitted (the
 * target is 0), each refusal's status, error code and latency, and the JVM's threads (total and the
 * gateway's HTTP pool) and heap before, at peak and after.
 */
public final class LoadBench {
  static final String USAGE =
      """
      usage: draftmesh bench load [--streams N] [--queue N] [--overload N] [--tokens N] [--pace-ms MS]
                                  [--quick]
        --streams N    concurrent SSE streams served, the gateway's --http-threads (default 1000;
                       --quick 200)
        --queue N      more streams admitted to wait for a place, its --http-queue (default 16)
        --overload N   requests sent past both while those are open (default 250; --quick 50)
        --tokens N     tokens per stream (default 40)
        --pace-ms MS   the upstream's time per token (default 200)""";

  private static final String KEY = "load-bench-key-0123456789";

  record Options(int streams, int queue, int overload, int tokens, int paceMs) {}

  private LoadBench() {}

  public static int run(String[] args) {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("draftmesh bench load: " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    if (o == null) {
      System.out.println(USAGE);
      return 0;
    }
    try {
      return measure(o);
    } catch (Exception e) {
      e.printStackTrace();
      return 1;
    }
  }

  static Options parse(String[] args) {
    int streams = 1000;
    int overload = 250;
    int queue = 16;
    int tokens = 40;
    int pace = 200;
    boolean quick = false;
    Integer s = null;
    Integer ov = null;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--help", "-h" -> {
          return null;
        }
        case "--quick" -> quick = true;
        case "--streams" -> s = positive(a, args, ++i);
        case "--queue" -> queue = positive(a, args, ++i);
        case "--overload" -> ov = positive(a, args, ++i);
        case "--tokens" -> tokens = positive(a, args, ++i);
        case "--pace-ms" -> pace = positive(a, args, ++i);
        default -> throw new IllegalArgumentException("unknown flag " + a);
      }
    }
    streams = s != null ? s : quick ? 200 : streams;
    overload = ov != null ? ov : quick ? 50 : overload;
    return new Options(streams, queue, overload, tokens, pace);
  }

  private static int positive(String flag, String[] args, int i) {
    if (i >= args.length) {
      throw new IllegalArgumentException(flag + ": missing value");
    }
    try {
      int v = Integer.parseInt(args[i]);
      if (v >= 1) {
        return v;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw new IllegalArgumentException(flag + ": " + args[i] + " (expected: an integer >= 1)");
  }

  /** One client stream's outcome. */
  static final class Client {
    final long start = System.nanoTime();
    volatile int status;
    volatile String retryAfter;
    volatile long headersNanos;
    volatile long firstTokenNanos;
    final List<Long> gaps = new ArrayList<>(); // inter-token nanos
    final StringBuilder errorBody = new StringBuilder(); // a refusal's body
    long lastToken;
    int tokens;
    volatile boolean done;
    volatile boolean finished; // saw [DONE]
    volatile Throwable error;

    boolean complete(int expectedTokens) {
      return error == null && status == 200 && finished && tokens == expectedTokens;
    }

    /** The OpenAI error object's code in a refusal's body ("server_busy"), or "-". */
    String errorCode() {
      Matcher m = ERROR_CODE.matcher(errorBody);
      return m.find() ? m.group(1) : "-";
    }
  }

  private static final Pattern ERROR_CODE = Pattern.compile("\"code\"\\s*:\\s*\"([^\"]*)\"");

  private static int measure(Options o) throws Exception {
    try (PacedRouter upstream = new PacedRouter(o.tokens(), o.paceMs())) {
      GatewayConfig config =
          GatewayConfig.parse(
              new String[] {
                "--host",
                "127.0.0.1",
                "--grpc-port",
                "0",
                "--http-port",
                "0",
                "--router",
                "localhost:" + upstream.port(),
                // Never the binding limit: HttpAdmission is the one under test.
                "--max-concurrent-per-key",
                Integer.toString(o.streams() + o.queue() + o.overload()),
                "--http-threads",
                Integer.toString(o.streams()),
                "--http-queue",
                Integer.toString(o.queue()),
                "--drain-seconds",
                "1"
              },
              Map.of("DRAFTMESH_API_KEYS", KEY));
      GatewayServer gateway = GatewayServer.create(config, OpenTelemetry.noop());
      try {
        int port = gateway.start().http();
        HttpClient http =
            HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
        URI uri = URI.create("http://127.0.0.1:" + port + "/v1/completions");
        String body =
            "{\"model\":\"default\",\"prompt\":\"load\",\"stream\":true,\"max_tokens\":"
                + o.tokens()
                + "}";
        Snapshot before = Snapshot.afterGc();
        Sampler sampler = new Sampler();
        sampler.start();
        System.err.printf(
            "load: %d streams served + %d waiting, of %d tokens at %d ms/token, then %d past"
                + " both%n",
            o.streams(), o.queue(), o.tokens(), o.paceMs(), o.overload());
        List<CompletableFuture<?>> all = new ArrayList<>();
        List<Client> served = new ArrayList<>();
        for (int i = 0; i < o.streams(); i++) {
          Client c = new Client();
          served.add(c);
          all.add(send(http, uri, body, c));
          Thread.sleep(2);
        }
        // Phase 2 once every served stream is open upstream; phase 3 once the waiting ones are
        // admitted too (the gateway counts them in flight).
        awaitUntil(() -> upstream.open.get() >= o.streams(), "the served streams to open");
        int openAtOverload = upstream.open.get();
        List<Client> waiting = new ArrayList<>();
        for (int i = 0; i < o.queue(); i++) {
          Client c = new Client();
          waiting.add(c);
          all.add(send(http, uri, body, c));
        }
        awaitUntil(
            () -> gateway.httpInFlight() >= o.streams() + o.queue(),
            "the waiting streams to be admitted");
        int inFlightAtOverload = gateway.httpInFlight();
        List<Client> over = new ArrayList<>();
        for (int i = 0; i < o.overload(); i++) {
          Client c = new Client();
          over.add(c);
          all.add(send(http, uri, body, c));
        }
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new))
            .get(2L * o.tokens() * o.paceMs() + 120_000, TimeUnit.MILLISECONDS);
        sampler.stop();
        Snapshot after = Snapshot.afterGc();
        report(
            o, served, waiting, over, openAtOverload, inFlightAtOverload, before, sampler, after);
        long failed =
            served.stream().filter(c -> !c.complete(o.tokens())).count()
                + waiting.stream().filter(c -> !c.complete(o.tokens())).count();
        return failed == 0 ? 0 : 1;
      } finally {
        gateway.close();
      }
    }
  }

  private static void awaitUntil(BooleanSupplier condition, String what)
      throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > until) {
        throw new IllegalStateException("waited 120 s for " + what);
      }
      Thread.sleep(20);
    }
  }

  private static CompletableFuture<?> send(HttpClient http, URI uri, String body, Client c) {
    HttpRequest req =
        HttpRequest.newBuilder(uri)
            .header("Authorization", "Bearer " + KEY)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    return http.sendAsync(
            req,
            info -> {
              c.status = info.statusCode();
              c.retryAfter = info.headers().firstValue("Retry-After").orElse("-");
              c.headersNanos = System.nanoTime() - c.start;
              return HttpResponse.BodySubscribers.fromLineSubscriber(lines(c));
            })
        .handle(
            (r, t) -> {
              if (t != null) {
                c.error = t;
              }
              c.done = true;
              return null;
            });
  }

  private static Flow.Subscriber<String> lines(Client c) {
    return new Flow.Subscriber<>() {
      @Override
      public void onSubscribe(Flow.Subscription s) {
        s.request(Long.MAX_VALUE);
      }

      @Override
      public void onNext(String line) {
        if (c.status != 200) {
          if (c.errorBody.length() < 4096) {
            c.errorBody.append(line);
          }
          return;
        }
        if (!line.startsWith("data: ")) {
          return;
        }
        long now = System.nanoTime();
        if (line.equals("data: [DONE]")) {
          c.finished = true;
          return;
        }
        if (!line.contains("\" t\"")) {
          return; // the usage chunk or an error object
        }
        if (c.tokens == 0) {
          c.firstTokenNanos = now - c.start;
        } else {
          c.gaps.add(now - c.lastToken);
        }
        c.lastToken = now;
        c.tokens++;
      }

      @Override
      public void onError(Throwable t) {
        c.error = t;
      }

      @Override
      public void onComplete() {}
    };
  }

  /** The JVM's threads (all, and the gateway's HTTP pool) and heap used, at one moment. */
  record Snapshot(int threads, int httpThreads, long heap, long rssKb) {
    /** After a full GC: the heap still reachable, not the garbage not yet collected. */
    static Snapshot afterGc() {
      System.gc();
      return take();
    }

    static Snapshot take() {
      int http = 0;
      for (Thread t : Thread.getAllStackTraces().keySet()) {
        if (t.getName().startsWith("gateway-http-")) {
          http++;
        }
      }
      Runtime rt = Runtime.getRuntime();
      return new Snapshot(
          ManagementFactory.getThreadMXBean().getThreadCount(),
          http,
          rt.totalMemory() - rt.freeMemory(),
          LoadBench.rssKb());
    }
  }

  /** Threads and memory, sampled every 100 ms: the peaks. */
  static final class Sampler {
    volatile boolean running = true;
    volatile int peakThreads;
    volatile int peakHttpThreads;
    volatile long peakHeap;
    volatile long peakRssKb;
    private Thread thread;

    void start() {
      thread =
          new Thread(
              () -> {
                while (running) {
                  sample();
                  try {
                    Thread.sleep(100);
                  } catch (InterruptedException e) {
                    return;
                  }
                }
              },
              "load-sampler");
      thread.setDaemon(true);
      thread.start();
    }

    void sample() {
      Snapshot s = Snapshot.take();
      peakThreads = Math.max(peakThreads, s.threads());
      peakHttpThreads = Math.max(peakHttpThreads, s.httpThreads());
      peakHeap = Math.max(peakHeap, s.heap());
      peakRssKb = Math.max(peakRssKb, s.rssKb());
    }

    void stop() throws InterruptedException {
      running = false;
      thread.join();
    }
  }

  static long rssKb() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (l.startsWith("VmRSS:")) {
          return Long.parseLong(l.replaceAll("[^0-9]", ""));
        }
      }
    } catch (Exception e) {
      // not Linux
    }
    return -1;
  }

  private static void report(
      Options o,
      List<Client> served,
      List<Client> waiting,
      List<Client> over,
      int openAtOverload,
      int inFlightAtOverload,
      Snapshot before,
      Sampler peak,
      Snapshot after) {
    System.out.printf(Locale.ROOT, "%n### Gateway load: `./draftmesh bench load`%n%n");
    System.out.printf(
        Locale.ROOT,
        "%d SSE streams of %d tokens served (--http-threads %d) and %d waiting (--http-queue %d),"
            + " upstream paced at %d ms/token; %d more requests once the gateway counted %d in"
            + " flight (%d streams open upstream).%n%n",
        o.streams(),
        o.tokens(),
        o.streams(),
        o.queue(),
        o.queue(),
        o.paceMs(),
        o.overload(),
        inFlightAtOverload,
        openAtOverload);
    System.out.println("| measure | value |");
    System.out.println("|---|---|");
    admitted("served at once", served, o);
    admitted("admitted to wait", waiting, o);
    List<Double> gaps = new ArrayList<>();
    for (List<Client> group : List.of(served, waiting)) {
      for (Client c : group) {
        if (c.complete(o.tokens())) {
          c.gaps.forEach(g -> gaps.add(g / 1e6));
        }
      }
    }
    row(
        String.format(Locale.ROOT, "admitted: inter-token p50 / p99 (ms; pace %d)", o.paceMs()),
        gaps);
    Map<String, Integer> outcomes = new TreeMap<>();
    List<Double> rejectMs = new ArrayList<>();
    for (Client c : over) {
      String outcome =
          c.error != null
              ? "error " + c.error.getClass().getSimpleName()
              : c.status
                  + " "
                  + (c.status == 200 ? "admitted" : c.errorCode())
                  + ", Retry-After "
                  + c.retryAfter;
      outcomes.merge(outcome, 1, Integer::sum);
      if (c.error == null && c.status != 200) {
        rejectMs.add(c.headersNanos / 1e6);
      }
    }
    System.out.printf("| past the limits: outcome (count) | %s |%n", outcomes);
    row("refused: time to the refusal p50 / p99 (ms)", rejectMs);
    System.out.printf(
        Locale.ROOT,
        "| threads, JVM total: before / peak / after | %d / %d / %d |%n",
        before.threads(),
        peak.peakThreads,
        after.threads());
    System.out.printf(
        Locale.ROOT,
        "| threads, gateway HTTP pool: before / peak / after | %d / %d / %d |%n",
        before.httpThreads(),
        peak.peakHttpThreads,
        after.httpThreads());
    System.out.printf(
        Locale.ROOT,
        "| heap used (MiB): before / peak / after (before and after: after a full GC) |"
            + " %.0f / %.0f / %.0f |%n",
        before.heap() / 1048576.0,
        peak.peakHeap / 1048576.0,
        after.heap() / 1048576.0);
    System.out.printf(
        Locale.ROOT,
        "| RSS (MiB): before / peak / after | %.0f / %.0f / %.0f |%n",
        before.rssKb() / 1024.0,
        peak.peakRssKb / 1024.0,
        after.rssKb() / 1024.0);
  }

  /** One group of admitted streams: how many completed, and their TTFT. */
  private static void admitted(String group, List<Client> clients, Options o) {
    Map<String, Integer> outcomes = new TreeMap<>();
    List<Double> ttft = new ArrayList<>();
    for (Client c : clients) {
      String outcome =
          c.error != null
              ? "error " + c.error.getClass().getSimpleName()
              : c.status + (c.complete(o.tokens()) ? " complete" : " incomplete");
      outcomes.merge(outcome, 1, Integer::sum);
      if (c.complete(o.tokens())) {
        ttft.add(c.firstTokenNanos / 1e6);
      }
    }
    long ok = clients.stream().filter(c -> c.complete(o.tokens())).count();
    System.out.printf(
        "| %s: streams complete | %d of %d %s |%n", group, ok, clients.size(), outcomes);
    row(group + ": TTFT p50 / p99 (ms)", ttft);
  }

  private static void row(String name, List<Double> values) {
    if (values.isEmpty()) {
      System.out.printf("| %s | - |%n", name);
      return;
    }
    double[] v = values.stream().mapToDouble(Double::doubleValue).toArray();
    Arrays.sort(v);
    System.out.printf(
        Locale.ROOT,
        "| %s | %.1f / %.1f |%n",
        name,
        Stats.percentile(v, 0.5),
        Stats.percentile(v, 0.99));
  }
}
