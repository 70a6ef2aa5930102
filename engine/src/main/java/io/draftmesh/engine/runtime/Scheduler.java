package io.draftmesh.engine.runtime;

import io.draftmesh.engine.kv.KvBlockPool;
import io.draftmesh.engine.model.DecoderModel;
import io.draftmesh.engine.model.SeqStep;
import io.draftmesh.engine.model.StepResult;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching: one thread owns every sequence's state and, each iteration, runs one forward
 * pass over all sequences that have work. Sequences join and leave between steps. Sequences that
 * feed few tokens (decode, propose, verify) are planned first so prefill chunks cannot starve them;
 * prefill takes what is left of the token budget.
 */
final class Scheduler {
  private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

  private final DecoderModel model;
  private final KvBlockPool pool;
  private final int maxBatchTokens;
  private final ConcurrentLinkedQueue<Runnable> inbox = new ConcurrentLinkedQueue<>();
  private final Set<Sequence> sequences = new LinkedHashSet<>();
  private final Thread thread;
  private volatile boolean running = true;
  private volatile boolean stopped; // the loop has ended: no command runs any more
  private volatile Throwable fatal; // the Error that ended the loop, if one did
  private final java.util.concurrent.CompletableFuture<Throwable> failure =
      new java.util.concurrent.CompletableFuture<>();
  private final AtomicLong steps = new AtomicLong();
  private static final long COALESCE_MAX_NANOS = 2_000_000;
  private long lastForwardNanos;

  Scheduler(DecoderModel model, KvBlockPool pool, int maxBatchTokens, String name) {
    this.model = model;
    this.pool = pool;
    this.maxBatchTokens = maxBatchTokens;
    this.thread = new Thread(this::loop, name);
    this.thread.setDaemon(true);
    this.thread.start();
  }

  /** Runs {@code command} on the scheduler thread between steps. */
  void submit(Runnable command) {
    if (!running) {
      throw stoppedException();
    }
    inbox.add(command);
    LockSupport.unpark(thread);
    // The loop may have ended after the check above: a command it will never run must not
    // leave its caller waiting. Either the final drain took it, or it is still here to take back.
    if (stopped && inbox.remove(command)) {
      throw stoppedException();
    }
  }

  private EngineException stoppedException() {
    Throwable f = fatal;
    return f == null
        ? new EngineException(EngineException.Kind.UNAVAILABLE, "engine is shut down")
        : new EngineException(EngineException.Kind.UNAVAILABLE, "engine failed: " + f, f);
  }

  /** Completes with the Error that ended the scheduler thread; never if it ends by close. */
  java.util.concurrent.CompletableFuture<Throwable> failure() {
    return failure;
  }

  void register(Sequence s) {
    submit(() -> sequences.add(s));
  }

  void unregister(Sequence s) {
    sequences.remove(s); // called on the scheduler thread by Sequence.closeNow
  }

  long steps() {
    return steps.get();
  }

  private void loop() {
    try {
      while (running) {
        drainInbox();
        if (!step()) {
          if (inbox.isEmpty() && running) {
            LockSupport.park(this);
          }
        }
      }
    } catch (Error e) {
      // Out of memory, a native crash surfacing as an Error: the thread's state is suspect and
      // it is the only one that runs sessions. Stop, fail every session, report it.
      log.error("scheduler thread failed; the engine stops serving", e);
      fatal = e;
      running = false;
    }
    stopped = true;
    EngineException reason = fatal == null ? null : stoppedException();
    try {
      drainInbox();
    } catch (Error again) {
      log.error("scheduler command failed after the engine failed", again);
    }
    for (Sequence s : new ArrayList<>(sequences)) {
      if (reason == null) {
        s.closeNow();
      } else {
        s.closeNow(reason);
      }
    }
    if (fatal != null) {
      failure.complete(fatal);
    }
  }

  /**
   * Runs the queued commands. A command that throws is a bug, but it must not kill the thread every
   * session depends on: it is logged, and its caller's future stays as the command left it.
   */
  private void drainInbox() {
    Runnable command;
    while ((command = inbox.poll()) != null) {
      try {
        command.run();
      } catch (RuntimeException e) {
        log.error("scheduler command failed", e);
      }
    }
  }

  /** Plans and runs one batched forward. Returns false when no sequence had work. */
  private boolean step() {
    List<Sequence> members = new ArrayList<>();
    List<SeqStep> batch = new ArrayList<>();
    try {
      int budget = plan(members, batch, maxBatchTokens);
      if (batch.isEmpty()) {
        return false; // nothing needs a forward (ops that needed none have completed)
      }
      coalesce(members, batch, budget);
    } catch (Error e) {
      // The thread fails before the forward (a command coalesce ran, or planning itself): the
      // planned steps never run, so their sequences must not wait for a delivery (the loop's
      // close fails their ops).
      for (Sequence s : members) {
        s.unplan();
      }
      throw e;
    }
    List<StepResult> results;
    long started = System.nanoTime();
    try {
      results = model.forward(batch, pool);
    } catch (RuntimeException | Error e) {
      log.error("forward step failed for {} sequences", batch.size(), e);
      EngineException failure =
          new EngineException(
              e instanceof Error ? EngineException.Kind.UNAVAILABLE : EngineException.Kind.INTERNAL,
              "forward step failed: " + e,
              e);
      for (Sequence s : members) {
        s.failHead(failure); // no longer in flight, so the loop's final close can free it
      }
      if (e instanceof Error fatalError) {
        throw fatalError;
      }
      return true;
    }
    lastForwardNanos = System.nanoTime() - started;
    long number = steps.incrementAndGet();
    for (int i = 0; i < members.size(); i++) {
      Sequence s = members.get(i);
      try {
        s.deliver(batch.get(i), results.get(i), maxBatchTokens, number);
      } catch (Error e) {
        EngineException failure =
            new EngineException(EngineException.Kind.UNAVAILABLE, "delivery failed: " + e, e);
        for (Sequence undelivered : members.subList(i, members.size())) {
          undelivered.failHead(failure);
        }
        throw e;
      } catch (RuntimeException e) {
        // The sequence's state is suspect; close it (failing its ops) rather than the engine.
        log.error("delivering step {} to session {} failed", number, s.label(), e);
        s.closeNow(
            new EngineException(
                EngineException.Kind.INTERNAL, "session " + s.label() + ": " + e, e));
      }
    }
    return true;
  }

  /**
   * Adds the next step of every sequence with work and not yet a member: small feeds first, then
   * prefill chunks with what is left of the token budget. Returns the budget left.
   */
  private int plan(List<Sequence> members, List<SeqStep> batch, int budget) {
    List<Sequence> small = new ArrayList<>();
    List<Sequence> large = new ArrayList<>();
    for (Sequence s : sequences) {
      if (s.hasWork() && !members.contains(s)) {
        (isPrefillLike(s) ? large : small).add(s);
      }
    }
    for (List<Sequence> group : List.of(small, large)) {
      for (Sequence s : group) {
        if (budget <= 0) {
          return budget;
        }
        SeqStep step = s.plan(budget);
        if (step != null) {
          members.add(s);
          batch.add(step);
          budget -= step.tokens().length;
        }
      }
    }
    return budget;
  }

  /**
   * Waits briefly for sequences whose op completed in the last step and whose clients have not yet
   * sent the next one (a network round trip), so lockstep clients keep sharing forward passes
   * instead of settling into alternating half-batches. Waits at most a fifth of the last forward,
   * once per op.
   */
  private void coalesce(List<Sequence> members, List<SeqStep> batch, int budget) {
    long last = steps.get();
    long deadline = System.nanoTime() + Math.min(COALESCE_MAX_NANOS, lastForwardNanos / 5);
    while (true) {
      drainInbox();
      budget = plan(members, batch, budget);
      boolean waiting = false;
      for (Sequence s : sequences) {
        if (!members.contains(s) && !s.hasWork() && s.settledAfter(last)) {
          waiting = true;
          break;
        }
      }
      if (!waiting || budget <= 0 || System.nanoTime() >= deadline) {
        return;
      }
      Thread.onSpinWait();
    }
  }

  private static boolean isPrefillLike(Sequence s) {
    return s.unfedCount() > 64;
  }

  /** Stops the thread after its current step; returns whether it stopped within 30 s. */
  boolean close() {
    running = false;
    LockSupport.unpark(thread);
    try {
      thread.join(30_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return !thread.isAlive();
  }
}
