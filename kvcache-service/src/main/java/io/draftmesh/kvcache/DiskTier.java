package io.draftmesh.kvcache;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiConsumer;
import java.util.function.Predicate;
import java.util.stream.Stream;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The disk tier: an append-only store of block records in segment files ({@code seg-00000001.kvs},
 * ...), each record checksummed, with an in-memory index rebuilt by scanning the record headers at
 * start (see the module README for why not RocksDB).
 *
 * <p>Record layout, little-endian:
 *
 * <pre>
 *   0  u32 magic 0x4B56424B
 *   4  u8  state: 1 live, 0 deleted (rewritten in place on delete; outside the header CRC)
 *   5  3 zero bytes
 *   8  u32 CRC32C of bytes [12, 16 + H)
 *  12  u32 H, the header body's length
 *  16  header body: key (32) | has parent u8 | parent (32, zero for a root) | fingerprint (32)
 *      | u32 n | n u32 token ids | u32 payload size | u32 payload CRC32C
 *  16 + H  payload
 * </pre>
 *
 * A delete flips the state byte, so a restart never resurrects an evicted block. A sealed segment
 * less than half live is compacted: its live records are appended to the active segment and the
 * file is removed. The byte budget bounds live record bytes; dead bytes awaiting compaction can add
 * up to half of each sealed segment. Payload CRCs are checked on every read, not at the start scan
 * (which reads only headers, so a large tier opens fast); a header that fails its CRC is skipped by
 * searching for the next record's magic, and a torn last record is cut off.
 *
 * <p>Not thread-safe except {@link #read}, which uses positional reads; the {@link BlockStore} lock
 * guards everything else and keeps records being read from being moved or deleted.
 */
final class DiskTier implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DiskTier.class);

  static final int MAGIC = 0x4B56424B;
  private static final int PREFIX_BYTES = 16;
  private static final int MAX_HEADER_BYTES = 1 << 20;
  private static final byte LIVE = 1;
  private static final byte DELETED = 0;

  /** Where one record lies. */
  record Location(long segment, long offset, int headerBytes, int size) {
    long recordBytes() {
      return PREFIX_BYTES + (long) headerBytes + size;
    }

    long payloadOffset() {
      return offset + PREFIX_BYTES + headerBytes;
    }
  }

  /** A record found by the start scan. */
  record Recovered(BlockMeta meta, Location location) {}

  private static final class Segment {
    final long id;
    final Path path;
    final FileChannel channel;
    long fileBytes;
    long liveBytes;
    final TreeMap<Long, BlockKey> live = new TreeMap<>(); // offset -> key

    Segment(long id, Path path, FileChannel channel, long fileBytes) {
      this.id = id;
      this.path = path;
      this.channel = channel;
      this.fileBytes = fileBytes;
    }
  }

  private final Path dir;
  private final long budgetBytes;
  private final long segmentBytes;
  private final TreeMap<Long, Segment> segments = new TreeMap<>();
  private Segment active;
  private long liveBytes;
  private long corruptHeaders;
  private long liveRecords;
  private boolean compaction = true;

  /**
   * @param dir the segment directory (created if missing)
   * @param budgetBytes most live record bytes
   * @param segmentBytes size at which the active segment is sealed and a new one started
   */
  DiskTier(Path dir, long budgetBytes, long segmentBytes) {
    this.dir = dir;
    this.budgetBytes = budgetBytes;
    this.segmentBytes = segmentBytes;
  }

  long budgetBytes() {
    return budgetBytes;
  }

  long liveBytes() {
    return liveBytes;
  }

  long liveRecords() {
    return liveRecords;
  }

  /** Record headers that failed their CRC at the start scan (their blocks are gone). */
  long corruptHeaders() {
    return corruptHeaders;
  }

  /** Bytes a record of {@code meta} takes. */
  static long recordBytes(BlockMeta meta) {
    return PREFIX_BYTES + headerBytes(meta) + (long) meta.size();
  }

  private static int headerBytes(BlockMeta meta) {
    return 32 + 1 + 32 + 32 + 4 + 4 * meta.tokens().length + 4 + 4;
  }

  /** Opens every segment, returns the live records in append order, and starts a new segment. */
  List<Recovered> open() throws IOException {
    Files.createDirectories(dir);
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files =
          s.filter(p -> p.getFileName().toString().matches("seg-\\d{8}\\.kvs")).sorted().toList();
    }
    List<Recovered> out = new ArrayList<>();
    for (Path p : files) {
      String name = p.getFileName().toString();
      long id = Long.parseLong(name.substring(4, 12));
      FileChannel ch = FileChannel.open(p, StandardOpenOption.READ, StandardOpenOption.WRITE);
      Segment seg = new Segment(id, p, ch, ch.size());
      segments.put(id, seg);
      scan(seg, out);
    }
    newSegment();
    // Wholly dead segments go now; partly dead ones when a delete next touches them (compacting
    // here would move records the caller is about to index).
    for (Segment seg : new ArrayList<>(segments.values())) {
      if (seg != active && seg.live.isEmpty()) {
        maybeCompactOrRemove(seg, k -> false, (k, l) -> {});
      }
    }
    return out;
  }

  private void scan(Segment seg, List<Recovered> out) throws IOException {
    long pos = 0;
    long size = seg.fileBytes;
    ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    while (pos + PREFIX_BYTES <= size) {
      prefix.clear();
      readFully(seg.channel, prefix, pos);
      prefix.flip();
      int magic = prefix.getInt(0);
      byte state = prefix.get(4);
      int headerCrc = prefix.getInt(8);
      int h = prefix.getInt(12);
      if (magic != MAGIC || (state != LIVE && state != DELETED) || h < 0 || h > MAX_HEADER_BYTES) {
        pos = resync(seg, pos + 1, size);
        continue;
      }
      if (pos + PREFIX_BYTES + h > size) {
        truncate(seg, pos, "torn header");
        return;
      }
      ByteBuffer body = ByteBuffer.allocate(h).order(ByteOrder.LITTLE_ENDIAN);
      readFully(seg.channel, body, pos + PREFIX_BYTES);
      CRC32C crc = new CRC32C();
      crc.update(prefix.array(), 12, 4);
      crc.update(body.array(), 0, h);
      BlockMeta meta = (int) crc.getValue() == headerCrc ? parseHeader(body.array(), h) : null;
      if (meta == null) {
        pos = resync(seg, pos + 1, size);
        continue;
      }
      Location loc = new Location(seg.id, pos, h, meta.size());
      if (pos + loc.recordBytes() > size) {
        truncate(seg, pos, "torn record");
        return;
      }
      if (state == LIVE) {
        seg.live.put(pos, meta.key());
        seg.liveBytes += loc.recordBytes();
        liveBytes += loc.recordBytes();
        liveRecords++;
        out.add(new Recovered(meta, loc));
      }
      pos += loc.recordBytes();
    }
    if (pos < size) {
      truncate(seg, pos, "torn record prefix");
    }
  }

  /** Counts a corrupt header and finds the next offset at or after {@code from} with the magic. */
  private long resync(Segment seg, long from, long size) throws IOException {
    corruptHeaders++;
    log.warn("segment {}: corrupt record header before offset {}; searching on", seg.path, from);
    ByteBuffer window = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
    long base = from;
    while (base + 4 <= size) {
      window.clear();
      int n = seg.channel.read(window, base);
      if (n < 4) {
        break;
      }
      for (int i = 0; i + 4 <= n; i++) {
        if (window.getInt(i) == MAGIC) {
          return base + i;
        }
      }
      base += n - 3;
    }
    return size;
  }

  private void truncate(Segment seg, long at, String why) throws IOException {
    log.warn(
        "segment {}: {} at offset {}; cut off {} bytes", seg.path, why, at, seg.fileBytes - at);
    seg.channel.truncate(at);
    seg.fileBytes = at;
  }

  private static BlockMeta parseHeader(byte[] b, int h) {
    ByteBuffer in = ByteBuffer.wrap(b, 0, h).order(ByteOrder.LITTLE_ENDIAN);
    if (h < 32 + 1 + 32 + 32 + 4 + 8) {
      return null;
    }
    byte[] key = new byte[32];
    in.get(key);
    boolean hasParent = in.get() == 1;
    byte[] parent = new byte[32];
    in.get(parent);
    byte[] fp = new byte[32];
    in.get(fp);
    int n = in.getInt();
    if (n < 0 || h != 32 + 1 + 32 + 32 + 4 + 4L * n + 8) {
      return null;
    }
    int[] tokens = new int[n];
    for (int i = 0; i < n; i++) {
      tokens[i] = in.getInt();
    }
    int size = in.getInt();
    int crc = in.getInt();
    if (size < 0) {
      return null;
    }
    return new BlockMeta(
        BlockKey.of(key),
        hasParent ? BlockKey.of(parent) : null,
        BlockKey.of(fp),
        tokens,
        size,
        crc);
  }

  /** Whether a record of {@code meta} fits in the budget now. */
  boolean fits(BlockMeta meta) {
    return liveBytes + recordBytes(meta) <= budgetBytes;
  }

  /** Appends a live record; returns where it is. */
  Location append(BlockMeta meta, byte[] payload) {
    return append(meta, new ByteBuffer[] {ByteBuffer.wrap(payload)});
  }

  /**
   * Appends a live record whose payload is the remaining bytes of {@code payload} (a block's memory
   * pages, written from where they are); returns where it is. The buffers' positions move.
   */
  Location append(BlockMeta meta, ByteBuffer[] payload) {
    int h = headerBytes(meta);
    long size = 0;
    for (ByteBuffer b : payload) {
      size += b.remaining();
    }
    if (size != meta.size()) {
      throw new IllegalArgumentException(
          "disk tier: payload of " + size + " bytes for a block of " + meta.size());
    }
    long rec = PREFIX_BYTES + (long) h + size;
    try {
      if (active.fileBytes > 0 && active.fileBytes + rec > segmentBytes) {
        active.channel.force(false);
        newSegment();
      }
      ByteBuffer head = ByteBuffer.allocate(PREFIX_BYTES + h).order(ByteOrder.LITTLE_ENDIAN);
      head.putInt(MAGIC).put(LIVE).put((byte) 0).put((byte) 0).put((byte) 0);
      head.putInt(0); // header CRC, filled in below
      head.putInt(h);
      head.put(meta.key().bytes());
      head.put((byte) (meta.parent() == null ? 0 : 1));
      head.put(meta.parent() == null ? new byte[32] : meta.parent().bytes());
      head.put(meta.fingerprint().bytes());
      head.putInt(meta.tokens().length);
      for (int t : meta.tokens()) {
        head.putInt(t);
      }
      head.putInt(meta.size());
      head.putInt(meta.crc32c());
      CRC32C crc = new CRC32C();
      crc.update(head.array(), 12, 4 + h);
      head.putInt(8, (int) crc.getValue());
      head.flip();
      long at = active.fileBytes;
      ByteBuffer[] bufs = new ByteBuffer[payload.length + 1];
      bufs[0] = head;
      System.arraycopy(payload, 0, bufs, 1, payload.length);
      long pos = at;
      long end = at + rec;
      active.channel.position(at);
      while (pos < end) {
        pos += active.channel.write(bufs);
      }
      active.fileBytes = pos;
      Location loc = new Location(active.id, at, h, meta.size());
      active.live.put(at, meta.key());
      active.liveBytes += rec;
      liveBytes += rec;
      liveRecords++;
      return loc;
    } catch (IOException e) {
      throw new UncheckedIOException("disk tier: cannot append to " + active.path, e);
    }
  }

  /** The payload at {@code loc} (its CRC is the caller's to check). */
  byte[] read(Location loc) throws IOException {
    Segment seg;
    synchronized (segments) {
      seg = segments.get(loc.segment());
    }
    if (seg == null) {
      throw new IOException("segment " + loc.segment() + " is gone");
    }
    ByteBuffer buf = ByteBuffer.allocate(loc.size());
    readFully(seg.channel, buf, loc.payloadOffset());
    return buf.array();
  }

  /**
   * Marks the record at {@code loc} deleted, then compacts its segment if it is sealed and less
   * than half live, skipping that while {@code busy} says a record in it is being read; {@code
   * moved} is told each relocated record's new place.
   */
  void delete(Location loc, Predicate<BlockKey> busy, BiConsumer<BlockKey, Location> moved) {
    Segment seg = segments.get(loc.segment());
    try {
      seg.channel.write(ByteBuffer.wrap(new byte[] {DELETED}), loc.offset() + 4);
    } catch (IOException e) {
      throw new UncheckedIOException("disk tier: cannot delete a record in " + seg.path, e);
    }
    seg.live.remove(loc.offset());
    seg.liveBytes -= loc.recordBytes();
    liveBytes -= loc.recordBytes();
    liveRecords--;
    maybeCompactOrRemove(seg, busy, moved);
  }

  /** Turns compaction off (while an index is being rebuilt from {@link #open}'s records) or on. */
  void compaction(boolean on) {
    compaction = on;
  }

  /** Compacts every sealed segment that is less than half live and not being read. */
  void compactSealed(Predicate<BlockKey> busy, BiConsumer<BlockKey, Location> moved) {
    for (Segment seg : new ArrayList<>(segments.values())) {
      maybeCompactOrRemove(seg, busy, moved);
    }
  }

  private void maybeCompactOrRemove(
      Segment seg, Predicate<BlockKey> busy, BiConsumer<BlockKey, Location> moved) {
    if (seg == active
        || (!seg.live.isEmpty() && (!compaction || seg.liveBytes * 2 >= seg.fileBytes))) {
      return;
    }
    for (BlockKey k : seg.live.values()) {
      if (busy.test(k)) {
        return; // a Get is reading from it; a later delete retries
      }
    }
    try {
      for (Map.Entry<Long, BlockKey> e : new ArrayList<>(seg.live.entrySet())) {
        Recovered r = readRecord(seg, e.getKey());
        byte[] payload = read(r.location());
        Location now = append(r.meta(), payload);
        liveBytes -= r.location().recordBytes(); // append counted it again
        liveRecords--;
        moved.accept(e.getValue(), now);
      }
      synchronized (segments) {
        segments.remove(seg.id);
      }
      seg.channel.close();
      Files.deleteIfExists(seg.path);
      log.debug("segment {} compacted ({} live records moved)", seg.path, seg.live.size());
    } catch (IOException e) {
      throw new UncheckedIOException("disk tier: cannot compact " + seg.path, e);
    }
  }

  private Recovered readRecord(Segment seg, long offset) throws IOException {
    ByteBuffer prefix = ByteBuffer.allocate(PREFIX_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    readFully(seg.channel, prefix, offset);
    int h = prefix.getInt(12);
    ByteBuffer body = ByteBuffer.allocate(h);
    readFully(seg.channel, body, offset + PREFIX_BYTES);
    BlockMeta meta = parseHeader(body.array(), h);
    if (meta == null) {
      throw new IOException("record header at " + offset + " no longer parses");
    }
    return new Recovered(meta, new Location(seg.id, offset, h, meta.size()));
  }

  private void newSegment() throws IOException {
    long id = segments.isEmpty() ? 1 : segments.lastKey() + 1;
    Path p = dir.resolve(String.format(java.util.Locale.ROOT, "seg-%08d.kvs", id));
    FileChannel ch =
        FileChannel.open(
            p, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
    active = new Segment(id, p, ch, 0);
    synchronized (segments) {
      segments.put(id, active);
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) {
        throw new IOException("unexpected end of file at " + pos);
      }
      pos += n;
    }
  }

  /** Forces and closes every segment. */
  @Override
  public void close() {
    synchronized (segments) {
      for (Segment s : segments.values()) {
        try {
          s.channel.force(false);
          s.channel.close();
        } catch (IOException e) {
          log.warn("closing {}: {}", s.path, e.toString());
        }
      }
      segments.clear();
    }
  }
}
