package io.draftmesh.engine.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
  @TempDir Path dir;

  /** Writes length prefix + header + data; {@code declaredLength} < 0 means the true length. */
  private Path file(String name, String header, byte[] data, long declaredLength)
      throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(declaredLength < 0 ? h.length : declaredLength).put(h).put(data);
    Path p = dir.resolve(name);
    Files.write(p, b.array());
    return p;
  }

  private Path file(String name, String header, int dataBytes) throws IOException {
    return file(name, header, new byte[dataBytes], -1);
  }

  private static byte[] shortsLe(int... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      b.putShort((short) v);
    }
    return b.array();
  }

  private static float[] floats(ByteBuffer b) {
    float[] out = new float[b.remaining() / 4];
    b.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  @Test
  void readsF32ZeroCopyWithMetadata() throws IOException {
    ByteBuffer data = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 6; i++) {
      data.putFloat(i * 1.5f);
    }
    Path p =
        file(
            "ok.safetensors",
            "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
            data.array(),
            -1);
    try (SafetensorsFile f = SafetensorsFile.open(p)) {
      assertThat(f.names()).containsExactly("w");
      assertThat(f.metadata()).containsEntry("format", "pt");
      assertThat(f.info("w").shape()).containsExactly(2, 3);
      assertThat(f.info("w").dtype()).isEqualTo("F32");
      ByteBuffer b = f.readFloat32("w");
      assertThat(b.isDirect()).isTrue();
      assertThat(b.isReadOnly()).isTrue();
      assertThat(b.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
      assertThat(floats(b)).containsExactly(0f, 1.5f, 3f, 4.5f, 6f, 7.5f);
    }
  }

  @Test
  void widensBf16AndF16BitPatternsExactly() throws IOException {
    int[] bf16 = {0x3F80, 0x8000, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0xC2F7};
    int[] f16 = {0x3C00, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0x7C00, 0xFC00, 0x7E00};
    byte[] data = new byte[(bf16.length + f16.length) * 2];
    System.arraycopy(shortsLe(bf16), 0, data, 0, bf16.length * 2);
    System.arraycopy(shortsLe(f16), 0, data, bf16.length * 2, f16.length * 2);
    String header =
        "{\"b\":{\"dtype\":\"BF16\",\"shape\":[7],\"data_offsets\":[0,14]},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[14,30]}}";
    try (SafetensorsFile f = SafetensorsFile.open(file("half.safetensors", header, data, -1))) {
      ByteBuffer b = f.readFloat32("b");
      assertThat(b.isDirect()).isTrue();
      assertThat(b.order()).isEqualTo(ByteOrder.LITTLE_ENDIAN);
      assertThat(rawBits(floats(b)))
          .containsExactly(
              0x3F800000, 0x80000000, 0x00010000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xC2F70000);
      float[] h = floats(f.readFloat32("h"));
      assertThat(h[0]).isEqualTo(1.0f);
      assertThat(Float.floatToRawIntBits(h[1])).isEqualTo(0x80000000); // -0.0
      assertThat(h[2]).isEqualTo(0x1p-24f); // smallest subnormal
      assertThat(h[3]).isEqualTo(1023 * 0x1p-24f); // largest subnormal
      assertThat(h[4]).isEqualTo(65504f);
      assertThat(h[5]).isEqualTo(Float.POSITIVE_INFINITY);
      assertThat(h[6]).isEqualTo(Float.NEGATIVE_INFINITY);
      assertThat(h[7]).isNaN();
    }
  }

  private static int[] rawBits(float[] a) {
    int[] out = new int[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = Float.floatToRawIntBits(a[i]);
    }
    return out;
  }

  @Test
  void rejectsFileShorterThanTheLengthPrefix() throws IOException {
    Path p = dir.resolve("tiny.safetensors");
    Files.write(p, new byte[] {1, 2, 3});
    assertThatThrownBy(() -> SafetensorsFile.open(p))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("tiny.safetensors")
        .hasMessageContaining("3 bytes, too short");
  }

  @Test
  void rejectsHeaderLengthBeyondTheFile() throws IOException {
    Path p = file("long.safetensors", "{}", new byte[0], 1000);
    assertThatThrownBy(() -> SafetensorsFile.open(p))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("long.safetensors")
        .hasMessageContaining("header length 1000 bytes exceeds the 2 bytes");
  }

  @Test
  void rejectsHeaderLengthOver100Mb() throws IOException {
    Path p = file("huge.safetensors", "{}", new byte[0], 100_000_001L);
    assertThatThrownBy(() -> SafetensorsFile.open(p))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("huge.safetensors")
        .hasMessageContaining("header length 100000001 bytes (expected: at most 100000000)");
    // -5 read as an unsigned 64-bit length is enormous: rejected, not read.
    Path negative = dir.resolve("neg.safetensors");
    Files.write(
        negative, ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putLong(-5).array());
    assertThatThrownBy(() -> SafetensorsFile.open(negative))
        .hasMessageContaining("neg.safetensors")
        .hasMessageContaining("header length 18446744073709551611");
  }

  @Test
  void rejectsHeaderThatIsNotJson() throws IOException {
    assertThatThrownBy(() -> SafetensorsFile.open(file("garbage.safetensors", "{not json", 0)))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("garbage.safetensors")
        .hasMessageContaining("not valid JSON");
    assertThatThrownBy(() -> SafetensorsFile.open(file("array.safetensors", "[1, 2]", 0)))
        .hasMessageContaining("array.safetensors")
        .hasMessageContaining("the header must be an object, found an array");
    byte[] badUtf8 = {'{', '"', (byte) 0xC3, '"', ':', '1', '}'};
    ByteBuffer b = ByteBuffer.allocate(8 + badUtf8.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(badUtf8.length).put(badUtf8);
    Path p = dir.resolve("utf8.safetensors");
    Files.write(p, b.array());
    assertThatThrownBy(() -> SafetensorsFile.open(p))
        .hasMessageContaining("utf8.safetensors")
        .hasMessageContaining("not valid UTF-8");
    assertThatThrownBy(
            () ->
                SafetensorsFile.open(
                    file(
                        "trailing.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
                        4)))
        .hasMessageContaining("trailing.safetensors");
  }

  @Test
  void rejectsDataOffsetsOutOfRange() throws IOException {
    String header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("short.safetensors", header, 8)))
        .isInstanceOf(CheckpointException.class)
        .hasMessageContaining("short.safetensors")
        .hasMessageContaining("tensor w")
        .hasMessageContaining("data_offsets [0, 16] out of range: the data section is 8 bytes");
  }

  @Test
  void rejectsEndBeforeBegin() throws IOException {
    String header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("backwards.safetensors", header, 16)))
        .hasMessageContaining("backwards.safetensors")
        .hasMessageContaining("tensor w")
        .hasMessageContaining("end before begin");
  }

  @Test
  void rejectsOverlappingTensors() throws IOException {
    String header =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("overlap.safetensors", header, 24)))
        .hasMessageContaining("overlap.safetensors")
        .hasMessageContaining("tensors a [0, 16) and b [8, 24) overlap");
  }

  @Test
  void rejectsByteLengthThatDoesNotMatchTheShape() throws IOException {
    String header = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("size.safetensors", header, 24)))
        .hasMessageContaining("size.safetensors")
        .hasMessageContaining("tensor w")
        .hasMessageContaining("span 24 bytes, expected 12 (shape [2, 3] x BF16 2 bytes)");
  }

  @Test
  void rejectsNegativeAndNonIntegerDimensions() throws IOException {
    String negative = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2,3],\"data_offsets\":[0,0]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("neg-dim.safetensors", negative, 0)))
        .hasMessageContaining("neg-dim.safetensors")
        .hasMessageContaining("tensor w")
        .hasMessageContaining("negative dimension -2");
    String fraction = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("frac.safetensors", fraction, 4)))
        .hasMessageContaining("frac.safetensors")
        .hasMessageContaining("tensor w: shape[0] is 1.5");
    String overflow =
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("overflow.safetensors", overflow, 4)))
        .hasMessageContaining("overflow.safetensors")
        .hasMessageContaining("tensor w")
        .hasMessageContaining("more elements than fit in 64 bits");
  }

  @Test
  void rejectsMissingFieldsDuplicatesAndUnknownDtypes() throws IOException {
    assertThatThrownBy(
            () ->
                SafetensorsFile.open(
                    file("nooffsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4)))
        .hasMessageContaining("nooffsets.safetensors")
        .hasMessageContaining("tensor w has no data_offsets");
    String dup =
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("dup.safetensors", dup, 8)))
        .hasMessageContaining("dup.safetensors")
        .hasMessageContaining("names tensor w twice");
    String unknown = "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("q4.safetensors", unknown, 4)))
        .hasMessageContaining("q4.safetensors")
        .hasMessageContaining("tensor w has unknown dtype \"Q4_K\"");
    String wrongType = "{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}";
    assertThatThrownBy(() -> SafetensorsFile.open(file("type.safetensors", wrongType, 4)))
        .hasMessageContaining("type.safetensors")
        .hasMessageContaining("tensor w: dtype must be a string, found a number");
  }

  @Test
  void knownNonFloatDtypeOpensButCannotBeReadAsFloat() throws IOException {
    String header = "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
    try (SafetensorsFile f = SafetensorsFile.open(file("ints.safetensors", header, 16))) {
      assertThat(f.info("ids").dtype()).isEqualTo("I64");
      assertThatThrownBy(() -> f.readFloat32("ids"))
          .isInstanceOf(CheckpointException.class)
          .hasMessageContaining("ints.safetensors")
          .hasMessageContaining("tensor ids has dtype I64; only F32, F16 and BF16");
      assertThatThrownBy(() -> f.readFloat32("nope"))
          .hasMessageContaining("ints.safetensors")
          .hasMessageContaining("no tensor named nope");
    }
  }

  @Test
  void writerRoundTripsRepresentableValuesAndAlignsTheHeader() throws IOException {
    float[] values = {
      0f, -0f, 1f, -2.5f, 0.375f, 1024f, -65504f, 0x1p-24f, Float.POSITIVE_INFINITY
    };
    for (DType dtype : DType.values()) {
      float[] v = values.clone();
      if (dtype == DType.BF16) {
        v[6] = -65536f; // 65504 is not a bf16 value; 2^16 is
        v[7] = 0x1p-130f; // a bf16 subnormal
      }
      Path p = dir.resolve("rt-" + dtype + ".safetensors");
      new SafetensorsWriter(dtype)
          .metadata("format", "pt")
          .add("x", v, 3, 3)
          .add("empty", new float[0], 0, 5)
          .add("scalar", new float[] {7f})
          .write(p);
      byte[] raw = Files.readAllBytes(p);
      long headerLength = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong();
      assertThat((8 + headerLength) % 8).isZero();
      assertThat(raw.length).isEqualTo(8 + headerLength + 10L * dtype.bytes());
      try (SafetensorsFile f = SafetensorsFile.open(p)) {
        assertThat(f.names()).containsExactly("x", "empty", "scalar");
        assertThat(f.metadata()).containsEntry("format", "pt");
        assertThat(f.info("x").dtype()).isEqualTo(dtype.safetensorsName());
        assertThat(f.info("empty").shape()).containsExactly(0, 5);
        assertThat(f.info("scalar").shape()).isEmpty();
        assertThat(floats(f.readFloat32("x"))).as("%s", dtype).containsExactly(v);
        assertThat(floats(f.readFloat32("empty"))).isEmpty();
        assertThat(floats(f.readFloat32("scalar"))).containsExactly(7f);
      }
    }
  }

  @Test
  void writerRejectsDataThatDoesNotMatchTheShape() {
    assertThatThrownBy(() -> new SafetensorsWriter(DType.F32).add("x", new float[5], 2, 3))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("5 values, expected 6 for shape [2, 3]");
  }
}
