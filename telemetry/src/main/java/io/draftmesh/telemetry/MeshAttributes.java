package io.draftmesh.telemetry;

import io.opentelemetry.api.common.AttributeKey;
import java.util.List;

/**
 * The attribute keys DraftMesh's spans and metrics carry: the OpenTelemetry GenAI semantic
 * conventions ({@code gen_ai.*}) for what every model server reports, and DraftMesh's own ({@code
 * draftmesh.*}) for speculation. Kept here, not spelled out at each call site, so a dashboard's
 * query and the code that feeds it cannot drift apart.
 */
public final class MeshAttributes {
  private MeshAttributes() {}

  public static final AttributeKey<String> SERVICE_NAME = AttributeKey.stringKey("service.name");

  // GenAI semantic conventions (gen-ai spans and metrics).
  public static final AttributeKey<String> GEN_AI_OPERATION_NAME =
      AttributeKey.stringKey("gen_ai.operation.name");
  public static final AttributeKey<String> GEN_AI_PROVIDER_NAME =
      AttributeKey.stringKey("gen_ai.provider.name");
  public static final AttributeKey<String> GEN_AI_REQUEST_MODEL =
      AttributeKey.stringKey("gen_ai.request.model");
  public static final AttributeKey<String> GEN_AI_RESPONSE_MODEL =
      AttributeKey.stringKey("gen_ai.response.model");
  public static final AttributeKey<Long> GEN_AI_REQUEST_MAX_TOKENS =
      AttributeKey.longKey("gen_ai.request.max_tokens");
  public static final AttributeKey<Double> GEN_AI_REQUEST_TEMPERATURE =
      AttributeKey.doubleKey("gen_ai.request.temperature");
  public static final AttributeKey<Long> GEN_AI_USAGE_INPUT_TOKENS =
      AttributeKey.longKey("gen_ai.usage.input_tokens");
  public static final AttributeKey<Long> GEN_AI_USAGE_OUTPUT_TOKENS =
      AttributeKey.longKey("gen_ai.usage.output_tokens");
  public static final AttributeKey<List<String>> GEN_AI_RESPONSE_FINISH_REASONS =
      AttributeKey.stringArrayKey("gen_ai.response.finish_reasons");
  public static final AttributeKey<String> GEN_AI_TOKEN_TYPE =
      AttributeKey.stringKey("gen_ai.token.type");
  public static final AttributeKey<String> ERROR_TYPE = AttributeKey.stringKey("error.type");

  /** {@code gen_ai.operation.name} of a Generate call: a prompt in, a continuation out. */
  public static final String OPERATION_TEXT_COMPLETION = "text_completion";

  /** {@code gen_ai.provider.name}: DraftMesh serves its own models. */
  public static final String PROVIDER = "draftmesh";

  // DraftMesh's own: one speculative (or n-gram) verify round, and the request that ran it.
  public static final AttributeKey<String> STRATEGY = AttributeKey.stringKey("draftmesh.strategy");
  public static final AttributeKey<Long> SPEC_K = AttributeKey.longKey("draftmesh.spec.k");
  public static final AttributeKey<Long> SPEC_DRAFTED =
      AttributeKey.longKey("draftmesh.spec.drafted");
  public static final AttributeKey<Long> SPEC_ACCEPTED =
      AttributeKey.longKey("draftmesh.spec.accepted");
  public static final AttributeKey<Long> SPEC_ROUND = AttributeKey.longKey("draftmesh.spec.round");
  public static final AttributeKey<Long> SPEC_ROUNDS =
      AttributeKey.longKey("draftmesh.spec.rounds");
  public static final AttributeKey<Boolean> FALLBACK =
      AttributeKey.booleanKey("draftmesh.fallback");
  public static final AttributeKey<String> FALLBACK_REASON =
      AttributeKey.stringKey("draftmesh.fallback_reason");
  public static final AttributeKey<String> DRAFT_MODEL =
      AttributeKey.stringKey("draftmesh.draft.model");
  public static final AttributeKey<String> REQUEST_ID =
      AttributeKey.stringKey("draftmesh.request_id");

  // Metric labels (short, as Prometheus users write them).
  public static final AttributeKey<String> LABEL_STRATEGY = AttributeKey.stringKey("strategy");
  public static final AttributeKey<Long> LABEL_POSITION = AttributeKey.longKey("position");
  public static final AttributeKey<String> LABEL_ROLE = AttributeKey.stringKey("role");
  public static final AttributeKey<String> LABEL_MODEL = AttributeKey.stringKey("model");
  public static final AttributeKey<String> LABEL_FINISHED_REASON =
      AttributeKey.stringKey("finished_reason");
}
