package io.draftmesh.telemetry;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.Scope;
import io.opentelemetry.context.propagation.TextMapGetter;

/**
 * Server spans for the gateway's HTTP server (the OpenAI API), which no OpenTelemetry library
 * instruments: one span per exchange (any transport, through {@link Request}), continuing a W3C
 * {@code traceparent} the client sent, current while the handler runs so the gRPC calls it makes
 * join the trace. Attributes follow the HTTP semantic conventions.
 */
public final class HttpServerTracing {
  private static final AttributeKey<String> METHOD = AttributeKey.stringKey("http.request.method");
  private static final AttributeKey<String> PATH = AttributeKey.stringKey("url.path");
  private static final AttributeKey<Long> STATUS =
      AttributeKey.longKey("http.response.status_code");

  /** What a span needs of one HTTP exchange. */
  public interface Request {
    /** The method, e.g. {@code POST}. */
    String method();

    /** The path, without the query. */
    String path();

    /** The first value of a request header (case-insensitive name), or null. */
    String header(String name);

    /** The request's header names. */
    Iterable<String> headerNames();

    /** The response status sent, or -1 if none was. */
    int status();
  }

  private static final TextMapGetter<Request> HEADERS =
      new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(Request ex) {
          return ex.headerNames();
        }

        @Override
        public String get(Request ex, String key) {
          return ex == null ? null : ex.header(key);
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
    private final Request ex;
    private final Span span;
    private final Scope scope;
    private final String method;

    private Exchange(Request ex, Span span, String method) {
      this.ex = ex;
      this.span = span;
      this.method = method;
      this.scope = span.makeCurrent();
    }

    @Override
    public void close() {
      scope.close();
      int code = ex.status(); // -1 if no response was sent
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
  public Exchange start(Request ex) {
    String method = ex.method();
    String path = ex.path();
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
