package io.draftmesh.telemetry;

import com.sun.net.httpserver.HttpExchange;
import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.util.List;

/**
 * Server spans for the JDK's HTTP server (the gateway's OpenAI API), which no OpenTelemetry library
 * instruments: one span per exchange, continuing a W3C {@code traceparent} the client sent, current
 * while the handler runs so the gRPC calls it makes join the trace. Attributes follow the HTTP
 * semantic conventions.
 */
public final class HttpServerTracing {
  private static final AttributeKey<String> METHOD = AttributeKey.stringKey("http.request.method");
  private static final AttributeKey<String> PATH = AttributeKey.stringKey("url.path");
  private static final AttributeKey<Long> STATUS =
      AttributeKey.longKey("http.response.status_code");

  private static final TextMapGetter<HttpExchange> HEADERS =
      new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(HttpExchange ex) {
          return ex.getRequestHeaders().keySet();
        }

        @Override
        public String get(HttpExchange ex, String key) {
          List<String> v = ex == null ? null : ex.getRequestHeaders().get(key);
          return v == null || v.isEmpty() ? null : v.get(0);
        }
      };

  private final OpenTelemetry otel;
  private final Tracer tracer;

  public HttpServerTracing(OpenTelemetry otel) {
    this.otel = otel;
    this.tracer = otel.getTracer("io.draftmesh.http");
  }

  /** One traced exchange: current until {@link #close()}, which ends it with the response code. */
  public final class Exchange implements AutoCloseable {
    private final HttpExchange ex;
    private final Span span;
    private final Scope scope;
    private final String method;

    private Exchange(HttpExchange ex, Span span, String method) {
      this.ex = ex;
      this.span = span;
      this.method = method;
      this.scope = span.makeCurrent();
    }

    @Override
    public void close() {
      scope.close();
      int code = ex.getResponseCode(); // -1 if no response was sent
      if (code > 0) {
        span.setAttribute(STATUS, (long) code);
      }
      if (code == 404) {
        // Not a route: a path a scanner made up must not become a span name of its own.
        span.updateName(method);
      }
      if (code >= 500) {
        span.setStatus(StatusCode.ERROR);
      }
      span.end();
    }
  }

  /** Starts the span of {@code ex}, named {@code METHOD path}. */
  public Exchange start(HttpExchange ex) {
    String method = ex.getRequestMethod();
    String path = ex.getRequestURI().getPath();
    Context parent =
        otel.getPropagators().getTextMapPropagator().extract(Context.root(), ex, HEADERS);
    Span span =
        tracer
            .spanBuilder(method + " " + path)
            .setParent(parent)
            .setSpanKind(SpanKind.SERVER)
            .setAttribute(METHOD, method)
            .setAttribute(PATH, path)
            .startSpan();
    return new Exchange(ex, span, method);
  }
}
