package io.draftmesh.kvcache;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The block store: the index of every stored block (its chain links, pins, leases and readers) over
 * the two tiers. Tiers only see keys and bytes; this class decides what lives where.
 *
 * <ul>
 *   <li><b>Write through.</b> With the disk tier on, every stored block is on disk and the memory
 *       tier holds a subset (evicting from memory only drops a copy); without it, memory is the
 *       store.
 *   <li><b>Chains stay whole.</b> Each tier holds a prefix-closed set of every chain: a copy leaves
 *       a tier only when no child has a copy in it, and a block from disk is promoted into memory
 *       only when its parent is there. A block is only stored if its parent is.
 *   <li><b>Victims</b> are the least recently used blocks that qualify; a chain is touched from its
 *       last block back to its first, so parents are always more recent than their children. Pinned
 *       or leased blocks and blocks being read or put never qualify.
 *   <li><b>Checksums.</b> Every read is checked against the CRC32C taken at put. A copy that fails
 *       is dropped; when no good copy is left the block is dropped with everything below it (those
 *       blocks are unreachable without it) and counted, and the read fails.
 * </ul>
 *
 * All index state is guarded by {@code this}; payload bytes are read and checked outside it while
 * the block is held by its reader count, which keeps its pages and disk record in place: a reader
 * streams a block straight from its memory pages.
 */
final class BlockStore implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(BlockStore.class);

  /** A store operation that failed for a reason the caller maps to a status. */
  static final class StoreException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    enum Kind {
      NOT_FOUND,
      MISSING_PARENT,
      NO_ROOM,
      CORRUPT
    }

    final Kind kind;
    final int index; // which of the request's keys, or -1

    StoreException(Kind kind, int index, String message) {
      super(message);
      this.kind = kind;
      this.index = index;
    }
  }

  /** One stored block. Fields are guarded by the store. */
  static final class Entry {
    final BlockMeta meta;
    Entry parent; // null for a chain's first block
    final List<Entry> children = new ArrayList<>(2);
    int memChildren; // children with a memory copy
    int[] pages; // memory copy, or null
    int[] stalePages; // a memory copy that failed its checksum, freed when the last reader leaves
    DiskTier.Location disk; // disk copy, or null
    int readers; // Get streams and Put streams holding it
    int pins; // active leases including it
    boolean dropped; // removed from the index; resources freed when readers reach 0

    Entry(BlockMeta meta) {
      this.meta = meta;
    }

    BlockMeta meta() {
      return meta;
    }
  }

  /** What a lookup found. */
  record LookupResult(List<BlockKey> keys, long leaseId, long leaseExpiresMs) {}

  /** A lease: blocks kept until it expires or is released. */
  private record Lease(List<Entry> entries, long expiresMs) {}

  /** Counters and sizes, for Stats. */
  record Snapshot(
      long blocks,
      long memBlocks,
      long memBytes,
      long memBudget,
      long memEvictions,
      long memCorrupt,
      long memHits,
      long diskBlocks,
      long diskBytes,
      long diskBudget,
      long diskEvictions,
      long diskCorrupt,
      long diskHits,
      long droppedBlocks,
      long leases,
      long pinnedBlocks) {}

  private final MemoryTier memory;
  private final DiskTier disk; // null when off
  private final LongSupplier clockMs;
  private final Map<BlockKey, Entry> entries = new HashMap<>();
  private final Map<BlockKey, Entry> doomed = new HashMap<>(); // dropped, still being read
  // Recency, least recent first: a touch moves a key to the end.
  private final LinkedHashMap<BlockKey, Entry> memLru = new LinkedHashMap<>();
  private final LinkedHashMap<BlockKey, Entry> storeLru = new LinkedHashMap<>();
  private final Map<Long, Lease> leases = new HashMap<>();
  private long nextLeaseId = 1;
  private long memBytes;
  private long memEvictions;
  private long memCorrupt;
  private long memHits;
  private long diskEvictions;
  private long diskCorrupt;
  private long diskHits;
  private long droppedBlocks;
  private boolean closed;

  /**
   * @param memoryBytes the memory tier's budget
   * @param diskDir the disk tier's segment directory, or null for no disk tier
   * @param diskBytes the disk tier's budget (live record bytes)
   * @param segmentBytes the disk tier's segment size
   * @param known which fingerprints are registered; blocks of others are dropped at start
   * @param clockMs wall-clock milliseconds, for leases
   */
  BlockStore(
      long memoryBytes,
      Path diskDir,
      long diskBytes,
      long segmentBytes,
      java.util.function.Predicate<BlockKey> known,
      LongSupplier clockMs)
      throws IOException {
    this.memory = new MemoryTier(memoryBytes);
    this.clockMs = clockMs;
    if (diskDir == null) {
      this.disk = null;
      return;
    }
    this.disk = new DiskTier(diskDir, diskBytes, segmentBytes);
    recover(disk.open(), known);
  }

  /**
   * Rebuilds the index from the disk tier's records: links chains, then deletes second copies (a
   * compaction cut short), blocks of unregistered models and orphans (with what hangs below them).
   * Compaction waits until the index is whole, so no record moves under a location still to be
   * indexed.
   */
  private void recover(
      List<DiskTier.Recovered> records, java.util.function.Predicate<BlockKey> known) {
    disk.compaction(false);
    List<DiskTier.Location> strays = new ArrayList<>();
    for (DiskTier.Recovered r : records) {
      BlockMeta m = r.meta();
      if (entries.containsKey(m.key()) || !known.test(m.fingerprint())) {
        strays.add(r.location());
        continue;
      }
      Entry e = new Entry(m);
      e.disk = r.location();
      entries.put(m.key(), e);
      storeLru.put(m.key(), e);
    }
    List<Entry> orphans = new ArrayList<>();
    for (Entry e : entries.values()) {
      if (e.meta.parent() == null) {
        continue;
      }
      Entry p = entries.get(e.meta.parent());
      if (p == null) {
        orphans.add(e);
      } else {
        e.parent = p;
        p.children.add(e);
      }
    }
    for (DiskTier.Location loc : strays) {
      disk.delete(loc, k -> false, this::moved);
    }
    int dropped = 0;
    for (Entry o : orphans) {
      if (entries.get(o.meta.key()) == o) {
        dropped += drop(o);
      }
    }
    droppedBlocks += dropped;
    disk.compaction(true);
    disk.compactSealed(this::busy, this::moved);
    log.info(
        "disk tier: {} blocks ({} bytes) recovered; {} dropped as orphans, {} strays, {} corrupt"
            + " headers",
        entries.size(),
        disk.liveBytes(),
        dropped,
        strays.size(),
        disk.corruptHeaders());
  }

  boolean diskEnabled() {
    return disk != null;
  }

  synchronized boolean contains(BlockKey key) {
    return entries.containsKey(key);
  }

  // ---- put ----

  /** Holds {@code key} like a reader if it is stored; returns whether it was. */
  synchronized boolean holdIfStored(BlockKey key, List<Entry> held) {
    Entry e = entries.get(key);
    if (e == null) {
      return false;
    }
    touch(e);
    e.readers++;
    held.add(e);
    return true;
  }

  /**
   * Whether the block is stored already (a put of it is then a no-op): it counts as used, and with
   * {@code hold} is held like a reader, as a new one would be.
   */
  private boolean alreadyStored(BlockMeta meta, boolean hold, List<Entry> held) {
    Entry existing = entries.get(meta.key());
    if (existing == null) {
      return false;
    }
    touch(existing);
    if (hold) {
      existing.readers++;
      held.add(existing);
    }
    return true;
  }

  /**
   * Stores a block unless it is already stored; returns whether it was new. With {@code hold}, the
   * block (new or not) is held like a reader until {@link #release}, so that a later block of the
   * same Put stream finds its parent.
   */
  synchronized boolean put(BlockMeta meta, byte[] payload, boolean hold, List<Entry> held) {
    if (alreadyStored(meta, hold, held)) {
      return false;
    }
    Entry parent = parentOf(meta);
    Entry e = new Entry(meta);
    e.parent = parent;
    if (disk != null) {
      makeDiskRoom(meta, parent);
      e.disk = disk.append(meta, payload);
      if (parent == null || parent.pages != null) {
        placeInMemory(e, payload, false);
      }
    } else {
      if (!placeInMemory(e, payload, true)) {
        throw noRoom("memory", memory.budgetBytes(), payload.length);
      }
    }
    index(e, hold, held);
    return true;
  }

  /** Evicts until {@code meta} fits on disk; {@code parent} (may be null) is kept. */
  private void makeDiskRoom(BlockMeta meta, Entry parent) {
    expireLeases();
    hold(parent, 1);
    try {
      while (!disk.fits(meta)) {
        Entry victim = victim(storeLru, v -> v.children.isEmpty());
        if (victim == null) {
          throw noRoom("disk", disk.budgetBytes(), meta.size());
        }
        diskEvictions++;
        remove(victim);
      }
    } finally {
      hold(parent, -1);
    }
  }

  private static void hold(Entry e, int delta) {
    if (e != null) {
      e.readers += delta;
    }
  }

  /**
   * Gives {@code e} a memory copy of {@code payload}, evicting memory copies to make room; with
   * {@code evictsBlocks} (no disk tier) a memory victim leaves the store. Returns false if no room
   * could be made.
   */
  private boolean placeInMemory(Entry e, byte[] payload, boolean evictsBlocks) {
    int[] pages = allocateMemory(payload.length, e.parent, evictsBlocks);
    if (pages == null) {
      return false;
    }
    memory.write(pages, payload);
    adoptPages(e, pages);
    return true;
  }

  /**
   * Pages for {@code size} bytes, evicting memory copies to make room ({@code evictsBlocks}: a
   * victim leaves the store), {@code parent} (may be null) kept; null if no room could be made.
   */
  private int[] allocateMemory(long size, Entry parent, boolean evictsBlocks) {
    if (!memory.couldEverFit(size)) {
      return null;
    }
    expireLeases();
    int need = MemoryTier.pagesFor(size);
    hold(parent, 1); // its copy must stay for its child's to be placed
    try {
      while (!memory.fits(need)) {
        Entry victim =
            victim(memLru, v -> evictsBlocks ? v.children.isEmpty() : v.memChildren == 0);
        if (victim == null) {
          return null;
        }
        memEvictions++;
        if (evictsBlocks) {
          remove(victim);
        } else {
          dropMemoryCopy(victim);
        }
      }
    } finally {
      hold(parent, -1);
    }
    return memory.allocate(size);
  }

  /** Makes {@code pages} (holding e's payload) e's memory copy. */
  private void adoptPages(Entry e, int[] pages) {
    e.pages = pages;
    memBytes += e.meta.size();
    memLru.put(e.meta.key(), e);
    if (e.parent != null) {
      e.parent.memChildren++;
    }
  }

  // ---- put straight into pages ----

  /**
   * Pages reserved for a block a Put stream is receiving: its chunks are written into them as they
   * arrive (outside the store lock, by that stream only), then {@link #commit}ted as the block's
   * memory copy, or {@link #abandon}ed. Not in the index until committed, so no reader sees them.
   */
  static final class Reservation {
    private final int size;
    private int[] pages; // null once committed or abandoned

    private Reservation(int size, int[] pages) {
      this.size = size;
      this.pages = pages;
    }
  }

  /**
   * Reserves memory pages for a block of {@code meta} about to be received, or returns null when
   * the block would not get a memory copy (with the disk tier on: its parent has none) or no room
   * can be made now; the caller then stages the block and {@link #put}s it. Evicts like a put.
   */
  synchronized Reservation reserve(BlockMeta meta) {
    if (closed) {
      return null;
    }
    Entry parent = null;
    if (meta.parent() != null) {
      parent = entries.get(meta.parent());
      if (parent == null || (disk != null && parent.pages == null)) {
        return null; // a missing parent fails at put; a disk-only parent keeps its child on disk
      }
    }
    int[] pages = allocateMemory(meta.size(), parent, disk == null);
    return pages == null ? null : new Reservation(meta.size(), pages);
  }

  /** Copies {@code chunk} into {@code r}'s pages from byte {@code offset} of its block. */
  void write(Reservation r, int offset, ByteString chunk) {
    if (offset + (long) chunk.size() > r.size) {
      throw new IllegalArgumentException(
          "reservation of " + r.size + " bytes: " + chunk.size() + " more at " + offset);
    }
    for (ByteBuffer part : chunk.asReadOnlyByteBufferList()) {
      memory.write(r.pages, offset, part);
      offset += part.remaining();
    }
  }

  /** Frees a reservation's pages unless committed or abandoned already (idempotent). */
  synchronized void abandon(Reservation r) {
    if (r.pages != null && !closed) { // a stream cancelled by the drain may end after close
      memory.free(r.pages);
      r.pages = null;
    }
  }

  /**
   * As {@link #put}, for a block whose payload fills {@code r}'s pages: they become its memory copy
   * (the disk tier appends from them), or are freed when the block is a duplicate, gets no memory
   * copy after all (its parent lost its own meanwhile) or cannot be stored. {@code r} is used up
   * however this ends.
   */
  synchronized boolean commit(BlockMeta meta, Reservation r, boolean hold, List<Entry> held) {
    if (r.pages == null || r.size != meta.size()) {
      throw new IllegalStateException("reservation already used, or of another size");
    }
    int[] pages = r.pages;
    r.pages = null;
    boolean adopted = false;
    try {
      if (alreadyStored(meta, hold, held)) {
        return false;
      }
      Entry parent = parentOf(meta);
      Entry e = new Entry(meta);
      e.parent = parent;
      if (disk != null) {
        makeDiskRoom(meta, parent);
        e.disk = disk.append(meta, memory.pageBuffers(pages, meta.size()));
      }
      if (disk == null || parent == null || parent.pages != null) {
        adoptPages(e, pages);
        adopted = true;
      }
      index(e, hold, held);
      return true;
    } finally {
      if (!adopted) {
        memory.free(pages);
      }
    }
  }

  /** The stored parent of {@code meta}, null for a chain's first block; MISSING_PARENT if none. */
  private Entry parentOf(BlockMeta meta) {
    if (meta.parent() == null) {
      return null;
    }
    Entry parent = entries.get(meta.parent());
    if (parent == null) {
      throw new StoreException(
          StoreException.Kind.MISSING_PARENT,
          -1,
          "header.parent_key: "
              + meta.parent()
              + "... is not stored (expected: a chain is put first block first)");
    }
    return parent;
  }

  /** Enters a new block, its copies placed, into the index; with {@code hold}, holds it. */
  private void index(Entry e, boolean hold, List<Entry> held) {
    entries.put(e.meta.key(), e);
    storeLru.put(e.meta.key(), e);
    if (e.parent != null) {
      e.parent.children.add(e);
    }
    if (hold) {
      e.readers++;
      held.add(e);
    }
  }

  private Entry victim(
      LinkedHashMap<BlockKey, Entry> lru, java.util.function.Predicate<Entry> shape) {
    for (Entry v : lru.values()) {
      if (v.readers == 0 && v.pins == 0 && shape.test(v)) {
        return v;
      }
    }
    return null;
  }

  private static StoreException noRoom(String tier, long budget, long size) {
    return new StoreException(
        StoreException.Kind.NO_ROOM,
        -1,
        "no room for a block of "
            + size
            + " bytes in the "
            + tier
            + " tier ("
            + budget
            + " bytes): every block that could make room is pinned, leased or being read, or"
            + " the room is reserved by puts in progress");
  }

  // ---- get ----

  /** Holds every block of {@code keys} for reading; all or none. */
  synchronized List<Entry> acquire(List<BlockKey> keys) {
    List<Entry> out = new ArrayList<>(keys.size());
    for (int i = 0; i < keys.size(); i++) {
      Entry e = entries.get(keys.get(i));
      if (e == null) {
        throw new StoreException(
            StoreException.Kind.NOT_FOUND,
            i,
            "keys[" + i + "]: " + keys.get(i) + "... is not stored");
      }
      out.add(e);
    }
    for (Entry e : out) {
      e.readers++;
    }
    return out;
  }

  /** Lets go of blocks held by {@link #acquire} or a put with hold. */
  synchronized void release(List<Entry> held) {
    for (Entry e : held) {
      e.readers--;
      if (e.readers == 0 && e.stalePages != null) {
        memory.free(e.stalePages);
        e.stalePages = null;
      }
      if (e.dropped && e.readers == 0) {
        freeResources(e);
        doomed.remove(e.meta.key());
      }
    }
    held.clear();
  }

  /**
   * The payload of a held block, checked against its CRC32C: the memory copy if it is good (a view
   * of its pages, valid until the block is released), else the disk copy (promoted to memory when
   * its parent is there). Throws {@code CORRUPT} when no copy is good, after dropping the block and
   * everything below it.
   */
  ByteString read(Entry e) {
    int[] pages;
    DiskTier.Location loc;
    synchronized (this) {
      if (e.dropped) {
        throw new StoreException(
            StoreException.Kind.NOT_FOUND, -1, "block " + e.meta.key() + "... was dropped");
      }
      pages = e.pages;
      loc = e.disk;
    }
    if (pages != null) {
      ByteString b = memory.view(pages, e.meta.size());
      if (crc(b) == e.meta.crc32c()) {
        synchronized (this) {
          memHits++;
          touch(e);
        }
        return b;
      }
      synchronized (this) {
        memCorrupt++;
        log.warn("block {}: memory copy failed its CRC32C; dropped", e.meta.key());
        if (e.pages == pages && !e.dropped) { // not a copy another reader put back since
          // Other readers may be streaming these pages: they are freed when the last one leaves
          // (what those readers send fails the client's checksum, as it fails ours).
          e.stalePages = pages;
          e.pages = null;
          memBytes -= e.meta.size();
          memLru.remove(e.meta.key());
          if (e.parent != null) {
            e.parent.memChildren--;
          }
        }
      }
    }
    if (loc != null) {
      byte[] b = null;
      try {
        b = disk.read(loc);
      } catch (IOException ex) {
        log.warn("block {}: disk read failed: {}", e.meta.key(), ex.toString());
      }
      if (b != null && crc(b) == e.meta.crc32c()) {
        synchronized (this) {
          diskHits++;
          touch(e);
          if (!e.dropped && e.pages == null && (e.parent == null || e.parent.pages != null)) {
            placeInMemory(e, b, false);
          }
        }
        return UnsafeByteOperations.unsafeWrap(b); // b is this reader's own array
      }
      synchronized (this) {
        diskCorrupt++;
        log.warn("block {}: disk copy failed its CRC32C", e.meta.key());
      }
    }
    synchronized (this) {
      int n = e.dropped ? 0 : drop(e);
      droppedBlocks += n;
      throw new StoreException(
          StoreException.Kind.CORRUPT,
          -1,
          "block "
              + e.meta.key()
              + "... failed its checksum in every tier; it and "
              + Math.max(0, n - 1)
              + " blocks below it were dropped");
    }
  }

  static int crc(byte[] b) {
    CRC32C c = new CRC32C();
    c.update(b, 0, b.length);
    return (int) c.getValue();
  }

  static int crc(ByteString b) {
    CRC32C c = new CRC32C();
    for (ByteBuffer part : b.asReadOnlyByteBufferList()) {
      c.update(part);
    }
    return (int) c.getValue();
  }

  // ---- lookup, leases ----

  /**
   * The longest stored prefix of {@code chain}; touched, and leased for {@code leaseMs} when that
   * is positive and something was found.
   */
  synchronized LookupResult lookup(List<BlockKey> chain, long leaseMs) {
    List<Entry> found = new ArrayList<>();
    for (BlockKey k : chain) {
      Entry e = entries.get(k);
      if (e == null) {
        break;
      }
      found.add(e);
    }
    for (int i = found.size() - 1; i >= 0; i--) {
      touch(found.get(i));
    }
    List<BlockKey> keys = new ArrayList<>(found.size());
    for (Entry e : found) {
      keys.add(e.meta.key());
    }
    if (leaseMs > 0 && !found.isEmpty()) {
      long[] lease = lease(found, leaseMs);
      return new LookupResult(keys, lease[0], lease[1]);
    }
    return new LookupResult(keys, 0, 0);
  }

  /** Leases every block of {@code keys} for {@code leaseMs}; returns {lease id, expiry ms}. */
  synchronized long[] pin(List<BlockKey> keys, long leaseMs) {
    List<Entry> found = new ArrayList<>(keys.size());
    for (int i = 0; i < keys.size(); i++) {
      Entry e = entries.get(keys.get(i));
      if (e == null) {
        throw new StoreException(
            StoreException.Kind.NOT_FOUND,
            i,
            "keys[" + i + "]: " + keys.get(i) + "... is not stored");
      }
      found.add(e);
    }
    return lease(found, leaseMs);
  }

  private long[] lease(List<Entry> found, long leaseMs) {
    expireLeases();
    long id = nextLeaseId++;
    long expires = clockMs.getAsLong() + leaseMs;
    for (Entry e : found) {
      e.pins++;
    }
    leases.put(id, new Lease(List.copyOf(found), expires));
    return new long[] {id, expires};
  }

  /** Ends a lease; false if it had already ended. */
  synchronized boolean unpin(long leaseId) {
    expireLeases();
    Lease l = leases.remove(leaseId);
    if (l == null) {
      return false;
    }
    endLease(l);
    return true;
  }

  private void expireLeases() {
    long now = clockMs.getAsLong();
    Iterator<Lease> it = leases.values().iterator();
    while (it.hasNext()) {
      Lease l = it.next();
      if (l.expiresMs() <= now) {
        it.remove();
        endLease(l);
      }
    }
  }

  private static void endLease(Lease l) {
    for (Entry e : l.entries()) {
      e.pins--;
    }
  }

  // ---- removal ----

  private void touch(Entry e) {
    BlockKey k = e.meta.key();
    if (storeLru.remove(k) != null) {
      storeLru.put(k, e);
    }
    if (memLru.remove(k) != null) {
      memLru.put(k, e);
    }
  }

  private void dropMemoryCopy(Entry e) {
    memory.free(e.pages);
    memBytes -= e.meta.size();
    e.pages = null;
    memLru.remove(e.meta.key());
    if (e.parent != null) {
      e.parent.memChildren--;
    }
  }

  /** Removes a childless block from the index and frees both copies (or defers while read). */
  private void remove(Entry e) {
    entries.remove(e.meta.key());
    storeLru.remove(e.meta.key());
    memLru.remove(e.meta.key());
    if (e.parent != null) {
      e.parent.children.remove(e);
      if (e.pages != null) {
        e.parent.memChildren--;
      }
    }
    e.dropped = true;
    if (e.readers == 0) {
      freeResources(e);
    } else {
      doomed.put(e.meta.key(), e);
    }
  }

  private void freeResources(Entry e) {
    if (e.pages != null) {
      memory.free(e.pages);
      memBytes -= e.meta.size();
      e.pages = null;
    }
    if (e.disk != null) {
      DiskTier.Location loc = e.disk;
      e.disk = null;
      disk.delete(loc, this::busy, this::moved);
    }
  }

  /** Drops {@code e} and every block below it, deepest first; returns how many. */
  private int drop(Entry e) {
    int n = 0;
    for (Entry c : new ArrayList<>(e.children)) {
      n += drop(c);
    }
    remove(e);
    return n + 1;
  }

  private boolean busy(BlockKey k) {
    Entry e = entries.get(k);
    if (e == null) {
      e = doomed.get(k);
    }
    return e != null && e.readers > 0;
  }

  private void moved(BlockKey k, DiskTier.Location now) {
    Entry e = entries.get(k);
    if (e == null) {
      e = doomed.get(k);
    }
    if (e != null) {
      e.disk = now;
    }
  }

  // ---- stats ----

  synchronized Snapshot snapshot() {
    expireLeases();
    long pinned = 0;
    for (Entry e : entries.values()) {
      if (e.pins > 0) {
        pinned++;
      }
    }
    return new Snapshot(
        entries.size(),
        memLru.size(),
        memBytes,
        memory.budgetBytes(),
        memEvictions,
        memCorrupt,
        memHits,
        disk == null ? 0 : disk.liveRecords(),
        disk == null ? 0 : disk.liveBytes(),
        disk == null ? 0 : disk.budgetBytes(),
        diskEvictions,
        diskCorrupt + (disk == null ? 0 : disk.corruptHeaders()),
        diskHits,
        droppedBlocks,
        leases.size(),
        pinned);
  }

  /** Memory pages in use, reservations included (for tests that nothing leaks). */
  synchronized int usedPages() {
    return memory.usedPages();
  }

  /** Whether {@code key} has a memory copy (for tests of tier placement). */
  synchronized boolean inMemory(BlockKey key) {
    Entry e = entries.get(key);
    return e != null && e.pages != null;
  }

  @Override
  public synchronized void close() {
    closed = true;
    memory.close();
    if (disk != null) {
      disk.close();
    }
    entries.clear();
    memLru.clear();
    storeLru.clear();
    leases.clear();
  }
}
