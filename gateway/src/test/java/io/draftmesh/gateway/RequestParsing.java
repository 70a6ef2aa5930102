package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.gson.JsonParser;
import io.draftmesh.proto.v1.GenerateRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.List;

/** OpenAI request bodies parsed as the HTTP API does, over a one-model catalog ({@code m}). */
final class RequestParsing {
  /** The one model, {@code m}, on pools {@code target} and {@code draft}. */
  static final Catalog CATALOG =
      new Catalog(
          List.of(new GatewayConfig.ModelSpec("m", "target", "draft", null, null)), 1_700_000_000L);

  private RequestParsing() {}

  /** The router request {@code json} becomes. */
  static GenerateRequest parse(OpenAiRequests.Kind kind, String json) {
    return OpenAiRequests.parse(kind, JsonParser.parseString(json).getAsJsonObject(), CATALOG, 8192)
        .request();
  }

  /** The description of the INVALID_ARGUMENT that {@code json} must be refused with. */
  static String refusal(OpenAiRequests.Kind kind, String json) {
    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> parse(kind, json));
    assertThat(e).as(json).isNotNull();
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
    return e.getStatus().getDescription();
  }
}
