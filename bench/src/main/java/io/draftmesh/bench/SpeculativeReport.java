package io.draftmesh.bench;

import com.google.gson.JsonObject;
import io.draftmesh.bench.SpeculativeBench.Figures;
import io.draftmesh.bench.SpeculativeBench.Model;
import io.draftmesh.bench.SpeculativeBench.Report;
import io.draftmesh.bench.SpeculativeBench.Totals;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Renders a {@link SpeculativeBench.Report} as an aligned table or as one JSON object. */
final class SpeculativeReport {
  private SpeculativeReport() {}

  static String table(Report r) {
    StringBuilder sb = new StringBuilder();
    EngineBench.Machine mc = r.machine();
    sb.append(
        String.format(
            Locale.ROOT,
            "DraftMesh speculative bench%s: target, draft and router on real ports in one JVM%n"
                + "machine: %d cores (%s), %s, DJL %s, PyTorch %s, threads %s intra / %s interop;"
                + " load average %s at start, %s at end%n"
                + "models (%s): target %s (%s), draft %s (%s)%n"
                + "prompts: %d held-out (%s), greedy, %d tokens each (ignore_eos); %d settings"
                + " interleaved per prompt; %.0f s (the JIT compiling %s s of it after the"
                + " warm-up)%n%n",
            r.options().quick() ? " (--quick)" : "",
            mc.cores(),
            mc.cpu(),
            mc.jvm(),
            mc.djl(),
            mc.pytorch(),
            mc.intraThreads(),
            mc.interopThreads(),
            BenchReport.num(r.loadStart()),
            BenchReport.num(r.loadEnd()),
            r.modelSource().name().toLowerCase(Locale.ROOT),
            r.target().dir(),
            describe(r.target()),
            r.draft().dir(),
            describe(r.draft()),
            r.promptCount(),
            r.promptSource(),
            r.maxTokens(),
            r.figures().size(),
            r.wallSeconds(),
            BenchReport.num(r.jitSeconds())));

    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {
          "setting",
          "tok/s",
          "[p10-p90]",
          "speedup",
          "accepted",
          "alpha",
          "tok/round",
          "gamma",
          "c",
          "verify/dec",
          "ideal",
          "efficiency",
          "rounds",
          "calls t/d",
          "ahead used",
          "fallbacks"
        });
    for (Figures f : r.figures()) {
      Totals t = f.totals();
      Stats pp = t.perPromptTokensPerSec();
      boolean viaRouter = !f.setting().inProcess();
      boolean tree = f.setting().tree();
      boolean rounds = f.setting().drafted() && t.rounds > 0 && !tree;
      rows.add(
          new String[] {
            f.setting().label(),
            BenchReport.num(f.tokensPerSec()),
            "[" + BenchReport.num(pp.p10()) + "-" + BenchReport.num(pp.p90()) + "]",
            BenchReport.ratio(f.speedup()),
            f.setting().drafted() ? BenchReport.num(t.acceptanceRate()) : "",
            rounds ? BenchReport.num(f.alpha()) : "",
            f.setting().drafted() ? BenchReport.num(t.meanAcceptedLength()) : "",
            rounds || tree ? Integer.toString(f.gamma()) : "",
            rounds ? BenchReport.num(f.c()) : "",
            rounds ? BenchReport.ratio(f.verifyRatio()) : "",
            rounds ? BenchReport.ratio(f.ideal()) : "",
            rounds ? BenchReport.num(f.efficiency()) : "",
            f.setting().drafted() ? Long.toString(t.rounds) : "",
            viaRouter ? t.targetCalls + "/" + t.draftCalls : "",
            t.draftAheadCalls > 0 ? t.draftAheadHits + "/" + t.draftAheadCalls : "",
            viaRouter ? Long.toString(t.fallbacks) : ""
          });
    }
    sb.append(BenchReport.align(rows));

    sb.append(trees(r));

    SpeculativeBench.Steps s = r.steps();
    sb.append(
        String.format(
            Locale.ROOT,
            "%nsingle ops over direct worker sessions (gRPC round trip, ms, median [p10-p90] of"
                + " %d):%n",
            s.targetStep().n()));
    List<String[]> ops = new ArrayList<>();
    ops.add(new String[] {"  draft Propose(k=1)", BenchReport.stats(s.draftStep()), ""});
    ops.add(
        new String[] {
          "  target Propose(k=1)",
          BenchReport.stats(s.targetStep()),
          "c = draft / target = " + BenchReport.num(s.c())
        });
    for (Map.Entry<Integer, Stats> e : s.verify().entrySet()) {
      ops.add(
          new String[] {
            "  target Verify(k=" + e.getKey() + ")",
            BenchReport.stats(e.getValue()),
            "verify / decode = " + BenchReport.ratio(s.verifyRatio(e.getKey()))
          });
    }
    for (Map.Entry<Integer, Stats> e : s.propose().entrySet()) {
      ops.add(
          new String[] {
            "  draft Propose(k=" + e.getKey() + ")",
            BenchReport.stats(e.getValue()),
            "per token / target step = " + BenchReport.num(s.amortizedC(e.getKey()))
          });
    }
    sb.append(BenchReport.align(ops));
    sb.append(
        String.format(
            Locale.ROOT,
            "%nmesh overhead: autoregressive through the router / engine in-process = %s"
                + " (target >= %s)%n",
            BenchReport.num(r.meshOverhead()),
            BenchReport.num(SpeculativeBench.TARGET_MESH_OVERHEAD)));
    sb.append(
        String.format(
            Locale.ROOT,
            "accepted = accepted / drafted draft tokens (the router's acceptance rate, which falls"
                + " with gamma: drafts after a rejection are never tested); alpha = the per-token"
                + " acceptance that gives the measured tok/round at gamma, (1 - alpha^(gamma+1)) /"
                + " (1 - alpha)%n"
                + "efficiency = speedup / ideal (target >= %s); ideal = idealSpeedup(alpha, gamma, c,"
                + " verify/decode at gamma) over verify rounds, blended with plain target steps"
                + " (speedup 1) by their share of tokens; n-gram c = 0; adaptive and n-gram gamma"
                + " = mean draft tokens per round; c counts one round trip per draft token while a"
                + " round asks the draft for all gamma in one (see draft Propose(k)), so efficiency"
                + " can exceed 1 at large gamma%n",
            BenchReport.num(SpeculativeBench.TARGET_EFFICIENCY)));
    sb.append(
        "tok/s: decode phase (tokens after the first / time from the first token to the last),"
            + " all prompts together; [p10-p90] over prompts; speedup vs"
            + " autoregressive through the router; calls t/d: target/draft worker requests\n");
    if (r.mismatches().isEmpty()) {
      sb.append(
          String.format(
              Locale.ROOT,
              "lossless: every setting's greedy output equals the autoregressive one, token for"
                  + " token, on all %d prompts%n",
              r.promptCount()));
    } else {
      sb.append(r.mismatches().size()).append(" MISMATCHES (see stderr): not lossless\n");
    }
    return sb.toString();
  }

  /** Tree drafters against the 4-token chain, at equal verify budgets. */
  static String trees(Report r) {
    Figures chain = r.figures("speculative_k4");
    double chainPerPass = chain.totals().meanAcceptedLength();
    List<String[]> rows = new ArrayList<>();
    rows.add(
        new String[] {
          "drafter",
          "nodes",
          "tok/s",
          "speedup",
          "tok/verify",
          "vs chain k=4",
          "tok/target call",
          "nodes/round",
          "verify ms/node",
          "draft calls/round",
          "draft ms/round",
          "verify ms/round",
          "fallbacks"
        });
    rows.add(row(chain, chainPerPass, r.steps()));
    for (Figures f : r.figures()) {
      if (f.setting().tree()) {
        rows.add(row(f, chainPerPass, r.steps()));
      }
    }
    return String.format(Locale.ROOT, "%ntrees vs chain (greedy, same prompts):%n")
        + BenchReport.align(rows)
        + "tok/verify = tokens emitted per verify round (accepted nodes + the correction/bonus);"
        + " vs chain k=4 = its ratio to the chain's; tok/target call counts every target request"
        + " (prefill, plain steps, verifies); verify ms/node = a target Verify of that many tokens"
        + " (one forward, as a tree verify is) over its tokens; draft ms/round = the router's time"
        + " drafting (waiting on the draft worker) per round; verify ms/round = its time waiting on the"
        + " target's Verify per round (set against verify ms/node x nodes: the single op)\n";
  }

  private static String[] row(Figures f, double chainPerPass, SpeculativeBench.Steps steps) {
    Totals t = f.totals();
    int nodes = f.setting().k();
    return new String[] {
      f.setting().tree() ? f.setting().label().replaceAll(" tree \\d+$", "") : "chain",
      Integer.toString(nodes),
      BenchReport.num(f.tokensPerSec()),
      BenchReport.ratio(f.speedup()),
      BenchReport.num(t.meanAcceptedLength()),
      chainPerPass > 0 ? BenchReport.ratio(t.meanAcceptedLength() / chainPerPass) : "",
      BenchReport.num(t.tokensPerTargetCall()),
      BenchReport.num(t.meanDrafted()),
      BenchReport.num(steps.verifyMs(nodes) / nodes),
      t.rounds == 0 ? "" : BenchReport.num((double) t.draftCalls / t.rounds),
      t.rounds == 0 ? "" : BenchReport.num(t.draftMs / t.rounds),
      t.rounds == 0 ? "" : BenchReport.num(t.verifyMs / t.rounds),
      Long.toString(t.fallbacks)
    };
  }

  private static String describe(Model m) {
    return String.format(
        Locale.ROOT,
        "%s, %.2fM params, %d layers, %s KV",
        m.id(),
        m.params() / 1e6,
        m.layers(),
        m.kvDtype());
  }

  static String json(Report r) {
    JsonObject root = new JsonObject();
    root.addProperty("bench", "speculative");
    root.addProperty("quick", r.options().quick());
    root.add("machine", r.machine().toJson());
    JsonObject load = new JsonObject();
    load.addProperty("start", r.loadStart());
    load.addProperty("end", r.loadEnd());
    root.add("load_average", load);
    root.addProperty("wall_seconds", r.wallSeconds());
    if (Double.isFinite(r.jitSeconds())) {
      root.addProperty("jit_seconds_measured", r.jitSeconds());
    }

    JsonObject models = new JsonObject();
    models.addProperty("source", r.modelSource().name().toLowerCase(Locale.ROOT));
    models.add("target", model(r.target()));
    models.add("draft", model(r.draft()));
    root.add("models", models);
    JsonObject prompts = new JsonObject();
    prompts.addProperty("source", r.promptSource());
    prompts.addProperty("count", r.promptCount());
    root.add("prompts", prompts);
    root.addProperty("max_tokens", r.maxTokens());

    SpeculativeBench.Steps s = r.steps();
    JsonObject steps = new JsonObject();
    steps.add("draft_step_ms", BenchReport.statsJson(s.draftStep()));
    steps.add("target_step_ms", BenchReport.statsJson(s.targetStep()));
    steps.addProperty("c", s.c());
    JsonObject verify = new JsonObject();
    JsonObject ratio = new JsonObject();
    for (Map.Entry<Integer, Stats> e : s.verify().entrySet()) {
      verify.add(Integer.toString(e.getKey()), BenchReport.statsJson(e.getValue()));
      ratio.addProperty(Integer.toString(e.getKey()), s.verifyRatio(e.getKey()));
    }
    steps.add("verify_ms", verify);
    steps.add("verify_over_decode", ratio);
    JsonObject propose = new JsonObject();
    JsonObject amortized = new JsonObject();
    for (Map.Entry<Integer, Stats> e : s.propose().entrySet()) {
      propose.add(Integer.toString(e.getKey()), BenchReport.statsJson(e.getValue()));
      amortized.addProperty(Integer.toString(e.getKey()), s.amortizedC(e.getKey()));
    }
    steps.add("draft_propose_ms", propose);
    steps.add("c_amortized", amortized);
    root.add("steps", steps);

    JsonObject settings = new JsonObject();
    for (Figures f : r.figures()) {
      settings.add(f.setting().key(), setting(f, r));
    }
    root.add("settings", settings);
    root.addProperty("mesh_overhead", r.meshOverhead());
    root.addProperty("mismatches", r.mismatches().size());
    root.addProperty("lossless", r.mismatches().isEmpty());
    JsonObject targets = new JsonObject();
    targets.addProperty("efficiency_min", SpeculativeBench.TARGET_EFFICIENCY);
    targets.addProperty("mesh_overhead_min", SpeculativeBench.TARGET_MESH_OVERHEAD);
    root.add("targets", targets);
    return BenchReport.toJson(root);
  }

  private static JsonObject model(Model m) {
    JsonObject o = new JsonObject();
    o.addProperty("path", m.dir().toString());
    o.addProperty("model_id", m.id());
    o.addProperty("params", m.params());
    o.addProperty("layers", m.layers());
    o.addProperty("kv_dtype", m.kvDtype());
    return o;
  }

  private static JsonObject setting(Figures f, Report r) {
    Totals t = f.totals();
    JsonObject o = new JsonObject();
    o.addProperty("tokens_per_s", f.tokensPerSec());
    o.add("tokens_per_s_per_prompt", BenchReport.statsJson(t.perPromptTokensPerSec()));
    o.addProperty("decode_tokens", t.decodeTokens);
    o.addProperty("decode_seconds", t.decodeNanos / 1e9);
    o.addProperty("speedup_vs_autoregressive", f.speedup());
    if (!f.setting().inProcess()) {
      o.addProperty("target_calls", t.targetCalls);
      o.addProperty("draft_calls", t.draftCalls);
      o.addProperty("draft_ahead_calls", t.draftAheadCalls);
      o.addProperty("draft_ahead_hits", t.draftAheadHits);
      o.addProperty("fallbacks", t.fallbacks);
    }
    if (f.setting().tree()) {
      o.addProperty("drafter", f.setting().drafter().name());
      o.addProperty("tree_nodes", f.setting().k());
      o.addProperty("tokens_per_target_call", t.tokensPerTargetCall());
      o.addProperty("verify_ms_per_node", r.steps().verifyMs(f.setting().k()) / f.setting().k());
    }
    if (f.setting().drafted()) {
      if (f.setting().speculative() && !f.setting().tree()) {
        o.addProperty("k", f.setting().k());
        o.addProperty("adaptive", f.setting().adaptive());
      }
      o.addProperty("rounds", t.rounds);
      o.addProperty("draft_ms_per_round", t.rounds == 0 ? 0 : t.draftMs / t.rounds);
      o.addProperty("verify_ms_per_round", t.rounds == 0 ? 0 : t.verifyMs / t.rounds);
      o.addProperty("drafted", t.drafted);
      o.addProperty("accepted", t.accepted);
      o.addProperty("acceptance_rate", t.acceptanceRate());
      if (!f.setting().tree()) {
        o.addProperty("alpha", f.alpha()); // the chain analysis; trees have no alpha or ideal
      }
      o.addProperty("mean_accepted_length", t.meanAcceptedLength());
      o.addProperty("plain_token_fraction", t.plainFraction());
      o.addProperty("gamma", f.gamma());
      o.addProperty("c", f.c());
      o.addProperty("verify_over_decode", f.verifyRatio());
      if (!f.setting().tree()) {
        o.addProperty("ideal_speedup", f.ideal());
        o.addProperty("efficiency", f.efficiency());
      }
    }
    return o;
  }
}
