package io.draftmesh.gateway;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/** A small HTTP client for the gateway tests (java.net.http). */
final class Http {
  private final HttpClient client =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(5))
          .build();
  private final String base;

  Http(GatewayServer gateway) {
    this.base = "http://127.0.0.1:" + gateway.ports().http();
  }

  /** A JSON response: status, headers and body. */
  record Json(int status, HttpResponse<String> raw, JsonObject body) {}

  HttpRequest.Builder request(String path, String key) {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60));
    if (key != null) {
      b.header("Authorization", "Bearer " + key);
    }
    return b;
  }

  Json get(String path, String key) {
    return send(request(path, key).GET().build());
  }

  Json post(String path, String key, String body) {
    return send(
        request(path, key)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build());
  }

  Json post(String path, String key, JsonObject body) {
    return post(path, key, body.toString());
  }

  HttpResponse<String> getText(String path) {
    try {
      return client.send(request(path, null).GET().build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** {@link #post} without waiting for the answer. */
  CompletableFuture<Json> postAsync(String path, String key, JsonObject body) {
    HttpRequest r =
        request(path, key)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
            .build();
    return client.sendAsync(r, HttpResponse.BodyHandlers.ofString()).thenApply(Http::json);
  }

  private static Json json(HttpResponse<String> resp) {
    JsonObject body =
        resp.body().isEmpty() ? null : JsonParser.parseString(resp.body()).getAsJsonObject();
    return new Json(resp.statusCode(), resp, body);
  }

  Json send(HttpRequest r) {
    try {
      return json(client.send(r, HttpResponse.BodyHandlers.ofString()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** An open SSE response: read events one by one, or close it mid-stream. */
  final class Stream implements AutoCloseable {
    final HttpResponse<InputStream> response;
    private final BufferedReader reader;

    Stream(HttpResponse<InputStream> response) {
      this.response = response;
      this.reader =
          new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
    }

    /** The next event's data (comments skipped), or null at the end of the stream. */
    String next() throws IOException {
      StringBuilder data = new StringBuilder();
      String line;
      while ((line = reader.readLine()) != null) {
        if (line.isEmpty()) {
          if (data.length() > 0) {
            return data.toString();
          }
          continue;
        }
        if (line.startsWith("data: ")) {
          data.append(line.substring(6));
        } else if (!line.startsWith(":")) {
          throw new AssertionError("not an SSE line: " + line);
        }
      }
      return data.length() > 0 ? data.toString() : null;
    }

    /** Every remaining event's data. */
    List<String> rest() throws IOException {
      List<String> out = new ArrayList<>();
      String e;
      while ((e = next()) != null) {
        out.add(e);
      }
      return out;
    }

    @Override
    public void close() throws IOException {
      response.body().close();
    }
  }

  Stream stream(String path, String key, JsonObject body) {
    try {
      HttpResponse<InputStream> resp =
          client.send(
              request(path, key)
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body.toString()))
                  .build(),
              HttpResponse.BodyHandlers.ofInputStream());
      return new Stream(resp);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
