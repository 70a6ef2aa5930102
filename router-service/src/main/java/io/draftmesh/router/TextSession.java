package io.draftmesh.router;

import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.Truncate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What one worker session holds of a shared output text, in that worker's own tokenizer: the
 * text-exchange half of nudging, where two models with any two tokenizers write one answer.
 *
 * <p>The invariant after every {@link #syncTo}: the session holds its prompt followed by exactly
 * {@code tokenizer.encode(text)} (the canonical tokens of the output text), so the session's tokens
 * re-encode to the text and the model sees what it would see had it read the text fresh. Moving to
 * a new text keeps the longest common prefix of the old and new token lists and re-appends the
 * rest: when a boundary between the two models' pieces splits a token (one model wrote "hel", the
 * other "lo"), the last unstable token is truncated and "hello" re-appended, and nothing before it
 * is fed again. Tokens the model generated itself (a Propose) are counted with {@link #generated};
 * those the output did not keep are truncated by the next sync.
 *
 * <p>Pure bookkeeping: {@link #syncTo} returns the Truncate/Append ops to send in order, so the
 * same code runs against a real worker and in tests. Not thread-safe.
 */
final class TextSession {
  private final BpeTokenizer tokenizer;
  private final int promptLength;
  private final int maxPerAppend;
  private int[] tokens = new int[0]; // what the session holds after its prompt
  private int refed; // tokens appended again after a truncation

  /**
   * @param maxPerAppend the worker's max_tokens_per_op: longer appends are split
   */
  TextSession(BpeTokenizer tokenizer, int promptLength, int maxPerAppend) {
    this.tokenizer = tokenizer;
    this.promptLength = promptLength;
    this.maxPerAppend = maxPerAppend;
  }

  BpeTokenizer tokenizer() {
    return tokenizer;
  }

  /** The ops that bring the session to prompt + encode(text); none when it already is. */
  List<SessionRequest.Builder> syncTo(String text) {
    int[] want = tokenizer.encode(text, false);
    int common = 0;
    while (common < tokens.length && common < want.length && tokens[common] == want[common]) {
      common++;
    }
    List<SessionRequest.Builder> ops = new ArrayList<>(2);
    if (common < tokens.length) {
      ops.add(
          SessionRequest.newBuilder()
              .setTruncate(Truncate.newBuilder().setLength(promptLength + common)));
    }
    if (common < want.length) {
      int[] tail = Arrays.copyOfRange(want, common, want.length);
      ops.addAll(TargetLoop.appends(tail, maxPerAppend));
      if (common < tokens.length) {
        refed += Math.min(tail.length, tokens.length - common);
      }
    }
    tokens = want;
    return ops;
  }

  /** The model appended {@code ids} to the session itself (a Propose). */
  void generated(List<Integer> ids) {
    int[] t = Arrays.copyOf(tokens, tokens.length + ids.size());
    for (int i = 0; i < ids.size(); i++) {
      t[tokens.length + i] = ids.get(i);
    }
    tokens = t;
  }

  /** The output tokens the session holds after its prompt. */
  int[] tokens() {
    return tokens.clone();
  }

  /** Prompt plus output tokens held. */
  int length() {
    return promptLength + tokens.length;
  }

  /** Tokens fed again because a boundary split a token (for stats and tests). */
  int refed() {
    return refed;
  }
}
