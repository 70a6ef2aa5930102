package io.draftmesh.zoo;

import ai.djl.ndarray.NDArray;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.draftmesh.engine.checkpoint.DType;
import io.draftmesh.engine.checkpoint.SafetensorsFile;
import io.draftmesh.engine.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A resumable training checkpoint: {@code state.safetensors} holds the weights in the model's fused
 * training layout ({@code param.i}) and the AdamW moments ({@code adam_m.i}, {@code adam_v.i}), all
 * F32; {@code state.json} holds the step, tokens seen, time spent, the batch generator's state, the
 * curves and the config it belongs to. A directory is written whole next to the old one and then
 * swapped in, so an interrupted save leaves the previous state intact.
 */
final class TrainingState {
  private static final Gson GSON = new GsonBuilder().setPrettyPrinting().create();

  int step;
  long tokens;
  double seconds;
  long optimizerSteps;
  final SplitMix64 rng;
  final List<Trainer.Point> trainCurve = new ArrayList<>();
  final List<Trainer.Point> validCurve = new ArrayList<>();

  /** Moments read from disk, handed to the optimizer once; null otherwise. */
  float[][] moments;

  TrainingState(long seed) {
    this.rng = new SplitMix64(seed);
  }

  static boolean exists(Path dir) {
    return Files.isRegularFile(dir.resolve("state.json"))
        || Files.isRegularFile(
            dir.resolveSibling(dir.getFileName() + ".old").resolve("state.json"));
  }

  /** Writes weights, moments and counters to {@code dir}, replacing what was there. */
  void write(Path dir, TrainConfig config, List<NDArray> params, float[][] moments)
      throws IOException {
    Path next = dir.resolveSibling(dir.getFileName() + ".next");
    Path old = dir.resolveSibling(dir.getFileName() + ".old");
    deleteTree(next);
    Files.createDirectories(next);
    SafetensorsWriter w = new SafetensorsWriter(DType.F32).metadata("step", Integer.toString(step));
    for (int i = 0; i < params.size(); i++) {
      NDArray p = params.get(i);
      long[] shape = p.getShape().getShape();
      w.add("param." + i, p.toFloatArray(), shape);
      w.add("adam_m." + i, moments[2 * i], shape);
      w.add("adam_v." + i, moments[2 * i + 1], shape);
    }
    w.write(next.resolve("state.safetensors"));
    JsonObject json = new JsonObject();
    json.addProperty("step", step);
    json.addProperty("tokens", tokens);
    json.addProperty("seconds", seconds);
    json.addProperty("optimizer_steps", optimizerSteps);
    json.addProperty("rng_state", rng.state());
    json.add("config", GSON.toJsonTree(config.flags()));
    json.add("train_curve", GSON.toJsonTree(trainCurve));
    json.add("valid_curve", GSON.toJsonTree(validCurve));
    Files.writeString(next.resolve("state.json"), GSON.toJson(json) + "\n", StandardCharsets.UTF_8);
    deleteTree(old);
    if (Files.exists(dir)) {
      Files.move(dir, old, StandardCopyOption.ATOMIC_MOVE);
    }
    Files.move(next, dir, StandardCopyOption.ATOMIC_MOVE);
    deleteTree(old);
  }

  /**
   * Reads a state {@link #write} left, copies the weights into {@code params} (call before they
   * require gradients) and keeps the moments for the optimizer.
   *
   * <p>The step count (and with it the schedule lengths, {@link #SCHEDULE_KEYS}) may differ: a run
   * can be re-planned when the machine turns out slower or faster than expected; from the saved
   * step on, the learning rate follows the new schedule.
   *
   * @throws IllegalArgumentException if the state belongs to a different config, or to a later step
   *     than the new step count
   */
  /** Flags a resumed run may change: how long it runs and how often it evaluates and saves. */
  static final java.util.List<String> SCHEDULE_KEYS =
      java.util.List.of("steps", "warmup", "eval-every", "save-every");

  static TrainingState read(Path dir, TrainConfig config, List<NDArray> params) throws IOException {
    if (!Files.isRegularFile(dir.resolve("state.json"))) {
      dir = dir.resolveSibling(dir.getFileName() + ".old"); // interrupted between the two moves
    }
    JsonObject json =
        JsonParser.parseString(Files.readString(dir.resolve("state.json"))).getAsJsonObject();
    JsonObject saved = json.getAsJsonObject("config");
    JsonObject now = GSON.toJsonTree(config.flags()).getAsJsonObject();
    JsonObject savedFixed = saved.deepCopy();
    JsonObject nowFixed = now.deepCopy();
    for (String key : SCHEDULE_KEYS) {
      savedFixed.remove(key);
      nowFixed.remove(key);
    }
    if (!savedFixed.equals(nowFixed)) {
      throw new IllegalArgumentException(
          dir + " was written for another config (saved " + saved + ", now " + now + ")");
    }
    TrainingState s = new TrainingState(config.seed());
    s.step = json.get("step").getAsInt();
    if (s.step > config.steps()) {
      throw new IllegalArgumentException(
          dir + " is at step " + s.step + " (expected: <= --steps " + config.steps() + ")");
    }
    s.tokens = json.get("tokens").getAsLong();
    s.seconds = json.get("seconds").getAsDouble();
    s.optimizerSteps = json.get("optimizer_steps").getAsLong();
    s.rng.setState(json.get("rng_state").getAsLong());
    s.trainCurve.addAll(
        Arrays.asList(GSON.fromJson(json.get("train_curve"), Trainer.Point[].class)));
    s.validCurve.addAll(
        Arrays.asList(GSON.fromJson(json.get("valid_curve"), Trainer.Point[].class)));
    s.moments = new float[2 * params.size()][];
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("state.safetensors"))) {
      for (int i = 0; i < params.size(); i++) {
        NDArray p = params.get(i);
        float[] values = floats(f, "param." + i);
        if (values.length != p.size()) {
          throw new IllegalArgumentException(
              dir
                  + ": param."
                  + i
                  + " has "
                  + values.length
                  + " values (expected: "
                  + p.size()
                  + ")");
        }
        p.set(values);
        s.moments[2 * i] = floats(f, "adam_m." + i);
        s.moments[2 * i + 1] = floats(f, "adam_v." + i);
      }
    }
    return s;
  }

  private static float[] floats(SafetensorsFile f, String name) throws IOException {
    ByteBuffer b = f.readFloat32(name).duplicate().order(ByteOrder.LITTLE_ENDIAN);
    FloatBuffer fb = b.asFloatBuffer();
    float[] out = new float[fb.remaining()];
    fb.get(out);
    return out;
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
