package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.draftmesh.assembly.Mesh;
import io.draftmesh.engine.checkpoint.RandomCheckpoint;
import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.RouterGrpc;
import io.draftmesh.proto.v1.Strategy;
import io.grpc.ManagedChannel;
import io.opentelemetry.api.OpenTelemetry;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code generate --router} against a mesh whose draft serves the target's own checkpoint (every
 * draft token is accepted, so provenance is mixed): the printed text is the router's text.
 */
class RouterGenerateIT {
  static final String PROMPT = "Once upon a time";

  @TempDir static Path dir;
  static Path model;
  static Mesh mesh;

  @BeforeAll
  static void start() throws Exception {
    model = dir.resolve("tiny");
    GenCheckpointCommand.ensure(model, RandomCheckpoint.tinyLlama(), 3L);
    mesh =
        Mesh.start(
            Mesh.Spec.builder(model, model).kvBudgets(8, 8).limits(512, 16).drainSeconds(1).build(),
            OpenTelemetry.noop());
  }

  @AfterAll
  static void stop() {
    if (mesh != null) {
      mesh.close();
    }
  }

  private static String[] args(String strategy) {
    return new String[] {
      "--router",
      mesh.routerAddress(),
      "--prompt",
      PROMPT,
      "--strategy",
      strategy,
      "--k",
      "3",
      "--max-tokens",
      "24",
      "--ignore-eos"
    };
  }

  /** The router's own chunks for the request {@code args} describe. */
  private static List<GenerateChunk> direct(String[] args) throws InterruptedException {
    GenerateRequest request =
        RouterGenerate.request(Args.parse(args, RouterGenerate.FLAGS, RouterGenerate.BOOLEANS));
    ManagedChannel ch = GenerateCommand.channel(mesh.routerAddress(), OpenTelemetry.noop());
    try {
      List<GenerateChunk> chunks = new ArrayList<>();
      RouterGrpc.newBlockingStub(ch)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
          .generate(request)
          .forEachRemaining(chunks::add);
      return chunks;
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static String text(List<GenerateChunk> chunks) {
    StringBuilder sb = new StringBuilder();
    chunks.forEach(c -> sb.append(c.getText()));
    return sb.toString();
  }

  @Test
  void printsTheRoutersTextWithoutColoursWhenNotATerminal() throws Exception {
    for (String strategy : List.of("speculative", "autoregressive", "ngram")) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteArrayOutputStream err = new ByteArrayOutputStream();
      int rc =
          Main.run(
              concat("generate", args(strategy)),
              Map.of(),
              new PrintStream(out, true, StandardCharsets.UTF_8),
              new PrintStream(err, true, StandardCharsets.UTF_8));
      String stderr = err.toString(StandardCharsets.UTF_8);
      assertThat(rc).as(stderr).isZero();
      List<GenerateChunk> chunks = direct(args(strategy));
      String routerText = text(chunks);
      assertThat(routerText).as(strategy).isNotEmpty();
      String printed = out.toString(StandardCharsets.UTF_8);
      assertThat(printed).as(strategy).isEqualTo(PROMPT + routerText + System.lineSeparator());
      assertThat(printed).doesNotContain("\u001b");
      assertThat(stderr)
          .as(strategy)
          .contains("24 tokens", "first after", "tokens/s", "target calls", "finish length")
          .doesNotContain("\u001b");
      if (!strategy.equals("autoregressive")) {
        assertThat(stderr).contains("acceptance", "mean accepted length", "rounds");
      }
    }
    assertThat(
            RouterGenerate.request(
                    Args.parse(args("ngram"), RouterGenerate.FLAGS, RouterGenerate.BOOLEANS))
                .getStrategy())
        .isEqualTo(Strategy.STRATEGY_NGRAM);
  }

  @Test
  void coloursEachTokensTextByProvenanceAndKeepsTheText() throws Exception {
    List<GenerateChunk> chunks = direct(args("speculative"));
    assertThat(chunks.stream().flatMap(c -> c.getProvenanceList().stream()))
        .contains(Provenance.PROVENANCE_DRAFT_ACCEPTED, Provenance.PROVENANCE_TARGET);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    try (TextTokenizer tokenizer = TextTokenizer.load(model.resolve("tokenizer.json"))) {
      ProvenancePrinter printer = new ProvenancePrinter(out, true, tokenizer);
      chunks.forEach(printer::print);
    }
    String coloured = bytes.toString(StandardCharsets.UTF_8);
    assertThat(coloured).contains(ProvenancePrinter.GREEN, ProvenancePrinter.RESET);
    assertThat(coloured.replaceAll("\u001b\\[[0-9;]*m", "")).isEqualTo(text(chunks));

    // Token by token: a draft-accepted token's text is green, the target's is not.
    ByteArrayOutputStream one = new ByteArrayOutputStream();
    try (TextTokenizer tokenizer = TextTokenizer.load(model.resolve("tokenizer.json"))) {
      int a = tokenizer.encode("a", false)[0];
      int b = tokenizer.encode("b", false)[0];
      String ta = new String(tokenizer.tokenBytes(a), StandardCharsets.UTF_8);
      String tb = new String(tokenizer.tokenBytes(b), StandardCharsets.UTF_8);
      new ProvenancePrinter(new PrintStream(one, true, StandardCharsets.UTF_8), true, tokenizer)
          .print(
              GenerateChunk.newBuilder()
                  .setText(ta + tb)
                  .addTokenIds(a)
                  .addTokenIds(b)
                  .addProvenance(Provenance.PROVENANCE_NGRAM_ACCEPTED)
                  .addProvenance(Provenance.PROVENANCE_TARGET)
                  .build());
      assertThat(one.toString(StandardCharsets.UTF_8))
          .isEqualTo(ProvenancePrinter.CYAN + ta + ProvenancePrinter.RESET + tb);
    }
  }

  @Test
  void noColourWithNoColorOrWithoutATerminal() {
    assertThat(ProvenancePrinter.colourWanted(Map.of("NO_COLOR", "1"))).isFalse();
    // Tests run without a console: never coloured.
    assertThat(ProvenancePrinter.colourWanted(Map.of())).isEqualTo(System.console() != null);
  }

  @Test
  void aRouterErrorIsReportedWithItsStatus() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    String[] a = args("speculative");
    a[a.length - 2] = "100000"; // --max-tokens beyond the router's limit (8192)
    int rc =
        Main.run(
            concat("generate", a),
            Map.of(),
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8));
    assertThat(rc).isEqualTo(1);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("INVALID_ARGUMENT", "max_tokens");
  }

  private static String[] concat(String first, String[] rest) {
    String[] all = new String[rest.length + 1];
    all[0] = first;
    System.arraycopy(rest, 0, all, 1, rest.length);
    return all;
  }
}
