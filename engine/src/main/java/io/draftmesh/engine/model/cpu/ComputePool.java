package io.draftmesh.engine.model.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;

/**
 * A few persistent threads that split one loop between them. The loop is cut into a few chunks per
 * thread that the caller and the workers claim from a counter, so a worker the OS has descheduled
 * (these cores are shared) costs nothing: the caller claims its chunks too. A hand-off is a
 * volatile write the workers are spinning on, so a matmul costs no thread wake-up while the model
 * is busy; a worker that saw no work for {@link #SPIN_NANOS} parks (idle workers must not burn the
 * shared cores).
 *
 * <p>One loop at a time: only the model's forward thread calls {@link #parallelFor}.
 */
final class ComputePool implements AutoCloseable {
  /** A chunk of a loop over {@code [from, to)}, run by worker {@code worker} (0 = caller). */
  @FunctionalInterface
  interface Task {
    void run(int worker, int from, int to);
  }

  /** How long an idle worker spins before parking: covers the gaps between steps of a busy loop. */
  static final long SPIN_NANOS = 200_000;

  private static final int CHUNKS_PER_THREAD = 4;

  /** One loop: immutable parameters and its own counters, so a late worker cannot touch another. */
  private static final class Loop {
    final Task task;
    final int n;
    final int align;
    final int chunks;
    final int threads;
    final AtomicInteger next = new AtomicInteger();
    final AtomicInteger done = new AtomicInteger();
    final AtomicReference<Throwable> failure = new AtomicReference<>();

    Loop(Task task, int n, int align, int chunks, int threads) {
      this.task = task;
      this.n = n;
      this.align = align;
      this.chunks = chunks;
      this.threads = threads;
    }

    /** Claims and runs chunks until none is left. */
    void run(int worker) {
      int k;
      while ((k = next.getAndIncrement()) < chunks) {
        try {
          task.run(worker, bound(k - 1), bound(k));
        } catch (RuntimeException | Error e) {
          failure.compareAndSet(null, e); // the other chunks still run: done counts them all
        } finally {
          done.incrementAndGet();
        }
      }
    }

    /** End of chunk k, aligned down; 0 for k = -1. */
    int bound(int k) {
      if (k < 0) {
        return 0;
      }
      if (k >= chunks - 1) {
        return n;
      }
      long raw = (long) n * (k + 1) / chunks;
      return (int) (raw / align * align);
    }
  }

  private final Thread[] workers;
  private final int maxThreads;
  private volatile int threads; // threads per loop, 1..maxThreads
  private volatile Loop current; // the latest loop; workers run it when it changes
  private volatile boolean running = true;
  private final AtomicInteger parkedFlags = new AtomicInteger(); // bit w: worker w may be parked

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

  /** How many threads later loops use, 1..maxThreads (workers beyond it stay parked). */
  void setThreads(int n) {
    if (n < 1 || n > maxThreads) {
      throw new IllegalArgumentException("threads: " + n + " (expected: 1.." + maxThreads + ")");
    }
    threads = n;
  }

  /**
   * Runs {@code task} over {@code [0, n)} in chunks whose boundaries are multiples of {@code
   * align}; returns when every chunk is done, rethrowing the first failure. Small loops (fewer than
   * two aligned units per thread) run on the caller alone.
   */
  void parallelFor(int n, int align, Task task) {
    parallelFor(n, align, threads, task);
  }

  /**
   * {@link #parallelFor(int, int, Task)} on all {@link #maxThreads()} threads, whatever the choice.
   */
  void parallelForAll(int n, int align, Task task) {
    parallelFor(n, align, maxThreads, task);
  }

  private void parallelFor(int n, int align, int t, Task task) {
    if (t == 1 || n < 2 * align * t) {
      task.run(0, 0, n);
      return;
    }
    int units = (n + align - 1) / align;
    Loop loop = new Loop(task, n, align, Math.min(units, t * CHUNKS_PER_THREAD), t);
    current = loop;
    int mask = parkedFlags.get();
    for (int w = 1; w < t; w++) {
      if ((mask & (1 << w)) != 0) {
        LockSupport.unpark(workers[w - 1]);
      }
    }
    loop.run(0);
    int spins = 0;
    while (loop.done.get() < loop.chunks) {
      if (++spins > 10_000) {
        Thread.yield(); // a descheduled worker holds a chunk: let it run
      } else {
        Thread.onSpinWait();
      }
    }
    Throwable first = loop.failure.get();
    if (first instanceof RuntimeException r) {
      throw r;
    }
    if (first instanceof Error e) {
      throw e;
    }
  }

  private void work(int id) {
    Loop seen = null;
    while (running) {
      Loop loop = current;
      if (loop == seen) {
        idle(id, seen);
        continue;
      }
      seen = loop;
      if (id < loop.threads) {
        loop.run(id);
      }
    }
  }

  /** Spins for a while waiting for the next loop, then parks until one is handed over. */
  private void idle(int id, Loop seen) {
    long start = System.nanoTime();
    int spins = 0;
    while (current == seen && running) {
      if ((++spins & 63) == 0 && System.nanoTime() - start > SPIN_NANOS) {
        parkedFlags.getAndUpdate(m -> m | (1 << id));
        // Re-check after announcing: a loop published before the flag was seen is not missed.
        if (current == seen && running) {
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
