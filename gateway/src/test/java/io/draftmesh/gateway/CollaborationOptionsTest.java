package io.draftmesh.gateway;

import static io.draftmesh.gateway.RequestParsing.parse;
import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.GenerationStats;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Strategy;
import io.draftmesh.proto.v1.SwitchEvent;
import io.draftmesh.proto.v1.TextPart;
import io.draftmesh.proto.v1.TextParts;
import org.junit.jupiter.api.Test;

/** The approximate strategies' options in the OpenAI {@code draftmesh} extension, and stats out. */
class CollaborationOptionsTest {
  private static String refusal(String draftmesh) {
    return RequestParsing.refusal(
        OpenAiRequests.Kind.COMPLETION,
        "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":" + draftmesh + "}");
  }

  @Test
  void treeDrafterOptionsMapOntoTheRouterRequestAndStatsComeBack() {
    GenerateRequest r =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"strategy\":\"speculative\","
                + "\"drafter\":\"token_recycling\",\"tree_nodes\":32}}");
    assertThat(r.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECULATIVE);
    assertThat(r.getSpeculative().getDrafter())
        .isEqualTo(io.draftmesh.proto.v1.Drafter.DRAFTER_TOKEN_RECYCLING);
    assertThat(r.getSpeculative().getTreeNodes()).isEqualTo(32);
    assertThat(refusal("{\"drafter\":\"medusa\"}"))
        .isEqualTo(
            "draftmesh.drafter: \"medusa\" (expected: chain, dyspec, rsd, token_recycling or"
                + " lookahead)");
    assertThat(refusal("{\"tree_nodes\":0}")).startsWith("draftmesh.tree_nodes: 0");
    var stats =
        ProtoJson.toJson(
            GenerationStats.newBuilder()
                .setDrafter(io.draftmesh.proto.v1.Drafter.DRAFTER_DYSPEC)
                .addAcceptedPath(0)
                .addAcceptedPath(3)
                .setTokensPerTargetPass(2.5f)
                .build(),
            java.util.Set.of());
    assertThat(stats.get("drafter").getAsString()).isEqualTo("dyspec");
    assertThat(stats.get("accepted_path").toString()).isEqualTo("[0,3]");
    assertThat(stats.get("tokens_per_target_pass").getAsFloat()).isEqualTo(2.5f);
  }

  @Test
  void optionsMapOntoTheRouterRequest() {
    GenerateRequest r =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"Question: q\\n\",\"draftmesh\":{\"strategy\":"
                + "\"nudging\",\"draft\":\"aligned\",\"nudging\":{\"gamma\":0.3,\"chunk_tokens\":8,"
                + "\"aligned_prompt\":\"<|user|>q<|assistant|>\"}}}");
    assertThat(r.getStrategy()).isEqualTo(Strategy.STRATEGY_NUDGING);
    assertThat(r.getDraft()).isEqualTo("aligned");
    assertThat(r.getNudging().getGamma()).isEqualTo(0.3f);
    assertThat(r.getNudging().getChunkTokens()).isEqualTo(8);
    assertThat(r.getNudging().getAlignedPrompt()).isEqualTo("<|user|>q<|assistant|>");
    assertThat(r.getText()).isEqualTo("Question: q\n");
    GenerateRequest e =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"strategy\":\"entropy_switch\","
                + "\"entropy_switch\":{\"tau\":2,\"window\":4,\"min_run\":6},"
                + "\"lead_in\":{\"n\":3,\"sentence_end\":\".\"}}}");
    assertThat(e.getStrategy()).isEqualTo(Strategy.STRATEGY_ENTROPY_SWITCH);
    assertThat(e.getEntropySwitch().getTau()).isEqualTo(2f);
    assertThat(e.getEntropySwitch().getWindow()).isEqualTo(4);
    assertThat(e.getEntropySwitch().getMinRun()).isEqualTo(6);
    assertThat(e.getLeadIn().getN()).isEqualTo(3);
    assertThat(e.getLeadIn().getSentenceEnd()).isEqualTo(".");
    assertThat(e.getEntropySwitch().hasTau()).isTrue();
  }

  @Test
  void aChatNudgedGivesTheAlignedModelTheTemplateAndTheBasePlainText() {
    GenerateRequest r =
        parse(
            OpenAiRequests.Kind.CHAT,
            "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                + "{\"role\":\"user\",\"content\":\"Repeat: a b\"}],"
                + "\"draftmesh\":{\"strategy\":\"nudging\"}}");
    assertThat(joined(r.getNudging().getAlignedParts()))
        .isEqualTo("<|user|>Be brief.\n\nRepeat: a b<|assistant|>");
    assertThat(joined(r.getParts())).isEqualTo("Be brief.\nQuestion: Repeat: a b\n");
    // The client's text stays literal on both sides: no special token is matched inside it.
    assertThat(r.getParts().getPartsList())
        .filteredOn(TextPart::getLiteral)
        .extracting(TextPart::getText)
        .containsExactly("Be brief.", "Repeat: a b");
    assertThat(r.getNudging().getAlignedParts().getPartsList())
        .filteredOn(TextPart::getLiteral)
        .extracting(TextPart::getText)
        .contains("Repeat: a b");
  }

  private static String joined(TextParts parts) {
    StringBuilder sb = new StringBuilder();
    parts.getPartsList().forEach(p -> sb.append(p.getText()));
    return sb.toString();
  }

  @Test
  void badOptionsNameTheField() {
    assertThat(refusal("{\"nudging\":{\"gamma\":1}}"))
        .isEqualTo("draftmesh.nudging.gamma: 1.0 (expected: (0, 1))");
    assertThat(refusal("{\"nudging\":{\"gamma\":0}}")).startsWith("draftmesh.nudging.gamma: 0");
    assertThat(refusal("{\"nudging\":{\"gamma\":-0.5}}")).startsWith("draftmesh.nudging.gamma");
    assertThat(refusal("{\"nudging\":{\"beta\":1}}"))
        .startsWith("draftmesh.nudging.beta: unknown option");
    assertThat(refusal("{\"entropy_switch\":{\"window\":0}}"))
        .startsWith("draftmesh.entropy_switch.window: 0");
    assertThat(refusal("{\"entropy_switch\":{\"tau\":-1}}"))
        .startsWith("draftmesh.entropy_switch.tau: -1");
    assertThat(refusal("{\"entropy_switch\":3}"))
        .startsWith("draftmesh.entropy_switch: 3 (expected: an object");
    assertThat(refusal("{\"lead_in\":{\"n\":-1}}")).startsWith("draftmesh.lead_in.n: -1");
  }

  @Test
  void provenanceSwitchesAndSharesReachTheExtension() {
    GenerateChunk c =
        GenerateChunk.newBuilder()
            .addTokenIds(5)
            .addProvenance(Provenance.PROVENANCE_ALIGNED_NUDGE)
            .addSwitches(
                SwitchEvent.newBuilder().setAtToken(0).setTo(Provenance.PROVENANCE_ALIGNED_NUDGE))
            .setStats(
                GenerationStats.newBuilder()
                    .setStrategy(Strategy.STRATEGY_NUDGING)
                    .setLargeTokens(3)
                    .setSmallTokens(1)
                    .setLargeShare(0.75f)
                    .setParameterWeightedCost(0.8f)
                    .setNudgingRounds(2))
            .build();
    var ext = OpenAiResponses.extension(c);
    assertThat(ext.get("provenance").getAsJsonArray().get(0).getAsString())
        .isEqualTo("aligned_nudge");
    assertThat(ext.getAsJsonArray("switches").get(0).getAsJsonObject().get("to").getAsString())
        .isEqualTo("aligned_nudge");
    var stats = ext.getAsJsonObject("stats");
    assertThat(stats.get("strategy").getAsString()).isEqualTo("nudging");
    assertThat(stats.get("large_share").getAsFloat()).isEqualTo(0.75f);
    assertThat(stats.get("parameter_weighted_cost").getAsFloat()).isEqualTo(0.8f);
    assertThat(stats.get("nudging_rounds").getAsInt()).isEqualTo(2);
  }
}
