/* io_zstd.h: zstd compression of self-checking blocks, with contexts reused across calls.
 *
 * Used wherever bytes leave a process outside HDF5: the transition blocks an actor sends to its
 * replay shard (architecture.md, "The distributed job"), and any other framed payload. A block is
 *
 *   offset size  field
 *        0    4  magic "HSZB" (bytes 'H' 'S' 'Z' 'B'; the u32 0x425A5348 little-endian)
 *        4    2  format version, IO_ZSTD_VERSION (u16 LE)
 *        6    2  flags, 0 in version 1 (u16 LE; a reader rejects bits it does not know)
 *        8    8  raw size: bytes before compression (u64 LE)
 *       16    8  payload size: bytes of zstd payload after this header (u64 LE)
 *       24    4  payload checksum: io_zstd_xxh32(payload, payload size, 0) (u32 LE)
 *       28    4  header checksum: io_zstd_xxh32(bytes 0..27, 28, 0) (u32 LE)
 *       32       payload: one zstd frame holding the raw bytes (content size recorded)
 *
 * All integers are little-endian whatever the host, so blocks move between machines. The two
 * checksums let a reader reject a damaged block before zstd sees it: a bad magic, unknown
 * version or flags, inconsistent sizes, a wrong checksum or a truncated block each give
 * HSRL_E_CORRUPT with a message saying which. A block is self-delimiting
 * (IO_ZSTD_HEADER_SIZE + payload size), so blocks can be concatenated in a stream; use
 * io_zstd_block_peek() to learn a block's sizes before decompressing it ("size then place").
 *
 * Memory: io_zstd_init() makes the one allocation of a context's lifetime. The zstd compression
 * and decompression contexts are placed in workspaces sized at init for the largest block the
 * context will see (ZSTD_initStaticCCtx / ZSTD_initStaticDCtx), so zstd itself can never allocate
 * afterwards and compress/decompress allocate nothing. A context is not thread-safe: use one per
 * thread. The static-context functions are in zstd's "static linking only" section; they have
 * been stable since zstd 1.3 and are exported by the shared library. */
#ifndef IO_ZSTD_H
#define IO_ZSTD_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_status.h"

#define IO_ZSTD_MAGIC 0x425A5348u /* "HSZB" read as a little-endian u32 */
#define IO_ZSTD_VERSION 1
#define IO_ZSTD_HEADER_SIZE 32
#define IO_ZSTD_DEFAULT_LEVEL 3

typedef struct io_zstd io_zstd;

/* Makes a context compressing at `level` (1..22, or a negative "fast" level) blocks of at most
 * max_block_size raw bytes. HSRL_E_USAGE for a level zstd does not have, HSRL_E_INTERNAL if zstd
 * refuses the workspace. */
hsrl_status io_zstd_init(io_zstd **out, int level, size_t max_block_size);
void io_zstd_free(io_zstd *z); /* NULL ok */

/* Largest framed size a block of n raw bytes can take: size dst with it. */
size_t io_zstd_bound(size_t n);

/* Compresses src[0..n) into one framed block at dst (dst_cap bytes, at least io_zstd_bound(n)
 * to be sure) and stores its total size (header + payload) in *out_size. n may be 0.
 * HSRL_E_INTERNAL if n exceeds the context's max_block_size or dst is too small. */
hsrl_status io_zstd_compress_block(io_zstd *z, void *dst, size_t dst_cap, const void *src, size_t n,
                                   size_t *out_size);

/* Checks the header of the block at src (src_size bytes available) and reports its raw size and
 * its total framed size; either pointer may be NULL. HSRL_E_CORRUPT when fewer than
 * IO_ZSTD_HEADER_SIZE bytes are available, or the magic, version, flags or header checksum are
 * wrong. Does not look at the payload. */
hsrl_status io_zstd_block_peek(const void *src, size_t src_size, uint64_t *raw_size,
                               uint64_t *block_size);

/* Decompresses exactly one block: src_size must be the block's framed size. Writes the raw bytes
 * to dst (dst_cap bytes) and their count to *out_size. HSRL_E_CORRUPT for any damage (header as
 * in io_zstd_block_peek, truncated or over-long input, payload checksum, zstd errors, or a raw
 * size that differs from the header's); HSRL_E_INPUT if dst_cap is smaller than the raw size. */
hsrl_status io_zstd_decompress_block(io_zstd *z, void *dst, size_t dst_cap, const void *src,
                                     size_t src_size, size_t *out_size);

/* XXH32 (xxHash, 32-bit) of n bytes with the given seed: the block checksum, exported so that
 * other framed formats (message headers) use the same one. */
uint32_t io_zstd_xxh32(const void *data, size_t n, uint32_t seed);

#endif
