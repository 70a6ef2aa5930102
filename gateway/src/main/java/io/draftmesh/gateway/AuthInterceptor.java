package io.draftmesh.gateway;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import java.util.Set;

/**
 * gRPC authentication: the {@code authorization} metadata must carry {@code Bearer <API key>}; the
 * caller is put in the call's {@link Context} ({@link #CALLER}). Health checks and reflection are
 * open (load balancers probe health; reflection only describes the public schema).
 */
final class AuthInterceptor implements ServerInterceptor {
  static final Context.Key<ApiKeys.Caller> CALLER = Context.key("draftmesh-caller");

  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private static final Set<String> OPEN =
      Set.of(
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection");

  private final ApiKeys keys;

  AuthInterceptor(ApiKeys keys) {
    this.keys = keys;
  }

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
      ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
    if (OPEN.contains(call.getMethodDescriptor().getServiceName())) {
      return next.startCall(call, headers);
    }
    ApiKeys.Caller caller;
    try {
      caller = keys.authenticate(headers.get(AUTHORIZATION));
    } catch (StatusRuntimeException e) {
      call.close(e.getStatus(), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return Contexts.interceptCall(Context.current().withValue(CALLER, caller), call, headers, next);
  }
}
