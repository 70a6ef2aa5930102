package io.draftmesh.engine.checkpoint;

import java.util.Locale;

/** The floating-point storage types DraftMesh reads from and writes to safetensors files. */
public enum DType {
  /** IEEE 754 binary32. */
  F32(4, "float32"),
  /** IEEE 754 binary16 (half precision). */
  F16(2, "float16"),
  /** bfloat16: the top 16 bits of a binary32. */
  BF16(2, "bfloat16");

  private final int bytes;
  private final String torchName;

  DType(int bytes, String torchName) {
    this.bytes = bytes;
    this.torchName = torchName;
  }

  /** Bytes per element. */
  public int bytes() {
    return bytes;
  }

  /** The safetensors header spelling: {@code F32}, {@code F16}, {@code BF16}. */
  public String safetensorsName() {
    return name();
  }

  /** The {@code torch_dtype} spelling used in config.json: {@code float32}, ... */
  public String torchName() {
    return torchName;
  }

  /**
   * Parses a user-facing spelling: {@code f32|float32|fp32}, {@code f16|float16|fp16|half}, {@code
   * bf16|bfloat16}, case-insensitive.
   */
  public static DType parse(String text) {
    switch (text.trim().toLowerCase(Locale.ROOT)) {
      case "f32":
      case "fp32":
      case "float32":
      case "float":
        return F32;
      case "f16":
      case "fp16":
      case "float16":
      case "half":
        return F16;
      case "bf16":
      case "bfloat16":
        return BF16;
      default:
        throw new IllegalArgumentException("dtype \"" + text + "\" (expected: f32, f16 or bf16)");
    }
  }
}
