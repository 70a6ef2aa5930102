package io.draftmesh.router;

import java.util.List;

/**
 * Finds stop sequences in streamed text without ever emitting part of one: text that could still
 * turn out to be the start of a stop sequence is held back until it is decided. Not thread-safe.
 */
final class StopMatcher {
  private final List<String> stops;
  private final StringBuilder pending = new StringBuilder();
  private boolean stopped;

  StopMatcher(List<String> stops) {
    this.stops = List.copyOf(stops);
  }

  /** Adds text; returns the text that can be emitted now. Check {@link #stopped()} after. */
  String push(String text) {
    if (stopped) {
      return "";
    }
    pending.append(text);
    int at = -1;
    for (String s : stops) {
      int i = pending.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
      }
    }
    if (at >= 0) {
      stopped = true;
      String out = pending.substring(0, at);
      pending.setLength(0);
      return out;
    }
    int hold = heldLength();
    String out = pending.substring(0, pending.length() - hold);
    pending.delete(0, pending.length() - hold);
    return out;
  }

  /** Whether a stop sequence matched; everything after it is dropped. */
  boolean stopped() {
    return stopped;
  }

  /** Ends the stream: text held back as a possible stop prefix is released. */
  String finish() {
    String out = stopped ? "" : pending.toString();
    pending.setLength(0);
    return out;
  }

  /** Length of the longest suffix of pending that is a proper prefix of some stop sequence. */
  private int heldLength() {
    int best = 0;
    String p = pending.toString();
    for (String s : stops) {
      int max = Math.min(s.length() - 1, p.length());
      for (int len = max; len > best; len--) {
        if (p.regionMatches(p.length() - len, s, 0, len)) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
