package io.draftmesh.serving;

import io.grpc.ServerServiceDefinition;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import java.util.List;

/**
 * Server reflection in both protocol versions: {@code grpc.reflection.v1} and the older {@code
 * grpc.reflection.v1alpha}, which many tools (older grpcurl, Postman, Evans, grpc_cli) still ask
 * for first. grpc-java marks its v1alpha service deprecated, not removed; serving both during the
 * transition is what grpc-java itself recommends. Used as {@code builder.addServices(services())}.
 */
public final class Reflection {
  private Reflection() {}

  /** Both reflection services, fresh for one server. */
  @SuppressWarnings("deprecation") // v1alpha on purpose: see the class comment
  public static List<ServerServiceDefinition> services() {
    return List.of(
        ProtoReflectionServiceV1.newInstance().bindService(),
        ProtoReflectionService.newInstance().bindService());
  }
}
