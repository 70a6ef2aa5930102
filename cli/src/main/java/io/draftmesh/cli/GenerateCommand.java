package io.draftmesh.cli;

import io.draftmesh.assembly.SessionClient;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Open;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.SamplingParams;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.telemetry.Telemetry;
import io.grpc.Channel;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.instrumentation.grpc.v1_6.GrpcTelemetry;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code draftmesh generate}: with {@code --router}, one {@code Router.Generate} call ({@link
 * RouterGenerate}); with {@code --worker}, one sequence on one worker, token by token: opens a
 * Session (prefill), then asks for one token at a time with {@code Propose k=1} and prints each as
 * soon as its text is complete.
 */
final class GenerateCommand {
  static final String USAGE =
      """
      usage: draftmesh generate --router HOST:PORT --prompt TEXT
                                [--strategy autoregressive|speculative|ngram|nudging|entropy-switch|lead-in|specpc|speckv]
                                [--k N] [--adaptive]
                                [--max-k N] [--min-draft-prob P] [--ngram-n N] [--ngram-min-n N]
                                [--ngram-max-match N] [--spec-pc-budget N] [--spec-pc-window N]
                                [--kv-method snapkv|streaming_llm] [--kv-budget N]
                                [--max-tokens N] [--temperature T] [--top-k K]
                                [--top-p P] [--min-p M] [--seed S] [--stop TEXT] [--ignore-eos]
                                [--target POOL] [--draft POOL] [--timeout-s S]
                                [--gamma G] [--chunk-tokens N] [--aligned-prompt TEXT]
                                [--tau BITS] [--window N] [--min-run N] [--lead-in N]
                                [--sentence-end CHARS] [--model DIR | --tokenizer PATH]
        Streams a completion through a running router (./draftmesh up starts one) and prints the
        stats: acceptance rate, mean accepted length, rounds, target calls, tokens/s. On a terminal
        each token's text is coloured by provenance (green = draft accepted, cyan = n-gram accepted,
        default = target; NO_COLOR turns it off), lined up with the tokens by the target's tokenizer
        (--model DIR, --tokenizer PATH, default models/target). The strategy defaults to the
        router's (speculative when it has a draft pool).
        Approximate strategies use --draft as the second model: nudging's aligned model (the base
        reads --prompt as plain text, the aligned model --aligned-prompt, default the zoo template
        around --prompt; --gamma default 0.4, --chunk-tokens 16), entropy-switch's and lead-in's
        small model (--tau default 1.5 bits, --window 5, --min-run = window; --lead-in 4 tokens per
        sentence). The stats line then gives each model's tokens, the large model's share, the
        parameter-weighted cost f_L + (1 - f_L) N_S/N_L, switches and nudging rounds; magenta =
        aligned nudge, yellow = small-model span. specpc: the draft's attention picks the prompt
        tokens the target reads (--spec-pc-budget default 1024, --spec-pc-window 64;
        docs/approximate.md). speckv: the draft's answer scores the target's KV cache, which keeps
        --kv-budget slots per KV head (default 256; with --spec-pc-budget: SpecKV-PC). --kv-method
        snapkv|streaming_llm compacts the target's cache with the lossless strategies.

      usage: draftmesh generate --worker HOST:PORT --prompt TEXT (--model DIR | --tokenizer PATH)
                                [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
                                [--min-p M] [--seed S] [--timeout-s S]
        Streams a completion from a running worker. The tokenizer (DIR/tokenizer.json, or PATH) must be
        the worker's: its sha256 is checked against the worker's model info.
        Sampling defaults to greedy (temperature 0).""";

  static final Set<String> SAMPLING_FLAGS =
      Set.of("prompt", "max-tokens", "temperature", "top-k", "top-p", "min-p", "seed", "timeout-s");

  private GenerateCommand() {}

  /** What to generate. */
  record Request(String prompt, int maxTokens, SamplingParams sampling, long timeoutSeconds) {
    static Request from(Args a, String defaultPrompt) {
      String prompt =
          defaultPrompt == null
              ? a.require("prompt", "the text to continue")
              : a.get("prompt", defaultPrompt);
      SamplingParams sampling =
          SamplingParams.newBuilder()
              .setTemperature(a.floatValue("temperature", 0f))
              .setTopK(a.intValue("top-k", 0, 0, Integer.MAX_VALUE))
              .setTopP(a.floatValue("top-p", 0f))
              .setMinP(a.floatValue("min-p", 0f))
              .setSeed(a.longValue("seed", 0L))
              .build();
      return new Request(
          prompt,
          a.intValue("max-tokens", 64, 1, 1 << 20),
          sampling,
          a.intValue("timeout-s", 300, 1, 86_400));
    }
  }

  /** What came out. */
  record Result(
      int promptTokens, int[] tokens, boolean eos, double prefillSeconds, double decodeSeconds) {
    int generated() {
      return tokens.length;
    }

    double tokensPerSecond() {
      return decodeSeconds > 0 ? tokens.length / decodeSeconds : 0;
    }
  }

  static int run(String[] args, Map<String, String> env, PrintStream out, PrintStream err)
      throws InterruptedException {
    for (String arg : args) {
      if (arg.equals("--router") || arg.startsWith("--router=")) {
        return RouterGenerate.run(args, env, out, err);
      }
    }
    Args a =
        Args.parse(args, union(SAMPLING_FLAGS, Set.of("worker", "model", "tokenizer")), Set.of());
    String target =
        a.require("worker", "HOST:PORT of a running worker; or --router HOST:PORT of a router");
    Path tokenizerPath = tokenizerPath(a);
    Request request = Request.from(a, null);
    try (Telemetry telemetry = Telemetry.fromEnvironment("draftmesh-cli");
        TextTokenizer tokenizer = TextTokenizer.load(tokenizerPath)) {
      ManagedChannel channel = channel(target, telemetry.openTelemetry());
      try {
        Result r = generate(channel, tokenizer, request, out);
        err.println(summary(r));
        return 0;
      } catch (StatusRuntimeException e) {
        err.println();
        err.println(
            "draftmesh generate: "
                + e.getStatus().getCode()
                + ": "
                + e.getStatus().getDescription());
        return 1;
      } finally {
        channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }

  static Path tokenizerPath(Args a) {
    String t = a.get("tokenizer");
    String m = a.get("model");
    if (t == null && m == null) {
      throw new UsageException(
          "--tokenizer or --model: missing (expected: the worker's tokenizer.json or model directory)");
    }
    Path p = Path.of(t != null ? t : m);
    if (Files.isDirectory(p)) {
      p = p.resolve("tokenizer.json");
    }
    if (!Files.isRegularFile(p)) {
      throw new UsageException(
          (t != null ? "--tokenizer" : "--model")
              + ": "
              + p
              + " (expected: a tokenizer.json file; not found)");
    }
    return p;
  }

  static ManagedChannel channel(String target, OpenTelemetry openTelemetry) {
    return Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
        .intercept(GrpcTelemetry.create(openTelemetry).createClientInterceptor())
        .build();
  }

  /** Runs one generation on {@code channel}, printing text to {@code out} as it arrives. */
  static Result generate(Channel channel, TextTokenizer tokenizer, Request request, PrintStream out)
      throws InterruptedException {
    ModelInfo info =
        ModelWorkerGrpc.newBlockingStub(channel)
            .withDeadlineAfter(request.timeoutSeconds(), TimeUnit.SECONDS)
            .getModelInfo(GetModelInfoRequest.getDefaultInstance());
    if (!info.getTokenizerHash().equals(tokenizer.sha256())) {
      throw new UsageException(
          "tokenizer "
              + tokenizer.path()
              + " has sha256 "
              + tokenizer.sha256()
              + " (expected: the worker's "
              + info.getTokenizerHash()
              + ")");
    }
    int[] prompt = tokenizer.encode(request.prompt(), true);
    if (prompt.length == 0) {
      throw new UsageException("--prompt: encodes to no tokens (expected: some text)");
    }
    int budget = Math.min(request.maxTokens(), info.getMaxContext() - prompt.length);
    ModelWorkerGrpc.ModelWorkerStub stub =
        ModelWorkerGrpc.newStub(channel)
            .withDeadlineAfter(request.timeoutSeconds(), TimeUnit.SECONDS);
    Utf8Stream text = new Utf8Stream();
    out.print(request.prompt());
    out.flush();
    long t0 = System.nanoTime();
    int[] tokens = new int[Math.max(0, budget)];
    int generated = 0;
    boolean eos = false;
    long t1;
    try (SessionClient session = SessionClient.open(stub)) {
      session.call(
          SessionRequest.newBuilder()
              .setOpen(
                  Open.newBuilder()
                      .addAllPromptIds(Arrays.stream(prompt).boxed().toList())
                      .setSampling(request.sampling())
                      .setSessionLabel("draftmesh-generate")));
      t1 = System.nanoTime();
      while (generated < budget) {
        SessionResponse r =
            session.call(SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(1)));
        int token = r.getProposed().getTokenIds(0);
        if (token == info.getEosTokenId()) {
          eos = true;
          break;
        }
        tokens[generated++] = token;
        if (token < tokenizer.vocabSize() && !tokenizer.isSpecial(token)) {
          out.print(text.push(tokenizer.tokenBytes(token)));
          out.flush();
        }
      }
    }
    long t2 = System.nanoTime();
    out.println(text.flush());
    out.flush();
    return new Result(
        prompt.length, Arrays.copyOf(tokens, generated), eos, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
  }

  static String summary(Result r) {
    return String.format(
        Locale.ROOT,
        "[%d prompt tokens, prefill %.0f ms; %d tokens in %.2f s: %.1f tokens/s%s]",
        r.promptTokens(),
        r.prefillSeconds() * 1e3,
        r.generated(),
        r.decodeSeconds(),
        r.tokensPerSecond(),
        r.eos() ? "; stopped at EOS" : "");
  }

  static Set<String> union(Set<String> a, Set<String> b) {
    java.util.HashSet<String> s = new java.util.HashSet<>(a);
    s.addAll(b);
    return s;
  }
}
