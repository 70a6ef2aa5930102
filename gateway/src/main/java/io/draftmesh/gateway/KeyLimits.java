package io.draftmesh.gateway;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;

/**
 * Per-key limits, shared by the gRPC and HTTP APIs: at most {@code maxConcurrent} streams at once,
 * and a token bucket on completion tokens ({@code tokensPerMinute} refilled continuously, up to
 * {@code burst}).
 *
 * <p>A request is admitted while the key's bucket is positive; the tokens it streams are charged as
 * they arrive, so a long generation may take the bucket below zero, and the key then waits until
 * the debt is refilled. Over either limit a request gets RESOURCE_EXHAUSTED (HTTP 429) with the
 * seconds to wait.
 */
final class KeyLimits {
  private final int maxConcurrent;
  private final double tokensPerNano; // 0 = no token limit
  private final long burst;
  private final LongSupplier nanoTime;
  private final ConcurrentHashMap<String, KeyState> keys = new ConcurrentHashMap<>();

  KeyLimits(int maxConcurrent, int tokensPerMinute, int burst, LongSupplier nanoTime) {
    this.maxConcurrent = maxConcurrent;
    this.tokensPerNano = tokensPerMinute / (double) TimeUnit.MINUTES.toNanos(1);
    this.burst = burst;
    this.nanoTime = nanoTime;
  }

  static KeyLimits of(GatewayConfig config) {
    return new KeyLimits(
        config.maxConcurrentPerKey(),
        config.tokensPerMinutePerKey(),
        config.tokenBurst(),
        System::nanoTime);
  }

  /** One admitted request: charge its tokens, close it when it ends (idempotent). */
  interface Lease extends AutoCloseable {
    void charge(int tokens);

    @Override
    void close();
  }

  /**
   * Admits one request of {@code caller}, or throws RESOURCE_EXHAUSTED naming the limit.
   *
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED
   */
  Lease acquire(ApiKeys.Caller caller) {
    KeyState k = keys.computeIfAbsent(caller.id(), id -> new KeyState());
    synchronized (k) {
      if (k.running >= maxConcurrent) {
        throw Errors.limited(
            "requests",
            1,
            "concurrent requests: "
                + caller.id()
                + " has "
                + k.running
                + " in flight, running or waiting (expected: at most "
                + maxConcurrent
                + " per API key; retry when one ends)");
      }
      if (tokensPerNano > 0) {
        k.refill(nanoTime.getAsLong());
        if (k.tokens < 1) {
          long waitNanos = (long) Math.ceil((1 - k.tokens) / tokensPerNano);
          long seconds = Math.max(1, TimeUnit.NANOSECONDS.toSeconds(waitNanos) + 1);
          throw Errors.limited(
              "tokens",
              seconds,
              "completion tokens: "
                  + caller.id()
                  + " used its "
                  + Math.round(tokensPerNano * TimeUnit.MINUTES.toNanos(1))
                  + " tokens per minute (expected: fewer; retry in "
                  + seconds
                  + " s)");
        }
      }
      k.running++;
    }
    AtomicBoolean closed = new AtomicBoolean();
    return new Lease() {
      @Override
      public void charge(int tokens) {
        if (tokens > 0 && tokensPerNano > 0) {
          synchronized (k) {
            k.refill(nanoTime.getAsLong());
            k.tokens -= tokens;
          }
        }
      }

      @Override
      public void close() {
        if (closed.compareAndSet(false, true)) {
          synchronized (k) {
            k.running--;
          }
        }
      }
    };
  }

  /** Streams {@code caller} has running (for tests and metrics). */
  int running(ApiKeys.Caller caller) {
    KeyState k = keys.get(caller.id());
    if (k == null) {
      return 0;
    }
    synchronized (k) {
      return k.running;
    }
  }

  private final class KeyState {
    int running; // guarded by this
    double tokens = burst; // guarded by this; may go negative (a debt)
    long refilledAt = nanoTime.getAsLong(); // guarded by this

    void refill(long now) {
      tokens = Math.min(burst, tokens + (now - refilledAt) * tokensPerNano);
      refilledAt = now;
    }
  }
}
