package io.draftmesh.router;

import io.draftmesh.proto.v1.FinishReason;
import io.draftmesh.proto.v1.GenerateChunk;
import io.draftmesh.proto.v1.Provenance;
import io.draftmesh.proto.v1.SwitchEvent;
import io.draftmesh.proto.v1.Usage;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The output side of a generation: takes accepted tokens one at a time, applies the stop conditions
 * (end-of-sequence, stop sequences, max tokens) and batches what may be streamed into chunks.
 *
 * <p>Tokens are offered one by one, so a verify round that accepted more than the request may have
 * (past max_tokens, past a stop sequence, past EOS) never streams the excess: {@link #accept}
 * returns false at the first token that ends the generation, and later ones are refused.
 *
 * <p>Text goes through {@link Utf8Stream} (a character split across tokens waits for its last byte)
 * and {@link StopMatcher} (text that may start a stop sequence waits until decided), so text may
 * lag token ids. The token that completes a stop sequence is streamed as an id, but none of the
 * stop text is. The EOS token is not streamed. Special tokens stream as ids without text.
 */
final class TokenStream {
  private final Consumer<GenerateChunk> sink;
  private final BpeTokenizer tokenizer; // null: ids only
  private final StopMatcher stops; // null: none
  private final Utf8Stream utf8 = new Utf8Stream();
  private final int maxTokens;
  private final int eosId;
  private final boolean ignoreEos;
  private final int promptTokens;
  private final RunStats stats;

  private final List<Integer> ids = new ArrayList<>();
  private final List<Provenance> provenance = new ArrayList<>();
  private final List<String> tokenText = new ArrayList<>();
  private final List<Float> entropyBits = new ArrayList<>();
  private final List<SwitchEvent> switches = new ArrayList<>();
  private boolean spanStarted;
  private final StringBuilder text = new StringBuilder();
  private int completion;
  private FinishReason reason;
  private boolean finalSent;

  TokenStream(
      Consumer<GenerateChunk> sink,
      BpeTokenizer tokenizer,
      List<String> stopSequences,
      int maxTokens,
      int eosId,
      boolean ignoreEos,
      int promptTokens,
      RunStats stats) {
    this.sink = sink;
    this.tokenizer = tokenizer;
    this.stops = stopSequences.isEmpty() ? null : new StopMatcher(stopSequences);
    this.maxTokens = maxTokens;
    this.eosId = eosId;
    this.ignoreEos = ignoreEos;
    this.promptTokens = promptTokens;
    this.stats = stats;
  }

  /**
   * Offers the next token of the sequence; returns whether generation goes on. Once it has returned
   * false every later token is refused.
   */
  boolean accept(int token, Provenance source, float entropy) {
    if (reason != null) {
      return false;
    }
    if (token == eosId && !ignoreEos) {
      reason = FinishReason.FINISH_REASON_EOS;
      return false;
    }
    ids.add(token);
    provenance.add(source);
    entropyBits.add(entropy);
    tokenText.add(
        tokenizer == null || tokenizer.isSpecial(token)
            ? ""
            : new String(tokenizer.tokenBytes(token), java.nio.charset.StandardCharsets.UTF_8));
    completion++;
    stats.wrote(source);
    if (tokenizer != null) {
      String t = tokenizer.isSpecial(token) ? "" : utf8.push(tokenizer.tokenBytes(token));
      if (stops != null) {
        t = stops.push(t);
      }
      text.append(t);
      if (stops != null && stops.stopped()) {
        reason = FinishReason.FINISH_REASON_STOP;
        return false;
      }
    }
    if (completion >= maxTokens) {
      reason = FinishReason.FINISH_REASON_LENGTH;
      return false;
    }
    return true;
  }

  /**
   * Records that from the next accepted token on, {@code to} writes (approximate strategies);
   * streamed with the next chunk. The first call marks who starts; each later one is a switch.
   */
  void switchTo(Provenance to, float rollingEntropyBits) {
    if (reason != null) {
      return;
    }
    if (spanStarted) {
      stats.switches++;
    }
    spanStarted = true;
    switches.add(
        SwitchEvent.newBuilder()
            .setAtToken(completion)
            .setTo(to)
            .setRollingEntropyBits(rollingEntropyBits)
            .build());
  }

  /** Whether a stop condition was met. */
  boolean finished() {
    return reason != null;
  }

  int completionTokens() {
    return completion;
  }

  /** Tokens that may still be streamed before max_tokens ends the generation. */
  int remaining() {
    return maxTokens - completion;
  }

  /** Streams what was accepted since the last chunk, if anything. */
  void flush() {
    if (ids.isEmpty() && text.length() == 0 && switches.isEmpty()) {
      return;
    }
    sink.accept(chunk().build());
  }

  /**
   * Streams the last chunk: held-back text (unless a stop sequence matched), usage, and the finish
   * reason, which is {@code otherwise} when no stop condition was met (e.g. a full context).
   */
  void finish(FinishReason otherwise) {
    if (finalSent) {
      return;
    }
    if (reason == null) {
      reason = otherwise;
    }
    if (tokenizer != null && reason != FinishReason.FINISH_REASON_STOP) {
      String tail = utf8.finish();
      if (stops != null) {
        tail = stops.push(tail);
        if (!stops.stopped()) {
          tail += stops.finish();
        }
      }
      text.append(tail);
    }
    finalSent = true;
    sink.accept(
        chunk()
            .setFinishReason(reason)
            .setUsage(
                Usage.newBuilder().setPromptTokens(promptTokens).setCompletionTokens(completion))
            .build());
  }

  private GenerateChunk.Builder chunk() {
    GenerateChunk.Builder b =
        GenerateChunk.newBuilder()
            .setText(text.toString())
            .addAllTokenIds(ids)
            .addAllProvenance(provenance)
            .addAllTokenText(tokenText)
            .addAllEntropyBits(entropyBits)
            .addAllSwitches(switches)
            .setStats(stats.toProto());
    switches.clear();
    ids.clear();
    provenance.clear();
    tokenText.clear();
    entropyBits.clear();
    text.setLength(0);
    return b;
  }
}
