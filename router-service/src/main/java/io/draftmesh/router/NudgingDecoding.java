package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Propose;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.Score;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.router.WorkerSession.WorkerFailure;
import io.grpc.Status;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * STRATEGY_NUDGING (Fei et al., papers.md §3; the rule is {@link NudgingRule}): a base model (the
 * target pool, a plain-text prompt) and an aligned model (any pool, its own chat-template prompt)
 * write one answer, exchanging text, not token ids, so any two tokenizers work.
 *
 * <p>A round: the aligned model, synced to the output text, proposes a chunk; the chunk's words are
 * offered to the base one by one (each check is an Append of the word's tokens and a Score of no
 * new tokens, so the base feeds every word once); at the take-over word the base writes on with
 * Propose until its top-1 probability falls below γ. Each session follows the output through {@link
 * TextSession} in its own tokenizer: new text is appended, a token split by a boundary is truncated
 * and re-appended, nothing else is fed again.
 *
 * <p>Pieces end on whole UTF-8 characters (byte-level tokens can split one), so the text both sides
 * read is always valid. Output ids are the base tokenizer's: the base's own tokens for its pieces,
 * the base tokenizer's encoding of the aligned model's pieces, so the ids decode to the output text
 * exactly.
 *
 * <p>The aligned model is a helper: when it fails or misses its deadline, it is dropped and the
 * base writes the rest on its own from exactly the text already streamed (stats say so).
 */
final class NudgingDecoding implements DecodingStrategy {
  private static final Logger log = LoggerFactory.getLogger(NudgingDecoding.class);

  /** Further Proposes for a chunk that ends inside its first character (4 bytes at most). */
  private static final int MAX_EXTENSIONS = 3;

  private final DecodingPlan plan;
  private final DecodingPlan.Settings settings;
  private final WorkerSession base;
  private final ModelInfo baseInfo;
  private final TextSession baseText;
  private WorkerSession aligned; // null once dropped
  private final ModelInfo alignedInfo;
  private final TextSession alignedText;
  private final TokenStream out;
  private final RunStats stats;
  private final float gamma;
  private final StringBuilder output = new StringBuilder();
  private Provenance writer;
  private Duration alignedWait;

  NudgingDecoding(
      DecodingPlan plan,
      DecodingPlan.Settings settings,
      WorkerSession base,
      ModelInfo baseInfo,
      BpeTokenizer baseTokenizer,
      WorkerSession aligned,
      ModelInfo alignedInfo,
      BpeTokenizer alignedTokenizer,
      TokenStream out,
      RunStats stats) {
    this.plan = plan;
    this.settings = settings;
    this.base = base;
    this.baseInfo = baseInfo;
    this.baseText =
        new TextSession(baseTokenizer, plan.prompt().length, baseInfo.getMaxTokensPerOp());
    this.aligned = aligned;
    this.alignedInfo = alignedInfo;
    this.alignedText =
        alignedTokenizer == null
            ? null
            : new TextSession(
                alignedTokenizer,
                plan.nudging().alignedPrompt().length,
                alignedInfo.getMaxTokensPerOp());
    this.out = out;
    this.stats = stats;
    this.gamma = plan.nudging().gamma();
  }

  @Override
  public void run() {
    long t0 = System.nanoTime();
    var baseOpen = base.send(TargetLoop.open(plan, plan.prompt(), plan.targetSampling()));
    if (aligned != null) {
      aligned.send(TargetLoop.open(plan, plan.nudging().alignedPrompt(), plan.draftSampling()));
    }
    SessionResponse opened = base.await(baseOpen, settings.targetTimeout(), "open");
    long openNanos = System.nanoTime() - t0;
    stats.targetNanos += openNanos;
    stats.targetCalls++;
    stats.targetOpened(plan.prompt().length, opened.getOpened());
    alignedWait = settings.draftTimeout().plusNanos(openNanos);
    NudgingRule.Repeats repeats = new NudgingRule.Repeats();
    while (!out.finished()) {
      if (aligned == null) {
        baseAlone();
        return;
      }
      Chunk chunk = alignedChunk();
      if (chunk == null) {
        continue; // the aligned model was dropped
      }
      stats.nudgingRounds++;
      if (chunk.ended) {
        commitAligned(chunk);
        streamEnd(chunk.endToken);
        out.finish(FinishReason.FINISH_REASON_EOS);
        return;
      }
      NudgingRule.Words words = NudgingRule.split(chunk.text);
      // No take-over: every word but the last, which the chunk's end may have cut (one word: all).
      int j = Math.max(1, words.size() - 1);
      Position takeOver = null;
      for (int w = 1; w < words.size(); w++) {
        if (words.words().get(w).isEmpty()) {
          continue; // a run of spaces: the reference skips the empty word
        }
        Position p = baseAt(output + words.prefix(w));
        if (p == null) {
          break; // the base's context is full
        }
        BpeTokenizer tok = baseText.tokenizer();
        String tokenText =
            tok.isSpecial(p.getTokenId())
                ? ""
                : new String(tok.tokenBytes(p.getTokenId()), StandardCharsets.UTF_8);
        if (NudgingRule.takesOver(words.word(w), tokenText, p.getArgmaxProb(), gamma)) {
          j = w;
          takeOver = p;
          break;
        }
      }
      String nudge = words.prefix(j);
      if (repeats.stop(nudge)) {
        out.finish(FinishReason.FINISH_REASON_STOP);
        return;
      }
      commitAligned(chunk.slice(nudge.length()));
      if (takeOver != null && !out.finished()) {
        baseRun(takeOver);
      }
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  /** What the aligned model proposed: text on whole characters, and its entropy per character. */
  private record Chunk(String text, float[] entropy, boolean ended, int endToken) {
    Chunk slice(int chars) {
      return new Chunk(
          text.substring(0, chars), java.util.Arrays.copyOf(entropy, chars), ended, endToken);
    }
  }

  /**
   * The aligned model's next chunk, or null when it failed and was dropped. A chunk that holds no
   * whole character yet (its tokens end inside one: byte-level tokens split characters) is extended
   * by further Proposes, up to {@link #MAX_EXTENSIONS}.
   */
  private Chunk alignedChunk() {
    long t0 = System.nanoTime();
    List<SessionRequest.Builder> sync = alignedText.syncTo(output.toString());
    BpeTokenizer tok = alignedText.tokenizer();
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    List<Float> byteEntropy = new ArrayList<>();
    boolean ended = false;
    int endToken = -1;
    int whole = 0;
    for (int attempt = 0; attempt <= MAX_EXTENSIONS && whole == 0 && !ended; attempt++) {
      int room = alignedInfo.getMaxContext() - alignedText.length() - 1;
      int k =
          Math.min(
              Math.min(plan.nudging().chunkTokens(), Math.max(1, alignedInfo.getMaxTokensPerOp())),
              room);
      if (k < 1) {
        dropAligned("the aligned model's context is full");
        return null;
      }
      SessionResponse r;
      try {
        for (SessionRequest.Builder op : sync) {
          aligned.send(op);
        }
        sync = List.of();
        r =
            aligned.call(
                SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k)),
                alignedWait,
                "propose");
      } catch (WorkerFailure e) {
        stats.draftNanos += System.nanoTime() - t0;
        if (e.callerGone()) {
          throw e;
        }
        log.warn("request {}: aligned model: {}", plan.label(), e.getMessage());
        dropAligned(reason("aligned model", alignedInfo, e));
        return null;
      }
      stats.draftCalls++;
      alignedWait = settings.draftTimeout();
      Proposed p = r.getProposed();
      alignedText.generated(p.getTokenIdsList());
      ended = p.getTokenIdsCount() == 0;
      for (int i = 0; i < p.getTokenIdsCount(); i++) {
        int id = p.getTokenIds(i);
        if (tok.isSpecial(id)) {
          ended = true; // its end-of-reply (or any special token): the answer is complete
          endToken = id;
          break;
        }
        byte[] b = tok.tokenBytes(id);
        bytes.writeBytes(b);
        float h = TargetLoop.entropyAt(p.getPositionsList(), i);
        for (int x = 0; x < b.length; x++) {
          byteEntropy.add(h);
        }
      }
      whole = completeUtf8Prefix(bytes.toByteArray(), bytes.size());
    }
    stats.draftNanos += System.nanoTime() - t0;
    byte[] all = bytes.toByteArray();
    if (ended) {
      whole = all.length;
    }
    String text = new String(all, 0, whole, StandardCharsets.UTF_8);
    // One entropy per char: that of the token holding the char's first byte.
    float[] perChar = new float[text.length()];
    int at = 0;
    for (int c = 0; c < text.length(); c++) {
      perChar[c] = at < byteEntropy.size() ? byteEntropy.get(at) : Float.NaN;
      int cp = text.codePointAt(c);
      int n = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
      at += n;
      if (Character.isSupplementaryCodePoint(cp)) {
        c++;
        if (c < perChar.length) {
          perChar[c] = perChar[c - 1];
        }
      }
    }
    return new Chunk(text, perChar, ended, endToken);
  }

  /** The base's prediction after {@code text} (Append of what it lacks, Score of no tokens). */
  private Position baseAt(String text) {
    List<SessionRequest.Builder> ops = baseText.syncTo(text);
    if (baseText.length() >= baseInfo.getMaxContext()) {
      return null;
    }
    long t0 = System.nanoTime();
    for (SessionRequest.Builder op : ops) {
      base.send(op);
    }
    SessionResponse r =
        base.call(
            SessionRequest.newBuilder().setScore(Score.getDefaultInstance()),
            settings.targetTimeout(),
            "score");
    stats.targetNanos += System.nanoTime() - t0;
    stats.targetCalls++;
    return r.getScored().getPositions(0);
  }

  /**
   * The base writes from the take-over: its first token always, then on while its top-1 probability
   * stays at or above γ, never past a special token (its end of text: the aligned model then nudges
   * again, as in the reference).
   */
  private void baseRun(Position first) {
    BpeTokenizer tok = baseText.tokenizer();
    if (tok.isSpecial(first.getTokenId())) {
      return;
    }
    List<Integer> ids = new ArrayList<>();
    List<Float> entropy = new ArrayList<>();
    ids.add(first.getTokenId());
    entropy.add(first.getEntropyBits());
    // The session is synced to the output; the take-over token goes in first.
    for (SessionRequest.Builder op : baseText.syncTo(output.toString())) {
      base.send(op);
    }
    base.send(TargetLoop.append(new int[] {first.getTokenId()}));
    baseText.generated(List.of(first.getTokenId()));
    boolean going = true;
    while (going && ids.size() < out.remaining()) {
      int room = baseInfo.getMaxContext() - baseText.length() - 1;
      int k =
          Math.min(
              Math.min(plan.nudging().chunkTokens(), Math.max(1, baseInfo.getMaxTokensPerOp())),
              Math.min(room, out.remaining() - ids.size()));
      if (k < 1) {
        break;
      }
      long t0 = System.nanoTime();
      SessionResponse r =
          base.call(
              SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k)),
              settings.targetTimeout(),
              "propose");
      stats.targetNanos += System.nanoTime() - t0;
      stats.targetCalls++;
      Proposed p = r.getProposed();
      baseText.generated(p.getTokenIdsList());
      float[] top1 = new float[p.getTokenIdsCount()];
      int specialAt = top1.length;
      for (int i = 0; i < top1.length; i++) {
        top1[i] = i < p.getPositionsCount() ? p.getPositions(i).getArgmaxProb() : 0f;
        if (tok.isSpecial(p.getTokenIds(i)) && specialAt == top1.length) {
          specialAt = i;
        }
      }
      int keep = Math.min(NudgingRule.baseRun(top1, gamma), specialAt);
      for (int i = 0; i < keep; i++) {
        ids.add(p.getTokenIds(i));
        entropy.add(TargetLoop.entropyAt(p.getPositionsList(), i));
      }
      going = keep == top1.length && top1.length > 0;
    }
    // Keep whole characters: drop trailing tokens that end inside one.
    int n = ids.size();
    while (n > 0 && !endsOnCharacter(ids, n)) {
      n--;
    }
    if (n == 0) {
      return;
    }
    switchTo(Provenance.PROVENANCE_BASE);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    for (int i = 0; i < n; i++) {
      if (!out.accept(ids.get(i), Provenance.PROVENANCE_BASE, entropy.get(i))) {
        break;
      }
      bytes.writeBytes(tok.tokenBytes(ids.get(i)));
    }
    String piece = bytes.toString(StandardCharsets.UTF_8);
    output.append(piece);
    out.flush();
  }

  /** Streams an aligned piece as the base tokenizer's tokens of its text. */
  private void commitAligned(Chunk piece) {
    if (piece.text.isEmpty()) {
      return;
    }
    switchTo(Provenance.PROVENANCE_ALIGNED_NUDGE);
    BpeTokenizer tok = baseText.tokenizer();
    int[] ids = tok.encode(piece.text, false);
    int chars = 0; // where the token starts in the piece, for its entropy
    for (int id : ids) {
      float h = chars < piece.entropy.length ? piece.entropy[chars] : Float.NaN;
      if (!out.accept(id, Provenance.PROVENANCE_ALIGNED_NUDGE, h)) {
        break;
      }
      chars += new String(tok.tokenBytes(id), StandardCharsets.UTF_8).length();
    }
    output.append(piece.text);
    out.flush();
  }

  /**
   * Streams the aligned model's end-of-reply token (e.g. {@code <|end|>}) when the base tokenizer
   * has the same special token and it is not the base's own end of sequence, so a client sees the
   * reply end as it would from the aligned model alone (template checks rely on it).
   */
  private void streamEnd(int alignedEnd) {
    if (alignedEnd < 0 || out.finished()) {
      return;
    }
    String content =
        new String(alignedText.tokenizer().tokenBytes(alignedEnd), StandardCharsets.UTF_8);
    BpeTokenizer tok = baseText.tokenizer();
    int[] ids = tok.encode(content, false);
    if (ids.length == 1 && tok.isSpecial(ids[0]) && ids[0] != baseInfo.getEosTokenId()) {
      switchTo(Provenance.PROVENANCE_ALIGNED_NUDGE);
      out.accept(ids[0], Provenance.PROVENANCE_ALIGNED_NUDGE, Float.NaN);
    }
  }

  /** The base writes alone: the aligned model is gone. */
  private void baseAlone() {
    for (SessionRequest.Builder op : baseText.syncTo(output.toString())) {
      base.send(op);
    }
    switchTo(Provenance.PROVENANCE_BASE);
    int arK = 1;
    while (!out.finished()) {
      int room = baseInfo.getMaxContext() - baseText.length();
      int k =
          Math.min(
              Math.min(arK, Math.max(1, baseInfo.getMaxTokensPerOp())),
              Math.min(room, out.remaining()));
      if (k < 1) {
        break;
      }
      arK = Math.min(arK * 2, settings.arChunk());
      long t0 = System.nanoTime();
      SessionResponse r =
          base.call(
              SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(k)),
              settings.targetTimeout(),
              "propose");
      stats.targetNanos += System.nanoTime() - t0;
      stats.targetCalls++;
      Proposed p = r.getProposed();
      baseText.generated(p.getTokenIdsList());
      for (int i = 0; i < p.getTokenIdsCount(); i++) {
        if (!out.accept(
            p.getTokenIds(i),
            Provenance.PROVENANCE_BASE,
            TargetLoop.entropyAt(p.getPositionsList(), i))) {
          break;
        }
      }
      out.flush();
    }
    out.finish(FinishReason.FINISH_REASON_LENGTH);
  }

  private void switchTo(Provenance to) {
    if (writer != to) {
      out.switchTo(to, 0f);
      writer = to;
    }
  }

  /** Why a helper was dropped, without its address (public errors never name internal hosts). */
  static String reason(String what, ModelInfo info, WorkerFailure e) {
    Status.Code code = e.status().getCode();
    return what
        + " "
        + info.getModelId()
        + (code == Status.Code.DEADLINE_EXCEEDED ? " did not answer in time" : " failed: " + code);
  }

  private void dropAligned(String reason) {
    log.warn("request {}: continuing without the aligned model: {}", plan.label(), reason);
    stats.fallback = true;
    stats.fallbackReason = reason == null ? "aligned model failed" : reason;
    if (aligned != null) {
      aligned.cancel("router dropped the aligned model: " + stats.fallbackReason);
    }
    aligned = null;
  }

  private boolean endsOnCharacter(List<Integer> ids, int n) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (int i = 0; i < n; i++) {
      b.writeBytes(baseText.tokenizer().tokenBytes(ids.get(i)));
    }
    byte[] all = b.toByteArray();
    return completeUtf8Prefix(all, all.length) == all.length;
  }

  /**
   * The length of the longest prefix of {@code b[0, n)} that does not end inside a UTF-8 character
   * (invalid bytes count as whole characters, as a decoder replaces them).
   */
  static int completeUtf8Prefix(byte[] b, int n) {
    int cont = 0;
    while (cont < 3 && cont < n && (b[n - 1 - cont] & 0xC0) == 0x80) {
      cont++;
    }
    int leadAt = n - 1 - cont;
    if (leadAt < 0) {
      return n; // continuation bytes only: invalid, each decodes to U+FFFD
    }
    int lead = b[leadAt] & 0xFF;
    int need = lead < 0xC0 || lead >= 0xF8 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    return cont + 1 >= need ? n : leadAt;
  }
}
