package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.engine.speculative.SpeculationMath;
import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerationStats;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The speculative bench end to end on random tiny checkpoints; timings are never asserted. */
class SpeculativeBenchTest {
  @TempDir Path cache;

  private static final List<String> SETTINGS =
      List.of(
          "engine",
          "autoregressive",
          "speculative_k2",
          "speculative_k4",
          "speculative_k4_ahead",
          "speculative_k8",
          "speculative_adaptive",
          "ngram",
          "tree_dyspec_8",
          "tree_dyspec_16",
          "tree_dyspec_32",
          "tree_rsd_8",
          "tree_rsd_16",
          "tree_rsd_32",
          "tree_token_recycling_4",
          "tree_token_recycling_8",
          "tree_token_recycling_16",
          "tree_token_recycling_32",
          "tree_lookahead_4",
          "tree_lookahead_8",
          "tree_lookahead_16",
          "tree_lookahead_32");
  private static final List<String> DRAFTED =
      List.of(
          "rounds",
          "draft_ms_per_round",
          "verify_ms_per_round",
          "drafted",
          "accepted",
          "acceptance_rate",
          "alpha",
          "mean_accepted_length",
          "plain_token_fraction",
          "gamma",
          "c",
          "verify_over_decode",
          "ideal_speedup",
          "efficiency");

  @Test
  void quickJsonReportsEveryFigureFiniteAndNoMismatch() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        SpeculativeBench.run(
            new String[] {"--quick", "--json", "--random", "--cache-dir", cache.toString()},
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    String stderr = err.toString(StandardCharsets.UTF_8);
    assertThat(rc).as(stderr).isZero();
    assertThat(stderr).doesNotContain("MISMATCH");

    JsonObject root =
        JsonParser.parseString(out.toString(StandardCharsets.UTF_8)).getAsJsonObject();
    assertThat(root.get("bench").getAsString()).isEqualTo("speculative");
    assertThat(root.get("mismatches").getAsInt()).isZero();
    assertThat(root.get("lossless").getAsBoolean()).isTrue();
    assertThat(root.getAsJsonObject("models").get("source").getAsString()).isEqualTo("random");
    assertThat(root.keySet())
        .contains(
            "machine",
            "load_average",
            "prompts",
            "max_tokens",
            "steps",
            "settings",
            "mesh_overhead",
            "targets");
    JsonObject steps = root.getAsJsonObject("steps");
    assertThat(steps.keySet())
        .contains("draft_step_ms", "target_step_ms", "c", "verify_ms", "verify_over_decode");
    assertThat(steps.getAsJsonObject("verify_over_decode").keySet())
        .containsExactly("1", "2", "4", "8", "16", "32");
    assertThat(steps.getAsJsonObject("c_amortized").keySet())
        .containsExactly("1", "2", "4", "8", "16", "32");

    JsonObject settings = root.getAsJsonObject("settings");
    assertThat(settings.keySet()).containsExactlyElementsOf(SETTINGS);
    long tokens = settings.getAsJsonObject("autoregressive").get("decode_tokens").getAsLong();
    assertThat(tokens).isEqualTo(2L * (root.get("max_tokens").getAsInt() - 1));
    for (String key : SETTINGS) {
      JsonObject s = settings.getAsJsonObject(key);
      assertThat(s.keySet())
          .as(key)
          .contains("tokens_per_s", "tokens_per_s_per_prompt", "speedup_vs_autoregressive");
      assertThat(s.get("decode_tokens").getAsLong()).as(key + " decode tokens").isEqualTo(tokens);
      if (!key.equals("engine")) {
        assertThat(s.keySet()).as(key).contains("target_calls", "draft_calls", "fallbacks");
      }
      if (key.startsWith("speculative") || key.equals("ngram")) {
        assertThat(s.keySet()).as(key).containsAll(DRAFTED);
      }
      if (key.startsWith("tree_")) {
        assertThat(s.keySet())
            .as(key)
            .contains("rounds", "drafted", "accepted", "mean_accepted_length", "gamma")
            .doesNotContain("alpha", "ideal_speedup", "efficiency");
      }
      if (key.startsWith("speculative")) {
        assertThat(s.get("rounds").getAsInt()).as(key + " rounds").isPositive();
      }
      if (key.startsWith("tree_")) {
        assertThat(s.keySet())
            .as(key)
            .contains(
                "drafter",
                "tree_nodes",
                "tokens_per_target_call",
                "verify_ms_per_node",
                "draft_ms_per_round",
                "verify_ms_per_round");
        // Every tree round waits on the target's Verify.
        assertThat(s.get("verify_ms_per_round").getAsDouble()).as(key).isPositive();
        assertThat(s.get("fallbacks").getAsInt()).as(key + " fallbacks").isZero();
      }
    }
    assertThat(settings.getAsJsonObject("speculative_k4").get("draft_calls").getAsInt())
        .isPositive();
    // Only the draft-ahead setting sends Proposes during verifies.
    assertThat(settings.getAsJsonObject("speculative_k4").get("draft_ahead_calls").getAsInt())
        .isZero();
    assertThat(settings.getAsJsonObject("speculative_k4_ahead").get("draft_ahead_calls").getAsInt())
        .isPositive();
    assertThat(settings.getAsJsonObject("speculative_k4").get("verify_ms_per_round").getAsDouble())
        .isPositive();
    assertThat(root.keySet()).contains("jit_seconds_measured");
    // DySpec waits on the draft worker every round.
    assertThat(settings.getAsJsonObject("tree_dyspec_8").get("draft_ms_per_round").getAsDouble())
        .isPositive();
    assertFinite("", root);
  }

  @Test
  void rejectsUnknownArguments() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int rc =
        SpeculativeBench.run(
            new String[] {"--fast"},
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(rc).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown argument \"--fast\"");
    ByteArrayOutputStream badKv = new ByteArrayOutputStream();
    assertThat(
            SpeculativeBench.run(
                new String[] {"--kv-dtype", "bf16"},
                new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
                new PrintStream(badKv, true, StandardCharsets.UTF_8)))
        .isEqualTo(2);
    assertThat(badKv.toString(StandardCharsets.UTF_8))
        .contains("--kv-dtype: bf16 (expected: float32 or float16)");
    assertThat(SpeculativeBench.parse(new String[] {"--kv-dtype", "float16"}).kvDtype())
        .isEqualTo(io.draftmesh.engine.kv.KvDtype.FLOAT16);
  }

  @Test
  void anyOutputDifferenceOrShortOutputIsAMismatch() {
    Map<String, SpeculativeBench.Run> runs = new LinkedHashMap<>();
    runs.put("autoregressive", run(5, 6, 7, 8));
    runs.put("speculative_k4", run(5, 6, 7, 8));
    assertThat(SpeculativeBench.compare(0, runs, 4)).isEmpty();
    runs.put("ngram", run(5, 6, 9, 8));
    runs.put("engine", run(5, 6, 7));
    assertThat(SpeculativeBench.compare(3, runs, 4))
        .containsExactly(
            "MISMATCH prompt 3 ngram: token 2 is 9 (autoregressive: 7)",
            "MISMATCH prompt 3 engine: 3 tokens, finish FINISH_REASON_LENGTH (expected: 4 tokens,"
                + " LENGTH)");
  }

  @Test
  void idealIsSpeculationMathOverRoundsBlendedWithPlainSteps() {
    Map<Integer, Stats> verify = Map.of(4, Stats.of(new double[] {3.0}));
    SpeculativeBench.Steps steps =
        new SpeculativeBench.Steps(
            Stats.of(new double[] {0.1}), Stats.of(new double[] {1.0}), verify);
    SpeculativeBench.Setting k4 = SpeculativeBench.SETTINGS.get(3);
    assertThat(k4.k()).isEqualTo(4);

    // Every decode token from rounds: exactly SpeculationMath's ideal.
    SpeculativeBench.Totals t = new SpeculativeBench.Totals();
    t.rounds = 10;
    t.drafted = 40;
    t.accepted = 32; // alpha 0.8
    t.decodeTokens = 42; // accepted + rounds
    t.decodeNanos = 1_000_000_000L;
    SpeculativeBench.Figures f = SpeculativeBench.figures(k4, t, 21, steps);
    // 4.2 tokens per round at gamma 4: the alpha whose expectation that is (not 32 / 40).
    assertThat(SpeculationMath.expectedTokensPerRound(f.alpha(), 4)).isCloseTo(4.2, within(1e-9));
    double perRound = SpeculationMath.idealSpeedup(f.alpha(), 4, 0.1, 3.0);
    assertThat(perRound).isCloseTo(4.2 / 3.4, within(1e-9));
    assertThat(f.ideal()).isCloseTo(perRound, within(1e-9));
    assertThat(f.speedup()).isCloseTo(2.0, within(1e-9));
    assertThat(f.efficiency()).isCloseTo(2.0 / perRound, within(1e-9));

    // Half the tokens from plain target steps, which run at speedup 1.
    t.decodeTokens = 84;
    f = SpeculativeBench.figures(k4, t, 21, steps);
    assertThat(f.ideal()).isCloseTo(1 / (0.5 / perRound + 0.5), within(1e-9));
  }

  @Test
  void fittedAlphaInvertsTheExpectedTokensPerRound() {
    // The paper's check vectors: alpha 0.8, gamma 4 gives 3.3616 tokens per round, and so on.
    assertThat(SpeculativeBench.fittedAlpha(3.3616, 4)).isCloseTo(0.8, within(1e-4));
    assertThat(SpeculativeBench.fittedAlpha(3.5995, 7)).isCloseTo(0.75, within(1e-4));
    assertThat(SpeculativeBench.fittedAlpha(6.1258, 8)).isCloseTo(0.9, within(1e-4));
    assertThat(SpeculativeBench.fittedAlpha(1.0, 4)).isZero();
    assertThat(SpeculativeBench.fittedAlpha(5.0, 4)).isEqualTo(1.0);
  }

  @Test
  void verifyCostIsInterpolatedBetweenMeasuredDraftLengths() {
    SpeculativeBench.Steps steps =
        new SpeculativeBench.Steps(
            Stats.of(new double[] {1}),
            Stats.of(new double[] {2}),
            Map.of(2, Stats.of(new double[] {4}), 4, Stats.of(new double[] {8})));
    assertThat(steps.verifyMs(3)).isCloseTo(6, within(1e-9));
    assertThat(steps.verifyMs(1)).isCloseTo(2, within(1e-9));
    assertThat(steps.verifyMs(6)).isCloseTo(12, within(1e-9));
    assertThat(steps.verifyRatio(4)).isCloseTo(4, within(1e-9));
    assertThat(steps.c()).isCloseTo(0.5, within(1e-9));
  }

  private static SpeculativeBench.Run run(int... ids) {
    return new SpeculativeBench.Run(
        ids, 1, GenerationStats.getDefaultInstance(), FinishReason.FINISH_REASON_LENGTH);
  }

  /** Every number anywhere in the tree is finite. */
  private static void assertFinite(String path, JsonElement e) {
    if (e.isJsonObject()) {
      for (Map.Entry<String, JsonElement> child : e.getAsJsonObject().entrySet()) {
        assertFinite(path + "." + child.getKey(), child.getValue());
      }
    } else if (e.isJsonPrimitive() && e.getAsJsonPrimitive().isNumber()) {
      double v = e.getAsDouble();
      assertThat(Double.isFinite(v)).as(path + " = " + v).isTrue();
    }
  }
}
