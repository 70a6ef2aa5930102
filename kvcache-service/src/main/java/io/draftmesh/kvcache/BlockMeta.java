package io.draftmesh.kvcache;

/**
 * What the store knows about a block besides its bytes: its identity and its payload's size and
 * CRC32C. Immutable (the token array is never modified after construction).
 *
 * @param key the block's chained key
 * @param parent the previous block's key, or null for a chain's first block
 * @param fingerprint the model fingerprint the chain is seeded by
 * @param tokens the block's token ids (block_size of them)
 * @param size payload bytes
 * @param crc32c CRC32C of the payload
 */
record BlockMeta(
    BlockKey key, BlockKey parent, BlockKey fingerprint, int[] tokens, int size, int crc32c) {}
