package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.Usage;
import org.junit.jupiter.api.Test;

/** {@code generate --router} flags and stats line for the approximate strategies. */
class CollaborativeGenerateTest {
  private static GenerateRequest request(String... args) {
    return RouterGenerate.request(Args.parse(args, RouterGenerate.FLAGS, RouterGenerate.BOOLEANS));
  }

  @Test
  void nudgingFlagsBecomeNudgingOptionsWithTheZooTemplateByDefault() {
    GenerateRequest r =
        request(
            "--router",
            "x:1",
            "--prompt",
            "Repeat: a b",
            "--strategy",
            "nudging",
            "--gamma",
            "0.3",
            "--chunk-tokens",
            "8",
            "--draft",
            "aligned");
    assertThat(r.getStrategy()).isEqualTo(Strategy.STRATEGY_NUDGING);
    assertThat(r.getNudging().getGamma()).isEqualTo(0.3f);
    assertThat(r.getNudging().getChunkTokens()).isEqualTo(8);
    assertThat(r.getNudging().getAlignedPrompt())
        .isEqualTo("<|endoftext|><|user|>Repeat: a b<|assistant|>");
    assertThat(r.getDraft()).isEqualTo("aligned");
    assertThat(r.getAddSpecialTokens()).isFalse(); // the base reads plain text
    GenerateRequest own =
        request(
            "--router", "x:1", "--prompt", "q", "--strategy", "nudge", "--aligned-prompt", "[q]");
    assertThat(own.getNudging().getAlignedPrompt()).isEqualTo("[q]");
  }

  @Test
  void entropySwitchAndLeadInFlagsAreSentOnlyWhenGiven() {
    GenerateRequest r =
        request(
            "--router",
            "x:1",
            "--prompt",
            "p",
            "--strategy",
            "entropy-switch",
            "--tau",
            "2.5",
            "--window",
            "0");
    assertThat(r.getStrategy()).isEqualTo(Strategy.STRATEGY_ENTROPY_SWITCH);
    assertThat(r.getEntropySwitch().getTau()).isEqualTo(2.5f);
    // Sent as given: the router answers INVALID_ARGUMENT naming entropy_switch.window.
    assertThat(r.getEntropySwitch().hasWindow()).isTrue();
    assertThat(r.getEntropySwitch().getWindow()).isZero();
    assertThat(r.getEntropySwitch().hasMinRun()).isFalse();
    GenerateRequest l =
        request("--router", "x:1", "--prompt", "p", "--strategy", "lead-in", "--lead-in", "2");
    assertThat(l.getStrategy()).isEqualTo(Strategy.STRATEGY_LEAD_IN);
    assertThat(l.getLeadIn().getN()).isEqualTo(2);
    assertThatThrownBy(() -> request("--router", "x:1", "--prompt", "p", "--strategy", "eadx"))
        .isInstanceOf(UsageException.class)
        .hasMessageContaining("entropy-switch");
  }

  @Test
  void statsLineGivesEachModelsShareAndTheCost() {
    GenerateChunk last =
        GenerateChunk.newBuilder()
            .setFinishReason(FinishReason.FINISH_REASON_EOS)
            .setUsage(Usage.newBuilder().setPromptTokens(5).setCompletionTokens(40))
            .setStats(
                GenerationStats.newBuilder()
                    .setStrategy(Strategy.STRATEGY_ENTROPY_SWITCH)
                    .setTargetModel("target")
                    .setDraftModel("draft")
                    .setLargeTokens(10)
                    .setSmallTokens(30)
                    .setLargeShare(0.25f)
                    .setParameterWeightedCost(0.3173f)
                    .setSwitches(3)
                    .setTau(1.5f)
                    .setWindow(5))
            .build();
    String line = RouterGenerate.summary(new RouterGenerate.Result("", last, 40, 0.1, 1.0));
    assertThat(line)
        .contains("entropy switch draft -> target")
        .contains("large 10 tokens, small 30 (large share 0.25)")
        .contains("parameter-weighted cost 0.317")
        .contains("3 switches")
        .contains("tau 1.50 bits over 5 tokens")
        .contains("finish eos")
        .doesNotContain("acceptance");
    GenerateChunk nudged =
        last.toBuilder()
            .setStats(
                last.getStats().toBuilder()
                    .setStrategy(Strategy.STRATEGY_NUDGING)
                    .setNudgingRounds(7)
                    .setGamma(0.4f)
                    .setFallback(true)
                    .setFallbackReason("aligned model aligned did not answer in time"))
            .build();
    assertThat(RouterGenerate.summary(new RouterGenerate.Result("", nudged, 40, 0.1, 1.0)))
        .contains("base 10 tokens, aligned 30")
        .contains("7 nudging rounds, gamma 0.40")
        .contains("helper dropped: aligned model aligned did not answer in time");
  }
}
