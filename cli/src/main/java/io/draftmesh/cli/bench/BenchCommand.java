package io.draftmesh.cli.bench;

import io.draftmesh.bench.ApproxBench;
import io.draftmesh.bench.CollabBench;
import io.draftmesh.bench.EngineBench;
import io.draftmesh.bench.KvReuseBench;
import io.draftmesh.bench.LoadBench;
import io.draftmesh.bench.SoakBench;
import io.draftmesh.bench.SpeculativeBench;
import io.draftmesh.kvcache.KvCacheBench;
import java.util.Arrays;

/**
 * {@code draftmesh bench SUITE [flags]}: dispatches to the benchmark suites of the bench module.
 */
public final class BenchCommand {
  public static final String USAGE =
      """
      usage: draftmesh bench engine [--json] [--quick]
             draftmesh bench speculative [--json] [--quick] [--prompts N] [--max-tokens N]
             draftmesh bench collab [--json] [--quick] [--prompts N] [--max-tokens N] [--models DIR]
             draftmesh bench kvcache [--json] [--quick] [--streams N[,N...]] [--blocks N]
             draftmesh bench kvcache reuse [--json] [--quick] [--prefixes L,L] [--conversations N]
             draftmesh bench approx [--json] [--quick] [--prompts N] [--max-tokens N]
             draftmesh bench load [--quick] [--streams N] [--queue N] [--overload N] [--tokens N]
                                  [--pace-ms MS]
             draftmesh bench soak [--minutes N] [--sample-seconds S] [--clients N]
        engine       engine step costs side by side on the bundled tiny model and a generated ~110M
                     Llama-shaped model: decode, verify (k+1 = 5), 512-token prefill, batching at
                     1/4/8 sessions, weight bandwidth against measured memory bandwidth, matmul floor.
                     --json prints one JSON object; --quick skips the 110M model.
        speculative  speculative decoding through a mesh on real ports (zoo models, else random):
                     tokens/s for autoregressive, speculative k=2/4/8/adaptive and n-gram on held-out
                     prompts, acceptance, measured c and verify/decode, the analytical ideal speedup
                     and efficiency, mesh overhead against the engine in-process; fails on any
                     greedy output that differs from autoregressive. --help for every flag.
        collab       the approximate strategies on the zoo through a mesh on real ports: nudging
                     (target alone, aligned alone, target-aligned alone, target nudged by aligned
                     for gamma 0.2..0.6 and by aligned-x) scored on held-out instructions
                     (template compliance, correctness, aligned share); entropy switch (tau sweep,
                     small-only, large-only) and lead-in (n sweep) on held-out continuations
                     (reference F1, agreement with the large model, large share,
                     parameter-weighted cost, ms/token). Missing models print "model missing".
        kvcache      kvcache-service on loopback: put/get GB/s of the memory and disk tiers,
                     lookup latency of a 2,048-token prompt. --help for every flag.
                     reuse: TTFT cold vs warm (same worker, other replica via the kvcache, its disk
                     tier) for shared prefixes, and a multi-turn chat over two target replicas
                     without reuse, with prefix caches, with the kvcache, with KV-aware routing.
        approx       prompt compression through a mesh on real ports: SpecPC (the draft's attention
                     picks the prompt tokens) against StreamingLLM-style prompt truncation at several
                     budgets on long prompts; tokens kept/dropped, agreement with the full-prompt
                     output, TTFT saved. Random long-context checkpoints, plus the zoo pair if present.
        load         the gateway under N concurrent SSE clients on loopback (a paced upstream keeps
                     streams open), up to and past --http-threads + --http-queue: TTFT (served,
                     waiting) and inter-token p50/p99, failures among the admitted, refusals'
                     status, code and latency, threads and heap before/peak/after. --help for
                     every flag.
        soak         the whole mesh through the gateway for --minutes (default 30): mixed
                     strategies, random client disconnects; RSS, NMT, heap, threads, sessions and KV
                     blocks every 30 s, the trend after warm-up, leaks when idle.""";

  private BenchCommand() {}

  /** Runs a benchmark suite; returns the exit code. */
  public static int run(String[] args) {
    if (args.length == 0) {
      System.err.println(USAGE);
      return 2;
    }
    String[] rest = Arrays.copyOfRange(args, 1, args.length);
    return switch (args[0]) {
      case "engine" -> EngineBench.run(rest);
      case "speculative" -> SpeculativeBench.run(rest);
      case "collab" -> CollabBench.run(rest);
      case "kvcache" ->
          rest.length > 0 && rest[0].equals("reuse")
              ? KvReuseBench.run(Arrays.copyOfRange(rest, 1, rest.length))
              : KvCacheBench.run(rest);
      case "approx" -> ApproxBench.run(rest);
      case "load" -> LoadBench.run(rest);
      case "soak" -> SoakBench.run(rest);
      default -> {
        System.err.println(
            "draftmesh bench: unknown suite "
                + args[0]
                + " (expected: engine, speculative, collab, kvcache, approx, load or soak)");
        System.err.println(USAGE);
        yield 2;
      }
    };
  }
}
