package io.draftmesh.kvcache;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The off-heap memory tier's space: a byte budget cut into fixed pages of {@link #PAGE_BYTES}, held
 * in direct buffers of up to {@link #CHUNK_BYTES} that are allocated only when the pages before
 * them are in use (a large budget costs nothing until it is filled). A block occupies {@code
 * ceil(size / PAGE_BYTES)} pages, not necessarily adjacent, so there is no fragmentation.
 *
 * <p>Allocation and freeing are not thread-safe (the {@link BlockStore} lock guards them); reading
 * and writing the pages of one allocation are, since absolute bulk access never moves a buffer's
 * position and an allocation's pages belong to one block until it is freed. A {@link #view} reads
 * the pages in place, so its pages must stay allocated while it is read (the store frees a block's
 * pages only when no reader holds it).
 */
final class MemoryTier {
  /** Bytes per page: a block wastes less than one page. */
  static final int PAGE_BYTES = 64 * 1024;

  /** Bytes per direct buffer (a multiple of the page size). */
  static final int CHUNK_BYTES = 64 * 1024 * 1024;

  private static final int PAGES_PER_CHUNK = CHUNK_BYTES / PAGE_BYTES;

  private final long budgetBytes;
  private final int totalPages;
  // Chunk c holds pages [c * PAGES_PER_CHUNK, (c + 1) * PAGES_PER_CHUNK). Replaced, never
  // modified, when it grows, so readers outside the store lock see a consistent array.
  private volatile ByteBuffer[] chunks = new ByteBuffer[0];
  private int[] freeStack; // free page indices of allocated chunks
  private int freeCount;
  private int usedPages;

  MemoryTier(long budgetBytes) {
    this.budgetBytes = budgetBytes;
    long pages = budgetBytes / PAGE_BYTES;
    this.totalPages = (int) Math.min(Integer.MAX_VALUE, pages);
    this.freeStack = new int[0];
  }

  long budgetBytes() {
    return budgetBytes;
  }

  /** Pages a block of {@code size} bytes needs. */
  static int pagesFor(long size) {
    return (int) ((size + PAGE_BYTES - 1) / PAGE_BYTES);
  }

  /** Whether {@code pages} more pages fit in the budget right now. */
  boolean fits(int pages) {
    return usedPages + pages <= totalPages;
  }

  /** Whether a block of {@code size} bytes could ever fit (the whole budget). */
  boolean couldEverFit(long size) {
    return pagesFor(size) <= totalPages;
  }

  int usedPages() {
    return usedPages;
  }

  /** The pages of a new block of {@code size} bytes, or null when they do not fit now. */
  int[] allocate(long size) {
    int n = pagesFor(size);
    if (!fits(n)) {
      return null;
    }
    while (freeCount < n) {
      addChunk();
    }
    int[] pages = new int[n];
    for (int i = 0; i < n; i++) {
      pages[i] = freeStack[--freeCount];
    }
    usedPages += n;
    return pages;
  }

  void free(int[] pages) {
    for (int p : pages) {
      freeStack[freeCount++] = p;
    }
    usedPages -= pages.length;
  }

  /** Copies {@code src} into {@code pages}. */
  void write(int[] pages, byte[] src) {
    int off = 0;
    for (int p : pages) {
      int n = Math.min(PAGE_BYTES, src.length - off);
      chunks[p / PAGES_PER_CHUNK].duplicate().put((p % PAGES_PER_CHUNK) * PAGE_BYTES, src, off, n);
      off += n;
    }
  }

  /**
   * Copies {@code src}'s remaining bytes into {@code pages} from byte {@code offset} of the block
   * on (a Put's chunk, straight from the transport's buffer); {@code src}'s position is not moved.
   */
  void write(int[] pages, int offset, ByteBuffer src) {
    int from = src.position();
    int left = src.remaining();
    while (left > 0) {
      int p = pages[offset / PAGE_BYTES];
      int inPage = offset % PAGE_BYTES;
      int n = Math.min(PAGE_BYTES - inPage, left);
      chunks[p / PAGES_PER_CHUNK].put((p % PAGES_PER_CHUNK) * PAGE_BYTES + inPage, src, from, n);
      from += n;
      offset += n;
      left -= n;
    }
  }

  /**
   * The {@code size} bytes held in {@code pages}, not copied: a read-only view of the pages, valid
   * while they stay allocated to the block (a Get sends it straight into the transport).
   */
  ByteString view(int[] pages, int size) {
    List<ByteString> parts = new ArrayList<>(pages.length);
    for (ByteBuffer page : pageBuffers(pages, size)) {
      parts.add(UnsafeByteOperations.unsafeWrap(page));
    }
    return ByteString.copyFrom(parts); // a rope over the pages: no bytes copied
  }

  /**
   * The {@code size} bytes held in {@code pages} as read-only buffers over the pages, one per page
   * (the disk tier writes a block from them), valid while the pages stay allocated.
   */
  ByteBuffer[] pageBuffers(int[] pages, int size) {
    ByteBuffer[] out = new ByteBuffer[pages.length];
    int off = 0;
    for (int i = 0; i < pages.length; i++) {
      int p = pages[i];
      int n = Math.min(PAGE_BYTES, size - off);
      int at = (p % PAGES_PER_CHUNK) * PAGE_BYTES;
      out[i] = chunks[p / PAGES_PER_CHUNK].asReadOnlyBuffer().position(at).limit(at + n).slice();
      off += n;
    }
    return out;
  }

  private void addChunk() {
    int first = chunks.length * PAGES_PER_CHUNK;
    int pages = Math.min(PAGES_PER_CHUNK, totalPages - first);
    if (pages <= 0) {
      throw new IllegalStateException("memory tier: no pages left to add (a fits() check missed)");
    }
    // Read by the page index arithmetic above, so the last chunk may be shorter but never longer.
    ByteBuffer[] grownChunks = Arrays.copyOf(chunks, chunks.length + 1);
    grownChunks[chunks.length] = ByteBuffer.allocateDirect(pages * PAGE_BYTES);
    chunks = grownChunks;
    int[] grown = new int[freeStack.length + pages];
    System.arraycopy(freeStack, 0, grown, 0, freeCount);
    freeStack = grown;
    for (int i = pages - 1; i >= 0; i--) {
      freeStack[freeCount++] = first + i;
    }
  }

  /** Drops the buffers (the GC frees direct memory). */
  void close() {
    chunks = new ByteBuffer[0];
    freeStack = new int[0];
    freeCount = 0;
    usedPages = 0;
  }
}
