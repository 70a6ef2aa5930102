package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BlockStoreTest {
  static final int PAGE = MemoryTier.PAGE_BYTES;
  // One page per block, with room to spare for nothing else.
  static final int ONE_PAGE = PAGE - 100;

  @TempDir Path dir;
  final AtomicLong clock = new AtomicLong(1_000_000);
  final List<BlockStore> opened = new ArrayList<>();

  @AfterEach
  void closeAll() {
    opened.forEach(BlockStore::close);
  }

  BlockStore memoryOnly(long bytes) throws IOException {
    return track(new BlockStore(bytes, null, 0, 0, fp -> true, clock::get));
  }

  BlockStore withDisk(long memory, long disk, long segment) throws IOException {
    return track(
        new BlockStore(memory, dir.resolve("blocks"), disk, segment, fp -> true, clock::get));
  }

  BlockStore track(BlockStore s) {
    opened.add(s);
    return s;
  }

  static List<Object[]> putChain(BlockStore s, int seed, int blocks, int size) {
    List<Object[]> chain = TestChains.metas(TestChains.tokens(seed, blocks), size);
    for (Object[] b : chain) {
      assertThat(s.put((BlockMeta) b[0], (byte[]) b[1], false, new ArrayList<>())).isTrue();
    }
    return chain;
  }

  static BlockKey key(List<Object[]> chain, int i) {
    return ((BlockMeta) chain.get(i)[0]).key();
  }

  static byte[] read(BlockStore s, BlockKey k) {
    List<BlockStore.Entry> held = s.acquire(List.of(k));
    try {
      return s.read(held.get(0)).toByteArray();
    } finally {
      s.release(held);
    }
  }

  @Test
  void memoryTierRoundTripAndLookup() throws IOException {
    BlockStore s = memoryOnly(1 << 20);
    List<Object[]> chain = putChain(s, 1, 3, 100_000);
    for (int i = 0; i < 3; i++) {
      assertThat(read(s, key(chain, i))).isEqualTo((byte[]) chain.get(i)[1]);
    }
    // A duplicate put is accepted and changes nothing.
    assertThat(
            s.put((BlockMeta) chain.get(0)[0], (byte[]) chain.get(0)[1], false, new ArrayList<>()))
        .isFalse();
    int[] longer = TestChains.tokens(1, 5);
    assertThat(s.lookup(TestChains.keys(longer), 0).keys()).hasSize(3);
    BlockStore.Snapshot snap = s.snapshot();
    assertThat(snap.blocks()).isEqualTo(3);
    assertThat(snap.memHits()).isEqualTo(3);
    assertThat(snap.memBytes()).isEqualTo(300_000);
  }

  @Test
  void aBlockWhoseParentIsNotStoredIsRefused() throws IOException {
    BlockStore s = memoryOnly(1 << 20);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(1, 2), 1000);
    assertThatThrownBy(
            () ->
                s.put(
                    (BlockMeta) chain.get(1)[0],
                    (byte[]) chain.get(1)[1],
                    false,
                    new ArrayList<>()))
        .isInstanceOfSatisfying(
            BlockStore.StoreException.class,
            e -> assertThat(e.kind).isEqualTo(BlockStore.StoreException.Kind.MISSING_PARENT))
        .hasMessageContaining("header.parent_key");
  }

  @Test
  void diskTierRoundTripAndRestartKeepsIt() throws IOException {
    BlockStore s = withDisk(0, 10 << 20, 4 << 20);
    List<Object[]> chain = putChain(s, 2, 4, 70_000);
    assertThat(s.inMemory(key(chain, 0))).isFalse(); // no memory tier
    for (int i = 0; i < 4; i++) {
      assertThat(read(s, key(chain, i))).isEqualTo((byte[]) chain.get(i)[1]);
    }
    assertThat(s.snapshot().diskHits()).isEqualTo(4);
    s.close();

    BlockStore again = withDisk(1 << 20, 10 << 20, 4 << 20);
    assertThat(again.lookup(TestChains.keys(TestChains.tokens(2, 4)), 0).keys()).hasSize(4);
    for (int i = 0; i < 4; i++) {
      assertThat(read(again, key(chain, i))).isEqualTo((byte[]) chain.get(i)[1]);
      // Read root first, so each block's parent is in memory and it is promoted.
      assertThat(again.inMemory(key(chain, i))).isTrue();
    }
    assertThat(read(again, key(chain, 3))).isEqualTo((byte[]) chain.get(3)[1]);
    assertThat(again.snapshot().memHits()).isEqualTo(1);
  }

  @Test
  void promotionNeverLeavesAGapInMemory() throws IOException {
    BlockStore s = withDisk(0, 10 << 20, 4 << 20);
    List<Object[]> chain = putChain(s, 3, 2, 1000);
    s.close();
    BlockStore again = withDisk(1 << 20, 10 << 20, 4 << 20);
    read(again, key(chain, 1)); // its parent is not in memory
    assertThat(again.inMemory(key(chain, 1))).isFalse();
    read(again, key(chain, 0));
    read(again, key(chain, 1));
    assertThat(again.inMemory(key(chain, 0))).isTrue();
    assertThat(again.inMemory(key(chain, 1))).isTrue();
  }

  /** Least recently used first, but a block only after its children. */
  @Test
  void evictionTakesChildrenBeforeParentsInLeastRecentlyUsedOrder() throws IOException {
    BlockStore s = memoryOnly(6L * PAGE);
    List<Object[]> a = putChain(s, 1, 3, ONE_PAGE);
    List<Object[]> b = putChain(s, 2, 3, ONE_PAGE);
    List<Object[]> c = TestChains.metas(TestChains.tokens(3, 3), ONE_PAGE);
    s.put((BlockMeta) c.get(0)[0], (byte[]) c.get(0)[1], false, new ArrayList<>());
    assertThat(s.contains(key(a, 2))).as("a2: the oldest leaf").isFalse();
    assertThat(s.contains(key(a, 1))).isTrue();
    s.put((BlockMeta) c.get(1)[0], (byte[]) c.get(1)[1], false, new ArrayList<>());
    assertThat(s.contains(key(a, 1))).as("a1: a leaf now, older than b2").isFalse();
    assertThat(s.contains(key(a, 0))).isTrue();
    s.lookup(TestChains.keys(TestChains.tokens(2, 3)), 0); // chain b is used again
    s.put((BlockMeta) c.get(2)[0], (byte[]) c.get(2)[1], false, new ArrayList<>());
    assertThat(s.contains(key(a, 0))).isFalse();
    List<Object[]> d = TestChains.metas(TestChains.tokens(4, 1), ONE_PAGE);
    s.put((BlockMeta) d.get(0)[0], (byte[]) d.get(0)[1], false, new ArrayList<>());
    // c0 and c1 are older but have children; b2 is the least recently used leaf.
    assertThat(s.contains(key(b, 2))).isFalse();
    for (BlockKey k : List.of(key(b, 0), key(b, 1), key(c, 0), key(c, 1), key(c, 2))) {
      assertThat(s.contains(k)).as("%s", k).isTrue();
    }
    assertThat(s.snapshot().memEvictions()).isEqualTo(4);
  }

  @Test
  void pinnedLeasedAndHeldBlocksAreNeverEvicted() throws IOException {
    BlockStore s = memoryOnly(2L * PAGE);
    List<Object[]> x = putChain(s, 1, 1, ONE_PAGE);
    List<Object[]> y = putChain(s, 2, 1, ONE_PAGE);
    long[] pin = s.pin(List.of(key(x, 0)), 10_000);
    BlockStore.LookupResult lease = s.lookup(TestChains.keys(TestChains.tokens(2, 1)), 500);
    assertThat(lease.leaseId()).isPositive();
    List<Object[]> z = TestChains.metas(TestChains.tokens(3, 1), ONE_PAGE);
    assertThatThrownBy(
            () -> s.put((BlockMeta) z.get(0)[0], (byte[]) z.get(0)[1], false, new ArrayList<>()))
        .isInstanceOfSatisfying(
            BlockStore.StoreException.class,
            e -> assertThat(e.kind).isEqualTo(BlockStore.StoreException.Kind.NO_ROOM));
    assertThat(s.snapshot().leases()).isEqualTo(2);

    clock.addAndGet(600); // y's lease is over, x's pin is not
    s.put((BlockMeta) z.get(0)[0], (byte[]) z.get(0)[1], false, new ArrayList<>());
    assertThat(s.contains(key(y, 0))).isFalse();
    assertThat(s.contains(key(x, 0))).isTrue();

    // A block held by a reader is not evicted either.
    List<BlockStore.Entry> held = s.acquire(List.of(key(z, 0)));
    List<Object[]> w = TestChains.metas(TestChains.tokens(4, 1), ONE_PAGE);
    assertThatThrownBy(
            () -> s.put((BlockMeta) w.get(0)[0], (byte[]) w.get(0)[1], false, new ArrayList<>()))
        .isInstanceOf(BlockStore.StoreException.class);
    s.release(held);

    assertThat(s.unpin(pin[0])).isTrue();
    assertThat(s.unpin(pin[0])).isFalse();
    s.put((BlockMeta) w.get(0)[0], (byte[]) w.get(0)[1], false, new ArrayList<>());
    assertThat(s.contains(key(x, 0))).as("x: unpinned and least recently used").isFalse();
    assertThat(s.snapshot().leases()).isZero();
  }

  @Test
  void aPinnedBlockKeepsItsWholePrefix() throws IOException {
    BlockStore s = memoryOnly(2L * PAGE);
    List<Object[]> p = putChain(s, 1, 2, ONE_PAGE);
    s.pin(List.of(key(p, 1)), 10_000);
    List<Object[]> q = TestChains.metas(TestChains.tokens(2, 1), ONE_PAGE);
    assertThatThrownBy(
            () -> s.put((BlockMeta) q.get(0)[0], (byte[]) q.get(0)[1], false, new ArrayList<>()))
        .isInstanceOf(BlockStore.StoreException.class);
    assertThat(s.contains(key(p, 0))).isTrue();
  }

  @Test
  void diskEvictionSurvivesRestartAndNothingEvictedComesBack() throws IOException {
    long record =
        DiskTier.recordBytes(
            (BlockMeta) TestChains.metas(TestChains.tokens(1, 1), 50_000).get(0)[0]);
    BlockStore s = withDisk(0, 5 * record, 1 << 20);
    List<Object[]> a = putChain(s, 1, 3, 50_000);
    List<Object[]> b = putChain(s, 2, 3, 50_000); // one block over budget: a2 goes
    assertThat(s.contains(key(a, 2))).isFalse();
    assertThat(s.snapshot().diskEvictions()).isEqualTo(1);
    s.close();
    BlockStore again = withDisk(0, 5 * record, 1 << 20);
    assertThat(again.contains(key(a, 2))).isFalse();
    assertThat(again.snapshot().blocks()).isEqualTo(5);
    for (int i = 0; i < 3; i++) {
      assertThat(read(again, key(b, i))).isEqualTo((byte[]) b.get(i)[1]);
    }
  }

  @Test
  void compactionReclaimsDeadSegmentsAndKeepsLiveBlocks() throws IOException {
    long record =
        DiskTier.recordBytes(
            (BlockMeta) TestChains.metas(TestChains.tokens(1, 1), 100_000).get(0)[0]);
    BlockStore s = withDisk(0, 12 * record, 4 * record + 10);
    List<List<Object[]>> chains = new ArrayList<>();
    for (int seed = 1; seed <= 12; seed++) {
      chains.add(putChain(s, seed, 2, 100_000)); // 24 blocks through a 12-block budget
    }
    assertThat(s.snapshot().blocks()).isEqualTo(12);
    assertThat(segmentFiles().size()).as("dead segments removed").isLessThanOrEqualTo(6);
    s.close();
    BlockStore again = withDisk(0, 12 * record, 4 * record + 10);
    assertThat(again.snapshot().blocks()).isEqualTo(12);
    for (List<Object[]> c : chains.subList(6, 12)) {
      for (int i = 0; i < 2; i++) {
        assertThat(read(again, key(c, i))).isEqualTo((byte[]) c.get(i)[1]);
      }
    }
  }

  /** A flipped payload byte is caught on read: the block and its descendants are dropped. */
  @Test
  void aFlippedByteOnDiskIsDetectedAndTheBlockDropped() throws IOException {
    BlockStore s = withDisk(0, 10 << 20, 4 << 20);
    List<Object[]> chain = putChain(s, 5, 3, 20_000);
    s.close();
    flipFirstOccurrence(((byte[]) chain.get(1)[1]), 1000);

    BlockStore again = withDisk(1 << 20, 10 << 20, 4 << 20);
    assertThat(read(again, key(chain, 0))).isEqualTo((byte[]) chain.get(0)[1]);
    assertThatThrownBy(() -> read(again, key(chain, 1)))
        .isInstanceOfSatisfying(
            BlockStore.StoreException.class,
            e -> assertThat(e.kind).isEqualTo(BlockStore.StoreException.Kind.CORRUPT))
        .hasMessageContaining("1 blocks below it were dropped");
    BlockStore.Snapshot snap = again.snapshot();
    assertThat(snap.diskCorrupt()).isEqualTo(1);
    assertThat(snap.droppedBlocks()).isEqualTo(2);
    assertThat(again.contains(key(chain, 2))).isFalse();
    assertThat(again.lookup(TestChains.keys(TestChains.tokens(5, 3)), 0).keys()).hasSize(1);
    again.close();

    BlockStore third = withDisk(0, 10 << 20, 4 << 20);
    assertThat(third.snapshot().blocks()).as("the drop was persisted").isEqualTo(1);
  }

  /** A corrupt record header is skipped at start; what hung below it is dropped as orphans. */
  @Test
  void aCorruptHeaderIsSkippedAtStartAndItsDescendantsDropped() throws IOException {
    BlockStore s = withDisk(0, 10 << 20, 4 << 20);
    List<Object[]> chain = putChain(s, 6, 3, 20_000);
    List<Object[]> other = putChain(s, 7, 1, 20_000);
    s.close();
    flipFirstOccurrence(key(chain, 1).bytes(), 3); // the key inside block 1's own header

    BlockStore again = withDisk(0, 10 << 20, 4 << 20);
    BlockStore.Snapshot snap = again.snapshot();
    assertThat(snap.diskCorrupt()).isEqualTo(1);
    assertThat(again.contains(key(chain, 0))).isTrue();
    assertThat(again.contains(key(chain, 1))).isFalse();
    assertThat(again.contains(key(chain, 2))).as("an orphan").isFalse();
    assertThat(read(again, key(other, 0))).isEqualTo((byte[]) other.get(0)[1]);
  }

  // ---- puts straight into reserved pages ----

  /**
   * Puts {@code chain} as a Put stream does when the store reserves pages: each payload written
   * into its pages in chunks of {@code chunk} bytes (so writes straddle page boundaries), then
   * committed. Fails if a reservation is refused.
   */
  static void putIntoPages(BlockStore s, List<Object[]> chain, int chunk) {
    for (Object[] b : chain) {
      BlockMeta m = (BlockMeta) b[0];
      byte[] payload = (byte[]) b[1];
      BlockStore.Reservation r = s.reserve(m);
      assertThat(r).as("pages reserved").isNotNull();
      for (int off = 0; off < payload.length; off += chunk) {
        s.write(r, off, ByteString.copyFrom(payload, off, Math.min(chunk, payload.length - off)));
      }
      assertThat(s.commit(m, r, false, new ArrayList<>())).isTrue();
    }
  }

  @Test
  void blocksPutStraightIntoPagesReadBackFromMemoryAndFromDiskAfterARestart() throws IOException {
    int size = 2 * PAGE + 12_345; // three pages, the last one partly used
    List<Object[]> chain = TestChains.metas(TestChains.tokens(11, 3), size);
    BlockStore s = withDisk(16 << 20, 64 << 20, 8 << 20);
    putIntoPages(s, chain, 50_000);
    for (int i = 0; i < chain.size(); i++) {
      assertThat(s.inMemory(key(chain, i))).isTrue();
      assertThat(read(s, key(chain, i))).isEqualTo((byte[]) chain.get(i)[1]);
    }
    assertThat(s.usedPages()).isEqualTo(9);
    s.close();

    BlockStore again = withDisk(0, 64 << 20, 8 << 20); // no memory: every read is from disk
    for (int i = 0; i < chain.size(); i++) {
      assertThat(read(again, key(chain, i))).isEqualTo((byte[]) chain.get(i)[1]);
    }
    assertThat(again.snapshot().diskHits()).isEqualTo(3);
  }

  @Test
  void anAbandonedReservationLeavesNoBlockAndFreesItsPages() throws IOException {
    BlockStore s = memoryOnly(2 * PAGE);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(12, 1), 2 * PAGE);
    BlockMeta m = (BlockMeta) chain.get(0)[0];
    BlockStore.Reservation r = s.reserve(m);
    assertThat(r).isNotNull();
    s.write(r, 0, ByteString.copyFrom((byte[]) chain.get(0)[1], 0, PAGE + 1));
    assertThat(s.reserve(m)).as("the whole budget is reserved").isNull();
    s.abandon(r);
    s.abandon(r); // idempotent, as a stream that fails and is then cancelled ends twice
    assertThat(s.contains(m.key())).isFalse();
    assertThat(s.usedPages()).isZero();
    putIntoPages(s, chain, PAGE);
    assertThat(read(s, m.key())).isEqualTo((byte[]) chain.get(0)[1]);
  }

  @Test
  void aCommitThatStoresNothingFreesItsPages() throws IOException {
    BlockStore s = memoryOnly(3 * PAGE);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(13, 2), ONE_PAGE);
    putChain(s, 13, 1, ONE_PAGE);
    BlockMeta parent = (BlockMeta) chain.get(0)[0];
    BlockMeta child = (BlockMeta) chain.get(1)[0];

    // A duplicate: another stream stored the block while this one received it.
    BlockStore.Reservation dup = s.reserve(parent);
    s.write(dup, 0, ByteString.copyFrom((byte[]) chain.get(0)[1]));
    assertThat(s.commit(parent, dup, false, new ArrayList<>())).isFalse();
    assertThat(s.usedPages()).isEqualTo(1);

    // The parent is evicted while the child is received (a reservation for another chain needs
    // its page): the child's commit is refused and its pages are freed.
    BlockStore.Reservation r = s.reserve(child);
    s.write(r, 0, ByteString.copyFrom((byte[]) chain.get(1)[1]));
    List<Object[]> other = TestChains.metas(TestChains.tokens(14, 1), 2 * PAGE);
    BlockStore.Reservation big = s.reserve((BlockMeta) other.get(0)[0]);
    assertThat(big).isNotNull();
    assertThat(s.contains(parent.key())).isFalse();
    assertThatThrownBy(() -> s.commit(child, r, false, new ArrayList<>()))
        .isInstanceOfSatisfying(
            BlockStore.StoreException.class,
            e -> assertThat(e.kind).isEqualTo(BlockStore.StoreException.Kind.MISSING_PARENT));
    assertThat(s.contains(child.key())).isFalse();
    assertThat(s.usedPages()).as("only the other reservation's pages").isEqualTo(2);
    s.abandon(big);
    assertThat(s.usedPages()).isZero();
  }

  @Test
  void aDiskOnlyParentKeepsItsChildOutOfMemory() throws IOException {
    BlockStore s = withDisk(PAGE, 16 << 20, 4 << 20);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(15, 2), ONE_PAGE);
    putIntoPages(s, chain.subList(0, 1), 10_000);
    // Another root takes the one page: the parent's memory copy goes, its disk copy stays.
    putIntoPages(s, TestChains.metas(TestChains.tokens(16, 1), ONE_PAGE), 10_000);
    assertThat(s.inMemory(key(chain, 0))).isFalse();
    assertThat(s.reserve((BlockMeta) chain.get(1)[0]))
        .as("no pages for a child whose parent has no memory copy")
        .isNull();
  }

  /** A stream the drain cancels may end after the store closed: its reservation ends quietly. */
  @Test
  void aReservationOutlivingTheStoreIsAbandonedQuietly() throws IOException {
    BlockStore s = memoryOnly(2 * PAGE);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(18, 2), ONE_PAGE);
    BlockStore.Reservation r = s.reserve((BlockMeta) chain.get(0)[0]);
    s.close();
    s.abandon(r);
    assertThat(s.reserve((BlockMeta) chain.get(0)[0])).as("no pages after close").isNull();
  }

  /** A payload byte flipped on disk after a put into pages is caught on read, never served. */
  @Test
  void aFlippedByteOfABlockPutIntoPagesIsDetected() throws IOException {
    BlockStore s = withDisk(1 << 20, 10 << 20, 4 << 20);
    List<Object[]> chain = TestChains.metas(TestChains.tokens(17, 2), 20_000);
    putIntoPages(s, chain, 7_000);
    s.close();
    flipFirstOccurrence((byte[]) chain.get(1)[1], 500);

    BlockStore again = withDisk(1 << 20, 10 << 20, 4 << 20);
    assertThat(read(again, key(chain, 0))).isEqualTo((byte[]) chain.get(0)[1]);
    assertThatThrownBy(() -> read(again, key(chain, 1)))
        .isInstanceOfSatisfying(
            BlockStore.StoreException.class,
            e -> assertThat(e.kind).isEqualTo(BlockStore.StoreException.Kind.CORRUPT));
    assertThat(again.snapshot().diskCorrupt()).isEqualTo(1);
  }

  private List<Path> segmentFiles() throws IOException {
    try (Stream<Path> f = Files.list(dir.resolve("blocks"))) {
      return f.toList();
    }
  }

  /** Flips a bit of the byte {@code at} within the first place {@code needle} occurs on disk. */
  private void flipFirstOccurrence(byte[] needle, int at) throws IOException {
    byte[] probe = java.util.Arrays.copyOf(needle, 32);
    for (Path p : segmentFiles()) {
      byte[] file = Files.readAllBytes(p);
      for (int i = 0; i + probe.length <= file.length; i++) {
        if (java.util.Arrays.equals(file, i, i + probe.length, probe, 0, probe.length)) {
          try (FileChannel ch = FileChannel.open(p, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {(byte) (file[i + at] ^ 0x10)}), i + at);
          }
          return;
        }
      }
    }
    throw new AssertionError("needle not found on disk");
  }
}
