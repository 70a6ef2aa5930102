package io.draftmesh.engine.checkpoint;

import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a {@code .safetensors} file: tensors in insertion order, all stored as one {@link DType}
 * (F16/BF16 rounded to nearest even), optional {@code __metadata__} first, the JSON header padded
 * with spaces to a multiple of 8 bytes like the reference implementation, so the data starts
 * 8-aligned. Data is streamed through a 1 MiB buffer; the file appears atomically (written to a
 * temporary sibling, then moved).
 */
public final class SafetensorsWriter {
  private static final int CHUNK_FLOATS = 1 << 18;

  private final DType dtype;
  private final Map<String, TensorData> tensors = new LinkedHashMap<>();
  private final Map<String, String> metadata = new LinkedHashMap<>();

  public SafetensorsWriter(DType dtype) {
    this.dtype = dtype;
  }

  public DType dtype() {
    return dtype;
  }

  /** Adds a {@code __metadata__} entry (HF checkpoints carry {@code "format": "pt"}). */
  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(key, value);
    return this;
  }

  public SafetensorsWriter add(String name, float[] values, long... shape) {
    return add(name, TensorData.of(values, shape));
  }

  public SafetensorsWriter add(String name, FloatBuffer values, long... shape) {
    return add(name, TensorData.of(values, shape));
  }

  public SafetensorsWriter add(String name, TensorData data) {
    if (name == null || name.isEmpty() || name.equals("__metadata__")) {
      throw new IllegalArgumentException("tensor name \"" + name + "\" is not allowed");
    }
    if (tensors.putIfAbsent(name, data) != null) {
      throw new IllegalArgumentException("tensor " + name + " added twice");
    }
    return this;
  }

  /** Bytes of tensor data this writer will produce (without the header). */
  public long dataBytes() {
    long total = 0;
    for (TensorData t : tensors.values()) {
      total = Math.addExact(total, t.numElements() * dtype.bytes());
    }
    return total;
  }

  /** Writes all tensors to {@code file}, replacing it. */
  public void write(Path file) throws IOException {
    byte[] header = header();
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try {
      try (FileChannel ch =
          FileChannel.open(
              tmp,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE)) {
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(0, header.length);
        writeFully(ch, prefix);
        writeFully(ch, ByteBuffer.wrap(header));
        ByteBuffer buf =
            ByteBuffer.allocateDirect(CHUNK_FLOATS * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[CHUNK_FLOATS];
        short[] halves = dtype == DType.F32 ? null : new short[CHUNK_FLOATS];
        for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
          writeTensor(ch, buf, values, halves, e.getValue());
        }
      }
      move(tmp, file);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private void writeTensor(
      FileChannel ch, ByteBuffer buf, float[] values, short[] halves, TensorData t)
      throws IOException {
    TensorData.ValueSource src = t.open();
    long remaining = t.numElements();
    while (remaining > 0) {
      int n = (int) Math.min(CHUNK_FLOATS, remaining);
      src.next(values, n);
      buf.clear();
      if (dtype == DType.F32) {
        buf.asFloatBuffer().put(values, 0, n);
        buf.limit(n * 4);
      } else {
        if (dtype == DType.BF16) {
          for (int i = 0; i < n; i++) {
            halves[i] = FloatBits.floatToBf16(values[i]);
          }
        } else {
          for (int i = 0; i < n; i++) {
            halves[i] = FloatBits.floatToF16(values[i]);
          }
        }
        ShortBuffer sb = buf.asShortBuffer();
        sb.put(halves, 0, n);
        buf.limit(n * 2);
      }
      writeFully(ch, buf);
      remaining -= n;
    }
  }

  private byte[] header() throws IOException {
    StringWriter sw = new StringWriter();
    try (JsonWriter w = new JsonWriter(sw)) {
      w.setHtmlSafe(false);
      w.beginObject();
      if (!metadata.isEmpty()) {
        w.name("__metadata__").beginObject();
        for (Map.Entry<String, String> m : metadata.entrySet()) {
          w.name(m.getKey()).value(m.getValue());
        }
        w.endObject();
      }
      long offset = 0;
      for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
        TensorData t = e.getValue();
        long bytes = t.numElements() * dtype.bytes();
        w.name(e.getKey()).beginObject();
        w.name("dtype").value(dtype.safetensorsName());
        w.name("shape").beginArray();
        for (long d : t.shape()) {
          w.value(d);
        }
        w.endArray();
        w.name("data_offsets").beginArray().value(offset).value(offset + bytes).endArray();
        w.endObject();
        offset += bytes;
      }
      w.endObject();
    }
    byte[] json = sw.toString().getBytes(StandardCharsets.UTF_8);
    int padded = (json.length + 7) / 8 * 8;
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
  }

  static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }
}
