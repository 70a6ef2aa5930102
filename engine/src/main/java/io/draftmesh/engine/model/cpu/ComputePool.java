package io.draftmesh.engine.model.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A few persistent threads that split one loop between them: the calling thread takes the first
 * share, each worker one more. A hand-off is a volatile write the workers are spinning on, so a
 * matmul costs no thread wake-up while the model is busy; a worker that saw no work for {@link
 * #SPIN_NANOS} parks (idle workers must not burn the shared cores). The caller spins for the
 * workers' shares, which are as long as its own.
 *
 * <p>One loop at a time: only the model's forward thread calls {@link #parallelFor}.
 */
final class ComputePool implements AutoCloseable {
  /** A share of a loop over {@code [from, to)}, run by worker {@code worker} (0 = caller). */
  @FunctionalInterface
  interface Task {
    void run(int worker, int from, int to);
  }

  /** How long an idle worker spins before parking: covers the gaps between steps of a busy loop. */
  static final long SPIN_NANOS = 200_000;

  private final Thread[] workers;
  private final int maxThreads;
  private volatile int threads; // shares per loop, 1..maxThreads
  private volatile long generation; // bumped per loop; workers run when it moves
  private volatile boolean running = true;
  private final AtomicInteger parkedFlags = new AtomicInteger(); // bit w: worker w may be parked
  private final AtomicInteger remaining = new AtomicInteger();
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  // The current loop, published by the volatile write of generation.
  private Task task;
  private int total;
  private int align;
  private int shares;

  ComputePool(int maxThreads, String name) {
    if (maxThreads < 1 || maxThreads > 31) {
      throw new IllegalArgumentException("threads: " + maxThreads + " (expected: 1..31)");
    }
    this.maxThreads = maxThreads;
    this.threads = maxThreads;
    this.workers = new Thread[maxThreads - 1];
    for (int w = 1; w < maxThreads; w++) {
      int id = w;
      Thread t = new Thread(() -> work(id), name + "-" + w);
      t.setDaemon(true);
      workers[w - 1] = t;
      t.start();
    }
  }

  int maxThreads() {
    return maxThreads;
  }

  int threads() {
    return threads;
  }

  /** How many shares later loops use, 1..maxThreads (workers beyond it stay parked). */
  void setThreads(int n) {
    if (n < 1 || n > maxThreads) {
      throw new IllegalArgumentException("threads: " + n + " (expected: 1.." + maxThreads + ")");
    }
    threads = n;
  }

  /**
   * Runs {@code task} over {@code [0, n)} split into one contiguous share per thread, each share
   * boundary a multiple of {@code align}; returns when every share is done. Small loops (fewer than
   * two aligned units per thread) run on the caller alone.
   */
  void parallelFor(int n, int align, Task task) {
    int t = threads;
    if (t == 1 || n < 2 * align * t) {
      task.run(0, 0, n);
      return;
    }
    this.task = task;
    this.total = n;
    this.align = align;
    this.shares = t;
    remaining.set(t - 1);
    generation++; // publishes the fields above
    int mask = parkedFlags.get();
    for (int w = 1; w < t; w++) {
      if ((mask & (1 << w)) != 0) {
        LockSupport.unpark(workers[w - 1]);
      }
    }
    Throwable mine = null;
    try {
      task.run(0, 0, bound(0, n, align, t));
    } catch (RuntimeException | Error e) {
      mine = e;
    }
    while (remaining.get() > 0) {
      Thread.onSpinWait();
    }
    this.task = null;
    Throwable theirs = failure.getAndSet(null);
    Throwable first = mine != null ? mine : theirs;
    if (first instanceof RuntimeException r) {
      throw r;
    }
    if (first instanceof Error e) {
      throw e;
    }
  }

  /** Start of share {@code k} of {@code shares} over [0, n), aligned down to {@code align}. */
  private static int bound(int k, int n, int align, int shares) {
    if (k >= shares - 1) {
      return n;
    }
    long raw = (long) n * (k + 1) / shares;
    return (int) (raw / align * align);
  }

  private void work(int id) {
    long seen = 0;
    while (running) {
      long g = generation;
      if (g == seen) {
        idle(id, seen);
        continue;
      }
      seen = g;
      if (id >= shares) {
        continue; // this loop uses fewer threads
      }
      Task t = task;
      int n = total;
      int a = align;
      int s = shares;
      try {
        t.run(id, bound(id - 1, n, a, s), bound(id, n, a, s));
      } catch (RuntimeException | Error e) {
        failure.compareAndSet(null, e);
      } finally {
        remaining.decrementAndGet();
      }
    }
  }

  /** Spins for a while waiting for the next loop, then parks until one is handed over. */
  private void idle(int id, long seen) {
    long start = System.nanoTime();
    int spins = 0;
    while (generation == seen && running) {
      if ((++spins & 63) == 0 && System.nanoTime() - start > SPIN_NANOS) {
        parkedFlags.getAndUpdate(m -> m | (1 << id));
        // Re-check after announcing: a loop published before the flag was seen is not missed.
        if (generation == seen && running) {
          LockSupport.park(this);
        }
        parkedFlags.getAndUpdate(m -> m & ~(1 << id));
        return;
      }
      Thread.onSpinWait();
    }
  }

  @Override
  public void close() {
    running = false;
    for (Thread t : workers) {
      LockSupport.unpark(t);
    }
    for (Thread t : workers) {
      try {
        t.join(5_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
