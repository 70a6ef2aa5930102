package io.draftmesh.cli;

import io.draftmesh.engine.tokenizer.TextTokenizer;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.Provenance;
import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Prints the router's streamed text, optionally with each token's text coloured by where the token
 * came from: green = drafted and accepted, cyan = n-gram accepted, default colour = the target.
 *
 * <p>The text printed is always exactly the router's ({@code GenerateChunk.text}); colour is an
 * overlay. To know which characters belong to which token it decodes the chunk's token ids with the
 * target's tokenizer and lines the result up with the router's text (which may lag the ids:
 * held-back UTF-8 bytes or a possible stop sequence). If they ever disagree (another tokenizer,
 * text removed as a stop sequence) the rest prints uncoloured. Without a tokenizer a chunk is
 * coloured only when all its tokens share one provenance.
 */
final class ProvenancePrinter {
  static final String RESET = "\u001b[0m";
  static final String GREEN = "\u001b[32m";
  static final String CYAN = "\u001b[36m";
  static final String MAGENTA = "\u001b[35m";
  static final String YELLOW = "\u001b[33m";

  static final String LEGEND =
      "["
          + GREEN
          + "green"
          + RESET
          + " = draft accepted, "
          + CYAN
          + "cyan"
          + RESET
          + " = n-gram accepted, "
          + MAGENTA
          + "magenta"
          + RESET
          + " = aligned model's nudge, "
          + YELLOW
          + "yellow"
          + RESET
          + " = small model's span, default = target/base/large model]";

  /** Text of decoded tokens not yet matched against the router's text. */
  private record Piece(StringBuilder text, Provenance source) {}

  private final PrintStream out;
  private final boolean colour;
  private final TextTokenizer tokenizer; // null: colour per chunk
  private final Utf8Stream decoded = new Utf8Stream();
  private final Deque<Piece> pieces = new ArrayDeque<>();
  private boolean aligned = true;

  ProvenancePrinter(PrintStream out, boolean colour, TextTokenizer tokenizer) {
    this.out = out;
    this.colour = colour;
    this.tokenizer = tokenizer;
  }

  /** Whether standard output should get colours: a terminal, and NO_COLOR unset or empty. */
  static boolean colourWanted(java.util.Map<String, String> env) {
    String noColor = env.get("NO_COLOR");
    return System.console() != null && (noColor == null || noColor.isEmpty());
  }

  void print(GenerateChunk chunk) {
    String text = chunk.getText();
    if (!colour) {
      out.print(text);
      out.flush();
      return;
    }
    if (tokenizer == null) {
      out.print(paint(text, uniform(chunk)));
      out.flush();
      return;
    }
    for (int i = 0; i < chunk.getTokenIdsCount(); i++) {
      int id = chunk.getTokenIds(i);
      Provenance p =
          i < chunk.getProvenanceCount() ? chunk.getProvenance(i) : Provenance.UNRECOGNIZED;
      String piece =
          id < 0 || id >= tokenizer.vocabSize() || tokenizer.isSpecial(id)
              ? ""
              : decoded.push(tokenizer.tokenBytes(id));
      pieces.addLast(new Piece(new StringBuilder(piece), p));
    }
    StringBuilder line = new StringBuilder();
    int at = 0;
    while (at < text.length() && aligned) {
      Piece head = pieces.peekFirst();
      if (head == null) {
        aligned = false; // text the ids do not account for
        break;
      }
      if (head.text().length() == 0) {
        pieces.removeFirst();
        continue;
      }
      int n = Math.min(head.text().length(), text.length() - at);
      if (!text.regionMatches(at, head.text().toString(), 0, n)) {
        aligned = false;
        break;
      }
      line.append(paint(text.substring(at, at + n), head.source()));
      head.text().delete(0, n);
      at += n;
    }
    if (at < text.length()) {
      line.append(text, at, text.length());
    }
    out.print(line);
    out.flush();
  }

  private static Provenance uniform(GenerateChunk chunk) {
    Provenance p = null;
    for (Provenance q : chunk.getProvenanceList()) {
      if (p != null && p != q) {
        return Provenance.PROVENANCE_TARGET;
      }
      p = q;
    }
    return p == null ? Provenance.PROVENANCE_TARGET : p;
  }

  private static String paint(String text, Provenance p) {
    String code =
        switch (p) {
          case PROVENANCE_DRAFT_ACCEPTED -> GREEN;
          case PROVENANCE_NGRAM_ACCEPTED -> CYAN;
          case PROVENANCE_ALIGNED_NUDGE -> MAGENTA;
          case PROVENANCE_SMALL_SPAN -> YELLOW;
          default -> null;
        };
    return code == null || text.isEmpty() ? text : code + text + RESET;
  }
}
