package io.draftmesh.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.KvCompressionStats;
import io.draftmesh.proto.v1.PromptCompressionStats;
import io.draftmesh.proto.v1.Strategy;
import org.junit.jupiter.api.Test;

/** The bench's baseline and metrics, without models (the bench itself runs as a command). */
class ApproxBenchTest {
  @Test
  void eachMethodIsTheRequestItNames() {
    int[] prompt = java.util.stream.IntStream.range(5, 1005).toArray();
    GenerateRequest full = ApproxBench.request(prompt, "full", 0, 24);
    assertThat(full.getStrategy()).isEqualTo(Strategy.STRATEGY_AUTOREGRESSIVE);
    assertThat(full.hasKvCompression()).isFalse();
    GenerateRequest snap = ApproxBench.request(prompt, "snapkv", 64, 24);
    assertThat(snap.getStrategy()).isEqualTo(Strategy.STRATEGY_AUTOREGRESSIVE);
    assertThat(snap.getKvCompression().getMethod()).isEqualTo("snapkv");
    assertThat(snap.getKvCompression().getBudget()).isEqualTo(64);
    GenerateRequest h2o = ApproxBench.request(prompt, "h2o", 64, 24);
    assertThat(h2o.getStrategy()).isEqualTo(Strategy.STRATEGY_AUTOREGRESSIVE);
    assertThat(h2o.getKvCompression().getMethod()).isEqualTo("h2o");
    assertThat(h2o.getKvCompression().getBudget()).isEqualTo(64);
    assertThat(h2o.getKvCompression().getWindow()).as("the router's default: C / 2").isZero();
    assertThat(ApproxBench.METHODS).contains("h2o");
    GenerateRequest kv = ApproxBench.request(prompt, "speckv", 128, 24);
    assertThat(kv.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECKV);
    assertThat(kv.hasSpecPc()).isFalse();
    GenerateRequest pc = ApproxBench.request(prompt, "specpc", 64, 24);
    assertThat(pc.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECPC);
    assertThat(pc.getSpecPc().getBudgetTokens()).isEqualTo(64);
    assertThat(pc.getSpecPc().getWindow()).isEqualTo(16); // 64 / 4
    assertThat(ApproxBench.specPc(512).getWindow()).isEqualTo(64); // the reference's
    GenerateRequest both = ApproxBench.request(prompt, "speckv_pc", 64, 24);
    assertThat(both.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECKV);
    assertThat(both.getSpecPc().getBudgetTokens()).isEqualTo(500); // L / 2
    assertThat(both.getKvCompression().getBudget()).isEqualTo(64);
    assertThat(ApproxBench.request(prompt, "speckv_pc", 512, 24).getSpecPc().getBudgetTokens())
        .isEqualTo(1000); // 2C capped at L: SpecKV alone
  }

  @Test
  void kvBytesComeFromWhatTheRouterReported() {
    assertThat(ApproxBench.kvBytes(GenerationStats.getDefaultInstance(), 100, 10))
        .isEqualTo(1000.0);
    GenerationStats pc =
        GenerationStats.newBuilder()
            .setPromptCompression(PromptCompressionStats.newBuilder().setKeptTokens(30))
            .build();
    assertThat(ApproxBench.kvBytes(pc, 100, 10)).isEqualTo(300.0);
    GenerationStats kv =
        GenerationStats.newBuilder()
            .setPromptCompression(PromptCompressionStats.newBuilder().setKeptTokens(30))
            .setKvCompression(KvCompressionStats.newBuilder().setKvBytesKept(170))
            .build();
    assertThat(ApproxBench.kvBytes(kv, 100, 10)).isEqualTo(170.0);
  }

  @Test
  void agreementIsTheTokenMatchRateWithTheReference() {
    int[] ref = {1, 2, 3, 4};
    assertThat(ApproxBench.tokenAgreement(new int[] {1, 2, 9, 4}, ref)).isEqualTo(0.75);
    assertThat(ApproxBench.tokenAgreement(ref, ref)).isEqualTo(1.0);
    assertThat(ApproxBench.tokenAgreement(new int[] {1}, ref)).isEqualTo(0.25);
  }

  @Test
  void flagsAreCheckedByName() {
    assertThat(ApproxBench.parse(new String[] {"--json", "--prompts", "2"}))
        .isEqualTo(new ApproxBench.Options(true, false, 2, 24));
    assertThat(ApproxBench.parse(new String[] {"--help"})).isNull();
    assertThatThrownBy(() -> ApproxBench.parse(new String[] {"--prompts", "0"}))
        .hasMessageContaining("--prompts: 0");
    assertThatThrownBy(() -> ApproxBench.parse(new String[] {"--budget"}))
        .hasMessageContaining("unknown flag \"--budget\"");
  }
}
