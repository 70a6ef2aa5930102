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
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh bench load}: the gateway under N concurrent streaming clients on loopback, and
 * past its limit. The gateway is the production one ({@link GatewayServer#create}, its HTTP server
 * and thread pool, one real gRPC connection to its upstream); the upstream is a {@link PacedRouter}
 * writing one token every {@code --pace-ms}, so every admitted stream stays open for its whole
 * length and the figures are the gateway's, not a model's. Clients are the JDK's asynchronous
 * HttpClient (one selector thread, no thread per stream).
 *
 * <p>Phase 1 opens {@code --streams} SSE streams (the per-key limit is set to exactly that), one
 * every 2 ms. Phase 2, once they are all open, sends {@code --overload} more: each must be refused
 * (429) at once while the admitted ones go on. Reported: admitted TTFT and inter-token p50/p99,
 * failures among the admitted (the target is 0), rejected status and latency, peak threads (JVM
 * total and the gateway's HTTP pool) and heap/RSS at peak.
 */
public final class LoadBench {
  static final String USAGE =
      """
      usage: draftmesh bench load [--streams N] [--overload N] [--tokens N] [--pace-ms MS] [--quick]
        --streams N    concurrent admitted SSE streams (default 1000; --quick 200)
        --overload N   requests sent past the limit while those are open (default 250; --quick 50)
        --tokens N     tokens per stream (default 40)
        --pace-ms MS   the upstream's time per token (default 200)""";

  private static final String KEY = "load-bench-key-0123456789";

  record Options(int streams, int overload, int tokens, int paceMs) {}

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
        case "--overload" -> ov = positive(a, args, ++i);
        case "--tokens" -> tokens = positive(a, args, ++i);
        case "--pace-ms" -> pace = positive(a, args, ++i);
        default -> throw new IllegalArgumentException("unknown flag " + a);
      }
    }
    streams = s != null ? s : quick ? 200 : streams;
    overload = ov != null ? ov : quick ? 50 : overload;
    return new Options(streams, overload, tokens, pace);
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
    volatile long headersNanos;
    volatile long firstTokenNanos;
    final List<Long> gaps = new ArrayList<>(); // inter-token nanos
    long lastToken;
    int tokens;
    volatile boolean done;
    volatile boolean finished; // saw [DONE]
    volatile Throwable error;
  }

  private static int measure(Options o) throws Exception {
    int threads = o.streams() + o.overload() + 64;
    try (PacedRouter upstream = new PacedRouter(o.tokens(), o.paceMs())) {
      GatewayConfig config =
          GatewayConfig.parse(
              new String[] {
                "--host", "127.0.0.1",
                "--grpc-port", "0",
                "--http-port", "0",
                "--router", "localhost:" + upstream.port(),
                "--max-concurrent-per-key", Integer.toString(o.streams()),
                "--http-threads", Integer.toString(threads),
                "--drain-seconds", "1"
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
        Sampler sampler = new Sampler();
        sampler.start();
        System.err.printf(
            "load: %d streams of %d tokens at %d ms/token, then %d past the limit%n",
            o.streams(), o.tokens(), o.paceMs(), o.overload());
        List<Client> admitted = new ArrayList<>();
        List<CompletableFuture<?>> all = new ArrayList<>();
        for (int i = 0; i < o.streams(); i++) {
          Client c = new Client();
          admitted.add(c);
          all.add(send(http, uri, body, c));
          Thread.sleep(2);
        }
        // Phase 2 once every admitted stream is open (its headers arrived).
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (admitted.stream().anyMatch(c -> c.headersNanos == 0 && !c.done)
            && System.nanoTime() < until) {
          Thread.sleep(20);
        }
        int openAtOverload = upstream.open.get();
        List<Client> over = new ArrayList<>();
        for (int i = 0; i < o.overload(); i++) {
          Client c = new Client();
          over.add(c);
          all.add(send(http, uri, body, c));
        }
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new))
            .get(o.tokens() * (long) o.paceMs() + 120_000, TimeUnit.MILLISECONDS);
        sampler.stop();
        report(o, admitted, over, openAtOverload, sampler, threads);
        long failed = admitted.stream().filter(c -> c.status != 200 || !c.finished).count();
        return failed == 0 ? 0 : 1;
      } finally {
        gateway.close();
      }
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
      peakThreads = Math.max(peakThreads, ManagementFactory.getThreadMXBean().getThreadCount());
      int http = 0;
      for (Thread t : Thread.getAllStackTraces().keySet()) {
        if (t.getName().startsWith("gateway-http-")) {
          http++;
        }
      }
      peakHttpThreads = Math.max(peakHttpThreads, http);
      Runtime rt = Runtime.getRuntime();
      peakHeap = Math.max(peakHeap, rt.totalMemory() - rt.freeMemory());
      peakRssKb = Math.max(peakRssKb, rssKb());
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
      List<Client> admitted,
      List<Client> over,
      int openAtOverload,
      Sampler s,
      int httpThreads) {
    int ok = 0;
    Map<String, Integer> admittedOutcomes = new TreeMap<>();
    List<Double> ttft = new ArrayList<>();
    List<Double> gaps = new ArrayList<>();
    for (Client c : admitted) {
      String outcome =
          c.error != null
              ? "error " + c.error.getClass().getSimpleName()
              : c.status + (c.finished && c.tokens == o.tokens() ? " complete" : " incomplete");
      admittedOutcomes.merge(outcome, 1, Integer::sum);
      if (c.status == 200 && c.finished && c.tokens == o.tokens()) {
        ok++;
        ttft.add(c.firstTokenNanos / 1e6);
        for (long g : c.gaps) {
          gaps.add(g / 1e6);
        }
      }
    }
    Map<Integer, Integer> rejectedStatus = new ConcurrentHashMap<>();
    List<Double> rejectMs = new ArrayList<>();
    for (Client c : over) {
      rejectedStatus.merge(c.status, 1, Integer::sum);
      if (c.status != 200) {
        rejectMs.add(c.headersNanos / 1e6);
      }
    }
    System.out.printf(Locale.ROOT, "%n### Gateway load: `./draftmesh bench load`%n%n");
    System.out.printf(
        Locale.ROOT,
        "%d SSE streams of %d tokens, upstream paced at %d ms/token (%d streams open upstream when"
            + " the overload began); %d more requests past the per-key limit of %d; --http-threads"
            + " %d.%n%n",
        o.streams(),
        o.tokens(),
        o.paceMs(),
        openAtOverload,
        o.overload(),
        o.streams(),
        httpThreads);
    System.out.println("| measure | value |");
    System.out.println("|---|---|");
    System.out.printf(
        "| admitted streams complete | %d of %d %s |%n", ok, o.streams(), admittedOutcomes);
    row("admitted TTFT p50 / p99 (ms)", ttft);
    row("admitted inter-token p50 / p99 (ms)", gaps);
    System.out.printf("| rejected: status (count) | %s |%n", new TreeMap<>(rejectedStatus));
    row("rejected: time to the refusal p50 / p99 (ms)", rejectMs);
    System.out.printf(
        Locale.ROOT,
        "| peak threads: JVM total / gateway HTTP pool | %d / %d |%n",
        s.peakThreads,
        s.peakHttpThreads);
    System.out.printf(
        Locale.ROOT,
        "| peak heap used / RSS (MiB) | %.0f / %.0f |%n",
        s.peakHeap / 1048576.0,
        s.peakRssKb / 1024.0);
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
