package io.draftmesh.kvcache;

import io.draftmesh.kvcache.client.KvKeys;
import io.draftmesh.proto.v1.ModelSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The registered models by fingerprint. With a data directory, each registration is kept as {@code
 * <fingerprint hex>.pb} (the serialized {@link ModelSpec}) and read back at start; a file whose
 * content does not hash to its name is ignored and logged. Thread-safe.
 */
final class ModelRegistry {
  private static final Logger log = LoggerFactory.getLogger(ModelRegistry.class);

  private final Path dir; // null: memory only
  private final Map<BlockKey, ModelSpec> models = new ConcurrentHashMap<>();

  ModelRegistry(Path dir) {
    this.dir = dir;
    if (dir == null) {
      return;
    }
    try {
      Files.createDirectories(dir);
      try (Stream<Path> files = Files.list(dir)) {
        for (Path p : files.filter(f -> f.toString().endsWith(".pb")).toList()) {
          load(p);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("model registry: cannot read " + dir, e);
    }
  }

  private void load(Path p) throws IOException {
    String name = p.getFileName().toString();
    try {
      ModelSpec spec = ModelSpec.parseFrom(Files.readAllBytes(p));
      byte[] fp = KvKeys.fingerprint(spec);
      if (!(KvKeys.hex(fp) + ".pb").equals(name)) {
        log.warn("model registry: {} does not hash to its name; ignored", p);
        return;
      }
      models.put(BlockKey.of(fp), spec);
    } catch (com.google.protobuf.InvalidProtocolBufferException | IllegalArgumentException e) {
      log.warn("model registry: {} is not a valid ModelSpec ({}); ignored", p, e.getMessage());
    }
  }

  /** Registers {@code spec} (validated by {@link KvKeys#fingerprint}); returns its fingerprint. */
  byte[] register(ModelSpec spec) {
    byte[] fp = KvKeys.fingerprint(spec);
    BlockKey key = BlockKey.of(fp);
    if (models.putIfAbsent(key, spec) == null && dir != null) {
      Path target = dir.resolve(KvKeys.hex(fp) + ".pb");
      try {
        Path tmp = Files.createTempFile(dir, "model", ".tmp");
        Files.write(tmp, spec.toByteArray());
        Files.move(
            tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        models.remove(key);
        throw new UncheckedIOException("model registry: cannot write " + target, e);
      }
    }
    return fp;
  }

  /** The spec registered under {@code fingerprint}, or null. */
  ModelSpec get(BlockKey fingerprint) {
    return models.get(fingerprint);
  }

  int size() {
    return models.size();
  }
}
