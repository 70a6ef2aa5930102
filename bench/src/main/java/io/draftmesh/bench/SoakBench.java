package io.draftmesh.bench;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.assembly.RandomModels;
import io.draftmesh.gateway.GatewayConfig;
import io.draftmesh.gateway.GatewayServer;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.management.ObjectName;

/**
 * {@code draftmesh bench soak --minutes N}: the whole mesh in one JVM (target and draft workers on
 * random tiny-GQA weights, the router, the production gateway, real ports) under a steady mix of
 * requests for N minutes: autoregressive, speculative and n-gram, streaming or not, with random
 * client disconnects mid-stream (the injected faults). Every {@code --sample-seconds} it samples
 * RSS, the JVM's committed native memory (NMT, when the JVM runs with
 * -XX:NativeMemoryTracking=summary), heap, threads, and each worker's open sessions and used KV
 * blocks. At the end it waits for the mesh to go idle and reports the trend after warm-up (the
 * first sample): least-squares slope of RSS and NMT in MiB per minute, errors other than the
 * injected ones (target 0) and sessions still open (target 0).
 */
public final class SoakBench {
  static final String USAGE =
      """
      usage: draftmesh bench soak [--minutes N] [--sample-seconds S] [--clients N]
        --minutes N         how long the load runs (default 30)
        --sample-seconds S  sampling interval (default 30)
        --clients N         concurrent clients (default 8)
        Run the JVM with -XX:NativeMemoryTracking=summary (DRAFTMESH_JAVA_OPTS) for the NMT column.""";

  private static final String KEY = "soak-bench-key-0123456789";
  private static final String[] STRATEGIES = {"autoregressive", "speculative", "ngram"};

  record Options(int minutes, int sampleSeconds, int clients) {}

  record Sample(
      double minute,
      long rssKb,
      long nmtKb,
      long heapBytes,
      int threads,
      int sessions,
      int kvBlocksUsed,
      long requests,
      long errors) {}

  private SoakBench() {}

  public static int run(String[] args) {
    int minutes = 30;
    int sample = 30;
    int clients = 8;
    try {
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--help", "-h" -> {
            System.out.println(USAGE);
            return 0;
          }
          case "--minutes" -> minutes = Integer.parseInt(args[++i]);
          case "--sample-seconds" -> sample = Integer.parseInt(args[++i]);
          case "--clients" -> clients = Integer.parseInt(args[++i]);
          default -> throw new IllegalArgumentException("unknown flag " + args[i]);
        }
      }
      if (minutes < 1 || sample < 1 || clients < 1) {
        throw new IllegalArgumentException("--minutes, --sample-seconds, --clients: >= 1");
      }
    } catch (RuntimeException e) {
      System.err.println("draftmesh bench soak: " + e.getMessage());
      System.err.println(USAGE);
      return 2;
    }
    try {
      return soak(new Options(minutes, sample, clients));
    } catch (Exception e) {
      e.printStackTrace();
      return 1;
    }
  }

  private static int soak(Options o) throws Exception {
    Path model = RandomModels.ensure(RandomModels.defaultCacheDir(), RandomModels.tinyGqa());
    Mesh.Spec spec =
        Mesh.Spec.builder(model, model)
            .kvBudgets(64, 64)
            .drainSeconds(1)
            .routerFlags(List.of("--max-concurrent", "64", "--draft-timeout-ms", "5000"))
            .build();
    try (Mesh mesh = Mesh.start(spec, OpenTelemetry.noop())) {
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
                mesh.routerAddress(),
                "--max-concurrent-per-key",
                "64",
                "--http-threads",
                "128",
                "--drain-seconds",
                "1"
              },
              Map.of("DRAFTMESH_API_KEYS", KEY));
      GatewayServer gateway = GatewayServer.create(config, OpenTelemetry.noop());
      List<ManagedChannel> workers = new ArrayList<>();
      try {
        URI uri = URI.create("http://127.0.0.1:" + gateway.start().http() + "/v1/completions");
        for (String w : List.of(Mesh.TARGET, Mesh.DRAFT)) {
          workers.add(
              Grpc.newChannelBuilder(mesh.address(w), InsecureChannelCredentials.create()).build());
        }
        AtomicLong requests = new AtomicLong();
        AtomicLong disconnects = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(o.minutes());
        ExecutorService pool = Executors.newFixedThreadPool(o.clients());
        for (int c = 0; c < o.clients(); c++) {
          long seed = c;
          pool.submit(
              () -> {
                SplittableRandom rnd = new SplittableRandom(seed);
                while (System.nanoTime() < end) {
                  requests.incrementAndGet();
                  try {
                    if (!oneRequest(http, uri, rnd)) {
                      disconnects.incrementAndGet();
                    }
                  } catch (Exception e) {
                    errors.incrementAndGet();
                    System.err.println("soak: unexpected " + e);
                  }
                }
              });
        }
        long t0 = System.nanoTime();
        List<Sample> samples = new ArrayList<>();
        System.err.printf(
            "soak: %d clients for %d minutes, a sample every %d s%n",
            o.clients(), o.minutes(), o.sampleSeconds());
        while (System.nanoTime() < end) {
          samples.add(sample(t0, workers, requests.get(), errors.get()));
          print(samples.get(samples.size() - 1));
          long next =
              Math.min(end, System.nanoTime() + TimeUnit.SECONDS.toNanos(o.sampleSeconds()));
          TimeUnit.NANOSECONDS.sleep(Math.max(0, next - System.nanoTime()));
        }
        pool.shutdown();
        pool.awaitTermination(5, TimeUnit.MINUTES);
        // Idle: every session closed, every block free (the worker's session-idle timeout is not
        // what frees them: 5 s is far below it).
        Thread.sleep(5000);
        Sample last = sample(t0, workers, requests.get(), errors.get());
        print(last);
        report(o, samples, last, disconnects.get());
        return errors.get() == 0 && last.sessions() == 0 && last.kvBlocksUsed() == 0 ? 0 : 1;
      } finally {
        workers.forEach(ManagedChannel::shutdownNow);
        gateway.close();
      }
    }
  }

  /** One request; false when it was a deliberate disconnect. */
  private static boolean oneRequest(HttpClient http, URI uri, SplittableRandom rnd)
      throws Exception {
    String strategy = STRATEGIES[rnd.nextInt(STRATEGIES.length)];
    boolean stream = rnd.nextBoolean();
    boolean disconnect = stream && rnd.nextInt(10) < 2;
    int maxTokens = 16 + rnd.nextInt(49);
    String body =
        String.format(
            Locale.ROOT,
            "{\"model\":\"default\",\"prompt\":\"Once upon a time %d\",\"max_tokens\":%d,"
                + "\"stream\":%s,\"temperature\":%s,\"seed\":%d,"
                + "\"draftmesh\":{\"strategy\":\"%s\",\"ignore_eos\":true}}",
            rnd.nextInt(1000),
            maxTokens,
            stream,
            rnd.nextBoolean() ? "0" : "0.8",
            rnd.nextInt(),
            strategy);
    HttpRequest req =
        HttpRequest.newBuilder(uri)
            .header("Authorization", "Bearer " + KEY)
            .header("Content-Type", "application/json")
            .timeout(Duration.ofMinutes(2))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    HttpResponse<InputStream> r = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream in = r.body();
        BufferedReader lines =
            new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      if (r.statusCode() != 200) {
        throw new IllegalStateException("HTTP " + r.statusCode() + ": " + lines.readLine());
      }
      int events = 0;
      String line;
      boolean done = false;
      while ((line = lines.readLine()) != null) {
        if (line.startsWith("data: ")) {
          events++;
          done |= line.equals("data: [DONE]");
          if (line.contains("\"error\"")) {
            throw new IllegalStateException("error event: " + line);
          }
        }
        if (disconnect && events == 3) {
          return false; // closing the stream mid-way disconnects the client
        }
      }
      if (stream && !done) {
        throw new IllegalStateException("stream ended without [DONE]");
      }
      return true;
    }
  }

  private static Sample sample(long t0, List<ManagedChannel> workers, long requests, long errors) {
    int sessions = 0;
    int used = 0;
    for (ManagedChannel w : workers) {
      ModelInfo i =
          ModelWorkerGrpc.newBlockingStub(w)
              .withDeadlineAfter(10, TimeUnit.SECONDS)
              .getModelInfo(GetModelInfoRequest.getDefaultInstance());
      sessions += i.getActiveSessions();
      used += i.getKvBlocksTotal() - i.getKvBlocksFree();
    }
    Runtime rt = Runtime.getRuntime();
    return new Sample(
        (System.nanoTime() - t0) / 6e10,
        LoadBench.rssKb(),
        nmtCommittedKb(),
        rt.totalMemory() - rt.freeMemory(),
        ManagementFactory.getThreadMXBean().getThreadCount(),
        sessions,
        used,
        requests,
        errors);
  }

  private static final Pattern NMT_TOTAL =
      Pattern.compile("Total: reserved=\\d+KB, committed=(\\d+)KB");

  /** The JVM's committed native memory from NMT, or -1 when NMT is off. */
  static long nmtCommittedKb() {
    try {
      Object out =
          ManagementFactory.getPlatformMBeanServer()
              .invoke(
                  new ObjectName("com.sun.management:type=DiagnosticCommand"),
                  "vmNativeMemory",
                  new Object[] {new String[] {"summary"}},
                  new String[] {String[].class.getName()});
      Matcher m = NMT_TOTAL.matcher(String.valueOf(out));
      return m.find() ? Long.parseLong(m.group(1)) : -1;
    } catch (Exception e) {
      return -1;
    }
  }

  private static void print(Sample s) {
    System.err.printf(
        Locale.ROOT,
        "soak: %5.1f min  RSS %6.0f MiB  NMT %6.0f MiB  heap %5.0f MiB  threads %4d  sessions %3d"
            + "  KV blocks %4d  requests %6d  errors %d%n",
        s.minute(),
        s.rssKb() / 1024.0,
        s.nmtKb() / 1024.0,
        s.heapBytes() / 1048576.0,
        s.threads(),
        s.sessions(),
        s.kvBlocksUsed(),
        s.requests(),
        s.errors());
  }

  /** Least-squares slope of {@code y} over the samples' minutes, warm-up (the first) left out. */
  static double slope(List<Sample> samples, java.util.function.ToDoubleFunction<Sample> y) {
    List<Sample> s = samples.subList(Math.min(1, samples.size()), samples.size());
    if (s.size() < 2) {
      return Double.NaN;
    }
    double mx = 0;
    double my = 0;
    for (Sample x : s) {
      mx += x.minute();
      my += y.applyAsDouble(x);
    }
    mx /= s.size();
    my /= s.size();
    double num = 0;
    double den = 0;
    for (Sample x : s) {
      num += (x.minute() - mx) * (y.applyAsDouble(x) - my);
      den += (x.minute() - mx) * (x.minute() - mx);
    }
    return num / den;
  }

  private static void report(Options o, List<Sample> samples, Sample last, long disconnects) {
    System.out.printf(
        Locale.ROOT, "%n### Soak: `./draftmesh bench soak --minutes %d`%n%n", o.minutes());
    System.out.println("| measure | value |");
    System.out.println("|---|---|");
    System.out.printf(
        Locale.ROOT,
        "| requests (of which client disconnects injected) | %d (%d) |%n",
        last.requests(),
        disconnects);
    System.out.printf("| errors other than the injected ones | %d |%n", last.errors());
    System.out.printf(
        "| sessions / used KV blocks left when idle | %d / %d |%n",
        last.sessions(), last.kvBlocksUsed());
    System.out.printf(
        Locale.ROOT,
        "| RSS first / last sample; trend after warm-up | %.0f / %.0f MiB; %+.2f MiB/min |%n",
        samples.get(0).rssKb() / 1024.0,
        last.rssKb() / 1024.0,
        slope(samples, s -> s.rssKb() / 1024.0));
    System.out.printf(
        Locale.ROOT,
        "| NMT committed first / last; trend | %s |%n",
        last.nmtKb() < 0
            ? "NMT off (-XX:NativeMemoryTracking=summary)"
            : String.format(
                Locale.ROOT,
                "%.0f / %.0f MiB; %+.2f MiB/min",
                samples.get(0).nmtKb() / 1024.0,
                last.nmtKb() / 1024.0,
                slope(samples, s -> s.nmtKb() / 1024.0)));
    System.out.printf(
        Locale.ROOT,
        "| threads first / last | %d / %d |%n",
        samples.get(0).threads(),
        last.threads());
  }
}
