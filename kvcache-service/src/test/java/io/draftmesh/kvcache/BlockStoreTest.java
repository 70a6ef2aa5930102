package io.draftmesh.kvcache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
