package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.google.gson.JsonObject;
import io.draftmesh.proto.v1.GenerateRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.List;
import java.util.Set;

/**
 * Fuzz target for the OpenAI request parser, from the raw body on: any bytes are either a valid
 * request for the router (within the gateway's limits) or INVALID_ARGUMENT with a description (an
 * unknown model is NOT_FOUND). Never another exception, never a request past the limits.
 *
 * <p>Under plain JUnit this runs the committed inputs ({@code OpenAiRequestFuzzTestInputs/});
 * {@code ./draftmesh fuzz openai-request --minutes N} (JAZZER_FUZZ=1) fuzzes.
 */
class OpenAiRequestFuzzTest {
  static final int MAX_TOKENS_LIMIT = 4096;
  static final Catalog CATALOG =
      new Catalog(
          List.of(
              new GatewayConfig.ModelSpec("tiny", "target", "draft", null, ChatFormat.CHATML),
              new GatewayConfig.ModelSpec("plain", "target", null, null, ChatFormat.DEFAULT)),
          0);
  static final Set<Status.Code> REFUSALS =
      Set.of(Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND);

  @FuzzTest(maxDuration = "10m")
  void request(byte[] body) {
    JsonObject json;
    try {
      json = HttpApi.parseJsonObject(body);
    } catch (StatusRuntimeException refused) {
      assertRefusal(refused);
      return;
    }
    for (OpenAiRequests.Kind kind : OpenAiRequests.Kind.values()) {
      OpenAiRequests.Parsed p;
      try {
        p = OpenAiRequests.parse(kind, json.deepCopy(), CATALOG, MAX_TOKENS_LIMIT);
      } catch (StatusRuntimeException refused) {
        assertRefusal(refused);
        continue;
      }
      GenerateRequest r = p.request();
      assertThat(p.model()).isNotEmpty();
      assertThat(r.getSampling().getMaxTokens()).isBetween(0, MAX_TOKENS_LIMIT);
      // Numeric comparisons: "temperature": -0 is -0.0f, which is 0 (greedy), as the router reads
      // it.
      float t = r.getSampling().getTemperature();
      float topP = r.getSampling().getTopP();
      float minP = r.getSampling().getMinP();
      assertThat(t >= 0f && t <= 100f).as("temperature %s", t).isTrue();
      assertThat(topP >= 0f && topP <= 1f).as("top_p %s", topP).isTrue();
      assertThat(minP >= 0f && minP < 1f).as("min_p %s", minP).isTrue();
      assertThat(r.getSampling().getTopK()).isNotNegative();
      assertThat(r.hasText() || r.hasParts() || r.hasTokenIds()).isTrue();
    }
  }

  private static void assertRefusal(StatusRuntimeException e) {
    assertThat(e.getStatus().getCode()).isIn(REFUSALS);
    assertThat(e.getStatus().getDescription()).isNotBlank();
  }
}
