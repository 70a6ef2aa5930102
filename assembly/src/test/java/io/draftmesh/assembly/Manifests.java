package io.draftmesh.assembly;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Renders a kustomization with {@code kubectl kustomize} and parses every document strictly into
 * the Kubernetes API types (fabric8 {@code kubernetes-model}): an unknown {@code apiVersion/kind}
 * fails, and so does any field the type does not have. fabric8's types keep unknown fields in an
 * {@code additionalProperties} map instead of failing, so after parsing, the whole object graph is
 * walked and any non-empty one is reported with its path.
 */
final class Manifests {
  /** The API types the manifests may use, by {@code apiVersion/kind}. */
  static final Map<String, Class<? extends HasMetadata>> TYPES =
      Map.of(
          "v1/Namespace", Namespace.class,
          "v1/PersistentVolumeClaim", PersistentVolumeClaim.class,
          "v1/Service", Service.class,
          "apps/v1/Deployment", Deployment.class,
          "apps/v1/StatefulSet", StatefulSet.class,
          "autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class,
          "policy/v1/PodDisruptionBudget", PodDisruptionBudget.class,
          "networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class);

  private static final ObjectMapper YAML =
      JsonMapper.builder(new YAMLFactory())
          .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
          .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
          .build();

  private Manifests() {}

  /** The repository root (tests run in the assembly module's directory). */
  static Path root() {
    return Path.of("").toAbsolutePath().getParent();
  }

  /** {@code kubectl kustomize DIR}'s output. */
  static String render(Path dir) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder("kubectl", "kustomize", dir.toString())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    byte[] out = p.getInputStream().readAllBytes();
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException("kubectl kustomize " + dir + " failed");
    }
    return new String(out, StandardCharsets.UTF_8);
  }

  /** Every document of {@code yaml}, parsed strictly; see the class comment. */
  static List<HasMetadata> parse(String yaml) throws IOException {
    List<HasMetadata> out = new ArrayList<>();
    for (JsonNode doc : YAML.readerFor(JsonNode.class).<JsonNode>readValues(yaml).readAll()) {
      if (doc == null || doc.isNull() || doc.isEmpty()) {
        continue;
      }
      String key = doc.path("apiVersion").asText() + "/" + doc.path("kind").asText();
      Class<? extends HasMetadata> type = TYPES.get(key);
      if (type == null) {
        throw new IllegalArgumentException(
            key
                + ": not an API type the manifests may use (expected: one of "
                + TYPES.keySet()
                + ")");
      }
      HasMetadata r = YAML.treeToValue(doc, type);
      String name = key + " " + r.getMetadata().getName();
      List<String> unknown = new ArrayList<>();
      unknownFields(r, name, unknown, new IdentityHashMap<>());
      if (!unknown.isEmpty()) {
        throw new IllegalArgumentException("unknown fields: " + unknown);
      }
      out.add(r);
    }
    return out;
  }

  /** Collects the path of every non-empty {@code additionalProperties} under {@code o}. */
  private static void unknownFields(
      Object o, String path, List<String> out, IdentityHashMap<Object, Boolean> seen) {
    if (o == null || seen.put(o, true) != null) {
      return;
    }
    if (o instanceof Collection<?> c) {
      int i = 0;
      for (Object e : c) {
        unknownFields(e, path + "[" + i++ + "]", out, seen);
      }
      return;
    }
    if (o instanceof Map<?, ?> m) {
      for (Map.Entry<?, ?> e : m.entrySet()) {
        unknownFields(e.getValue(), path + "." + e.getKey(), out, seen);
      }
      return;
    }
    if (!o.getClass().getName().startsWith("io.fabric8.")) {
      return; // strings, numbers, enums
    }
    for (Method m : o.getClass().getMethods()) {
      if (m.getParameterCount() != 0
          || Modifier.isStatic(m.getModifiers())
          || !m.getName().startsWith("get")
          || m.getDeclaringClass() == Object.class) {
        continue;
      }
      Object v;
      try {
        v = m.invoke(o);
      } catch (ReflectiveOperationException e) {
        continue; // a derived getter (e.g. Quantity's numerical amount), not a field
      }
      if (m.getName().equals("getAdditionalProperties")) {
        if (v instanceof Map<?, ?> extra && !extra.isEmpty()) {
          out.add(path + " " + extra.keySet());
        }
      } else {
        String field = m.getName().substring(3);
        unknownFields(
            v, path + "." + Character.toLowerCase(field.charAt(0)) + field.substring(1), out, seen);
      }
    }
  }
}
