package io.draftmesh.gateway;

import io.draftmesh.proto.v1.ListModelsResponse;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The public models: what clients name, and the router pools behind each name. A name that is not
 * in the catalog is passed to the router unchanged (as a pool name or model id), so the router
 * stays the one judge of what exists.
 */
final class Catalog {
  /** A public model with its chat format resolved. */
  record Entry(GatewayConfig.ModelSpec spec, ChatFormat chatFormat) {}

  private final Map<String, Entry> entries = new LinkedHashMap<>();
  private final long created;

  Catalog(List<GatewayConfig.ModelSpec> specs, long createdEpochSeconds) {
    for (GatewayConfig.ModelSpec s : specs) {
      ChatFormat f = s.chatFormat() != null ? s.chatFormat() : ChatFormat.detect(s.dir());
      entries.put(s.id(), new Entry(s, f));
    }
    this.created = createdEpochSeconds;
  }

  /** The entry named {@code model}, or null. */
  Entry get(String model) {
    return entries.get(model);
  }

  /** The chat format for {@code model}: its entry's, or {@link ChatFormat#DEFAULT}. */
  ChatFormat chatFormat(String model) {
    Entry e = entries.get(model);
    return e == null ? ChatFormat.DEFAULT : e.chatFormat();
  }

  /** Unix seconds the gateway started serving the catalog (OpenAI's {@code created}). */
  long created() {
    return created;
  }

  List<Entry> entries() {
    return List.copyOf(entries.values());
  }

  ListModelsResponse toProto() {
    ListModelsResponse.Builder b = ListModelsResponse.newBuilder();
    for (Entry e : entries.values()) {
      b.addModels(
          ListModelsResponse.Model.newBuilder()
              .setId(e.spec().id())
              .setTarget(e.spec().target())
              .setDraft(e.spec().draft())
              .setCreated(created)
              .setChatFormat(e.chatFormat().id()));
    }
    return b.build();
  }
}
