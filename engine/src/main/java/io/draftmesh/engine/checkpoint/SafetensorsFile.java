package io.draftmesh.engine.checkpoint;

import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.Closeable;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.FloatBuffer;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A memory-mapped reader for one {@code .safetensors} file: an 8-byte little-endian header length
 * N, N bytes of JSON ({@code {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}}), then the tensor data, offsets relative to the end of the header.
 *
 * <p>{@link #open} validates the whole header against the file before any tensor data is touched,
 * so a hostile or truncated file is rejected with a {@link CheckpointException} naming the file,
 * the tensor and what was expected versus found; reads never go past the file.
 *
 * <p>{@link #readFloat32} returns float32 little-endian direct buffers: F32 tensors are a
 * zero-copy, read-only slice of the mapping; F16 and BF16 are widened in Java into a new direct
 * buffer (counts against {@code -XX:MaxDirectMemorySize}). BF16 data is never handed to DJL, whose
 * native bfloat16 paths abort the JVM. Buffers already returned stay valid after {@link #close}.
 * Thread-safe.
 */
public final class SafetensorsFile implements Closeable {
  /** Same cap as the reference implementation (safetensors' MAX_HEADER_SIZE). */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  private static final String METADATA = "__metadata__";
  private static final Map<String, Integer> DTYPE_SIZES = dtypeSizes();
  private static final int CHUNK = 1 << 16;

  private final Path path;
  private final String label;
  private final FileChannel channel;
  private final Map<String, TensorInfo> tensors;
  private final Map<String, String> metadata;
  private volatile boolean closed;

  private SafetensorsFile(
      Path path, FileChannel channel, Map<String, TensorInfo> tensors, Map<String, String> meta) {
    this.path = path;
    this.label = path.toString();
    this.channel = channel;
    this.tensors = Collections.unmodifiableMap(tensors);
    this.metadata = Collections.unmodifiableMap(meta);
  }

  private static Map<String, Integer> dtypeSizes() {
    Map<String, Integer> m = new LinkedHashMap<>();
    m.put("F32", 4);
    m.put("F16", 2);
    m.put("BF16", 2);
    m.put("F64", 8);
    m.put("I64", 8);
    m.put("U64", 8);
    m.put("I32", 4);
    m.put("U32", 4);
    m.put("I16", 2);
    m.put("U16", 2);
    m.put("I8", 1);
    m.put("U8", 1);
    m.put("BOOL", 1);
    m.put("F8_E4M3", 1);
    m.put("F8_E5M2", 1);
    m.put("F8_E8M0", 1);
    return Collections.unmodifiableMap(m);
  }

  /**
   * Opens and validates {@code file}.
   *
   * @throws CheckpointException if the file is not a well-formed safetensors file
   * @throws IOException if it cannot be read
   */
  public static SafetensorsFile open(Path file) throws IOException {
    FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
    try {
      return open(file, channel);
    } catch (RuntimeException | IOException | Error e) {
      channel.close();
      throw e;
    }
  }

  private static SafetensorsFile open(Path file, FileChannel channel) throws IOException {
    String label = file.toString();
    long fileSize = channel.size();
    if (fileSize < 8) {
      throw new CheckpointException(
          label
              + ": file is "
              + fileSize
              + " bytes, too short for a safetensors file (expected: at least the 8-byte header"
              + " length)");
    }
    ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    readFully(channel, lengthBytes, 0);
    long headerLength = lengthBytes.getLong(0);
    if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
      throw new CheckpointException(
          label
              + ": header length "
              + Long.toUnsignedString(headerLength)
              + " bytes (expected: at most "
              + MAX_HEADER_BYTES
              + ")");
    }
    if (headerLength > fileSize - 8) {
      throw new CheckpointException(
          label
              + ": header length "
              + headerLength
              + " bytes exceeds the "
              + (fileSize - 8)
              + " bytes after the length prefix (file is "
              + fileSize
              + " bytes)");
    }
    ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
    readFully(channel, headerBytes, 8);
    headerBytes.flip();
    String header;
    try {
      CharBuffer chars =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(headerBytes);
      header = chars.toString();
    } catch (CharacterCodingException e) {
      throw new CheckpointException(label + ": header is not valid UTF-8", e);
    }
    Map<String, String> meta = new LinkedHashMap<>();
    List<RawEntry> entries = parseHeader(header, label, meta);
    long dataStart = 8 + headerLength;
    long dataSize = fileSize - dataStart;
    Map<String, TensorInfo> tensors = validate(entries, label, dataStart, dataSize);
    return new SafetensorsFile(file, channel, tensors, meta);
  }

  private static void readFully(FileChannel channel, ByteBuffer dst, long position)
      throws IOException {
    long pos = position;
    while (dst.hasRemaining()) {
      int n = channel.read(dst, pos);
      if (n < 0) {
        throw new IOException("unexpected end of file at byte " + pos);
      }
      pos += n;
    }
  }

  /** A header entry before validation against the file. */
  private record RawEntry(String name, String dtype, long[] shape, long begin, long end) {}

  private static List<RawEntry> parseHeader(String header, String label, Map<String, String> meta) {
    List<RawEntry> entries = new ArrayList<>();
    String where = "header";
    try (JsonReader r = new JsonReader(new StringReader(header))) {
      r.setStrictness(Strictness.STRICT);
      expect(r, JsonToken.BEGIN_OBJECT, label, "the header");
      r.beginObject();
      java.util.HashSet<String> seen = new java.util.HashSet<>();
      while (r.hasNext()) {
        String name = r.nextName();
        if (!seen.add(name)) {
          throw new CheckpointException(label + ": header names tensor " + name + " twice");
        }
        if (name.equals(METADATA)) {
          where = METADATA;
          parseMetadata(r, label, meta);
        } else {
          where = "tensor " + name;
          entries.add(parseEntry(r, label, name));
        }
      }
      r.endObject();
      where = "header";
      if (r.peek() != JsonToken.END_DOCUMENT) {
        throw new CheckpointException(label + ": header has trailing data after the JSON object");
      }
    } catch (IOException | IllegalStateException | NumberFormatException e) {
      throw new CheckpointException(
          label + ": header is not valid JSON (at " + where + "): " + e.getMessage(), e);
    }
    return entries;
  }

  private static void expect(JsonReader r, JsonToken token, String label, String what)
      throws IOException {
    JsonToken found = r.peek();
    if (found != token) {
      throw new CheckpointException(
          label + ": " + what + " must be " + describe(token) + ", found " + describe(found));
    }
  }

  private static String describe(JsonToken t) {
    switch (t) {
      case BEGIN_OBJECT:
        return "an object";
      case BEGIN_ARRAY:
        return "an array";
      case STRING:
        return "a string";
      case NUMBER:
        return "a number";
      case BOOLEAN:
        return "a boolean";
      case NULL:
        return "null";
      default:
        return t.name();
    }
  }

  private static void parseMetadata(JsonReader r, String label, Map<String, String> meta)
      throws IOException {
    if (r.peek() == JsonToken.NULL) {
      r.nextNull();
      return;
    }
    expect(r, JsonToken.BEGIN_OBJECT, label, METADATA);
    r.beginObject();
    while (r.hasNext()) {
      String key = r.nextName();
      expect(r, JsonToken.STRING, label, METADATA + "." + key);
      meta.put(key, r.nextString());
    }
    r.endObject();
  }

  private static RawEntry parseEntry(JsonReader r, String label, String name) throws IOException {
    String t = "tensor " + name;
    expect(r, JsonToken.BEGIN_OBJECT, label, t);
    r.beginObject();
    String dtype = null;
    long[] shape = null;
    long[] offsets = null;
    while (r.hasNext()) {
      String field = r.nextName();
      switch (field) {
        case "dtype":
          expect(r, JsonToken.STRING, label, t + ": dtype");
          dtype = r.nextString();
          break;
        case "shape":
          shape = longArray(r, label, t + ": shape");
          break;
        case "data_offsets":
          offsets = longArray(r, label, t + ": data_offsets");
          break;
        default:
          r.skipValue();
      }
    }
    r.endObject();
    if (dtype == null || shape == null || offsets == null) {
      String missing = dtype == null ? "dtype" : shape == null ? "shape" : "data_offsets";
      throw new CheckpointException(label + ": " + t + " has no " + missing);
    }
    if (offsets.length != 2) {
      throw new CheckpointException(
          label
              + ": "
              + t
              + ": data_offsets has "
              + offsets.length
              + " values (expected: [begin, end])");
    }
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw new CheckpointException(
            label
                + ": "
                + t
                + ": shape "
                + Arrays.toString(shape)
                + " has negative dimension "
                + shape[i]);
      }
    }
    if (offsets[0] < 0 || offsets[1] < 0) {
      throw new CheckpointException(
          label
              + ": "
              + t
              + ": data_offsets "
              + Arrays.toString(offsets)
              + " (expected: non-negative)");
    }
    return new RawEntry(name, dtype, shape, offsets[0], offsets[1]);
  }

  private static long[] longArray(JsonReader r, String label, String what) throws IOException {
    expect(r, JsonToken.BEGIN_ARRAY, label, what);
    r.beginArray();
    List<Long> values = new ArrayList<>();
    while (r.hasNext()) {
      expect(r, JsonToken.NUMBER, label, what + "[" + values.size() + "]");
      String literal = r.nextString();
      try {
        values.add(Long.parseLong(literal));
      } catch (NumberFormatException e) {
        throw new CheckpointException(
            label
                + ": "
                + what
                + "["
                + values.size()
                + "] is "
                + literal
                + " (expected: an integer that fits in 64 bits)");
      }
    }
    r.endArray();
    long[] out = new long[values.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = values.get(i);
    }
    return out;
  }

  private static Map<String, TensorInfo> validate(
      List<RawEntry> entries, String label, long dataStart, long dataSize) {
    Map<String, TensorInfo> out = new LinkedHashMap<>();
    for (RawEntry e : entries) {
      String t = label + ": tensor " + e.name();
      Integer size = DTYPE_SIZES.get(e.dtype());
      if (size == null) {
        throw new CheckpointException(
            t
                + " has unknown dtype \""
                + e.dtype()
                + "\" (known: "
                + String.join(", ", DTYPE_SIZES.keySet())
                + ")");
      }
      long expected;
      try {
        long n = 1;
        for (long d : e.shape()) {
          n = Math.multiplyExact(n, d);
        }
        expected = Math.multiplyExact(n, (long) size);
      } catch (ArithmeticException overflow) {
        throw new CheckpointException(
            t + ": shape " + Arrays.toString(e.shape()) + " has more elements than fit in 64 bits");
      }
      if (e.end() < e.begin()) {
        throw new CheckpointException(
            t
                + ": data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] end before begin (expected: begin <= end)");
      }
      if (e.end() > dataSize) {
        throw new CheckpointException(
            t
                + ": data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] out of range: the data section is "
                + dataSize
                + " bytes");
      }
      long length = e.end() - e.begin();
      if (length != expected) {
        throw new CheckpointException(
            t
                + ": data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] span "
                + length
                + " bytes, expected "
                + expected
                + " (shape "
                + Arrays.toString(e.shape())
                + " x "
                + e.dtype()
                + " "
                + size
                + " bytes)");
      }
      out.put(
          e.name(), new TensorInfo(e.name(), e.dtype(), e.shape(), dataStart + e.begin(), length));
    }
    List<RawEntry> byBegin = new ArrayList<>();
    for (RawEntry e : entries) {
      if (e.end() > e.begin()) {
        byBegin.add(e);
      }
    }
    byBegin.sort(Comparator.comparingLong(RawEntry::begin));
    for (int i = 1; i < byBegin.size(); i++) {
      RawEntry prev = byBegin.get(i - 1);
      RawEntry cur = byBegin.get(i);
      if (cur.begin() < prev.end()) {
        throw new CheckpointException(
            label
                + ": tensors "
                + prev.name()
                + " ["
                + prev.begin()
                + ", "
                + prev.end()
                + ") and "
                + cur.name()
                + " ["
                + cur.begin()
                + ", "
                + cur.end()
                + ") overlap");
      }
    }
    return out;
  }

  /** The file this reader maps. */
  public Path path() {
    return path;
  }

  /** Tensor names in header order. */
  public Set<String> names() {
    return tensors.keySet();
  }

  public boolean has(String name) {
    return tensors.containsKey(name);
  }

  /** The {@code __metadata__} map (empty if none). */
  public Map<String, String> metadata() {
    return metadata;
  }

  /**
   * The header entry of {@code name}.
   *
   * @throws CheckpointException if the file has no such tensor
   */
  public TensorInfo info(String name) {
    TensorInfo info = tensors.get(name);
    if (info == null) {
      throw new CheckpointException(
          label + ": no tensor named " + name + " (" + tensors.size() + " tensors in the file)");
    }
    return info;
  }

  /**
   * The stored bytes of {@code name}, as a read-only little-endian slice of the mapping (no
   * conversion).
   */
  public ByteBuffer raw(String name) throws IOException {
    TensorInfo info = info(name);
    if (info.byteLength() > Integer.MAX_VALUE) {
      throw new CheckpointException(
          label
              + ": tensor "
              + name
              + " is "
              + info.byteLength()
              + " bytes, more than one ByteBuffer can hold ("
              + Integer.MAX_VALUE
              + ")");
    }
    return map(info);
  }

  /**
   * The tensor as float32 little-endian values in a direct buffer (position 0, limit = 4 *
   * elements): a read-only zero-copy slice for F32, a new buffer widened exactly from F16/BF16.
   *
   * @throws CheckpointException if the tensor is missing, is not F32/F16/BF16, or is too large for
   *     one buffer as float32 (2 GiB)
   */
  public ByteBuffer readFloat32(String name) throws IOException {
    TensorInfo info = info(name);
    DType type = requireFloat(info);
    long floatBytes = info.numElements() * 4;
    if (floatBytes > Integer.MAX_VALUE) {
      throw new CheckpointException(
          label
              + ": tensor "
              + name
              + " "
              + Arrays.toString(info.shape())
              + " is "
              + floatBytes
              + " bytes as float32, more than one ByteBuffer can hold ("
              + Integer.MAX_VALUE
              + ")");
    }
    ByteBuffer stored = map(info);
    if (type == DType.F32) {
      return stored;
    }
    int n = (int) info.numElements();
    ByteBuffer out = ByteBuffer.allocateDirect(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    widen(stored.asShortBuffer(), out.asFloatBuffer(), n, type);
    return out;
  }

  /**
   * Copies the tensor as float32 into {@code dst} (widening F16/BF16 exactly), advancing its
   * position by the element count: lets a loader reuse one buffer or fill memory it owns instead of
   * allocating a direct buffer per tensor.
   *
   * @throws CheckpointException if the tensor is missing or not F32/F16/BF16
   * @throws IllegalArgumentException if {@code dst} has fewer remaining floats than the tensor has
   *     elements
   */
  public void readFloat32(String name, FloatBuffer dst) throws IOException {
    TensorInfo info = info(name);
    DType type = requireFloat(info);
    long n = info.numElements();
    if (dst.remaining() < n) {
      throw new IllegalArgumentException(
          label
              + ": tensor "
              + name
              + " has "
              + n
              + " elements, destination has room for "
              + dst.remaining());
    }
    if (info.byteLength() > Integer.MAX_VALUE) {
      throw new CheckpointException(
          label + ": tensor " + name + " is " + info.byteLength() + " bytes, more than 2 GiB");
    }
    ByteBuffer stored = map(info);
    if (type == DType.F32) {
      dst.put(stored.asFloatBuffer());
    } else {
      widen(stored.asShortBuffer(), dst, (int) n, type);
    }
  }

  private DType requireFloat(TensorInfo info) {
    DType type = info.floatType();
    if (type == null) {
      throw new CheckpointException(
          label
              + ": tensor "
              + info.name()
              + " has dtype "
              + info.dtype()
              + "; only F32, F16 and BF16 can be read as float32");
    }
    return type;
  }

  /** Widens {@code n} F16/BF16 values from {@code src} into {@code dst}, exactly. */
  static void widen(ShortBuffer src, FloatBuffer dst, int n, DType type) {
    short[] s = new short[Math.min(n, CHUNK)];
    float[] f = new float[s.length];
    int done = 0;
    while (done < n) {
      int m = Math.min(s.length, n - done);
      src.get(s, 0, m);
      if (type == DType.BF16) {
        for (int i = 0; i < m; i++) {
          f[i] = Float.intBitsToFloat((s[i] & 0xFFFF) << 16);
        }
      } else {
        for (int i = 0; i < m; i++) {
          f[i] = FloatBits.f16ToFloat(s[i]);
        }
      }
      dst.put(f, 0, m);
      done += m;
    }
  }

  private ByteBuffer map(TensorInfo info) throws IOException {
    if (closed) {
      throw new IllegalStateException(label + ": file is closed");
    }
    return channel
        .map(FileChannel.MapMode.READ_ONLY, info.fileOffset(), info.byteLength())
        .order(ByteOrder.LITTLE_ENDIAN);
  }

  @Override
  public void close() throws IOException {
    closed = true;
    channel.close();
  }

  @Override
  public String toString() {
    return "SafetensorsFile[" + label + ", " + tensors.size() + " tensors]";
  }
}
