/* replay_block.h: transition blocks, the unit an actor sends to its replay shard (architecture.md
 * "The distributed job": an actor appends transitions to a block; full blocks are compressed with
 * zstd and sent to its shard; "Transitions are stored narrow").
 *
 * A block is n rows (replay_rows) in a narrow columnar byte layout, compressed as ONE framed zstd
 * block of io_zstd.h (magic, version, sizes, XXH32 checksums of header and payload). The raw
 * (uncompressed) bytes, all integers and floats little-endian, are
 *
 *   header, 40 bytes:
 *      0  4  magic "HSRB" (u32 0x42525348)        4  2  format version REPLAY_BLOCK_VERSION
 *      6  2  flags: 1 tokens present, 2 tokens are uint16 (else uint8), 4 log-probs present
 *      8  4  n rows     12  4  H     16  4  K     20  4  L
 *     24  4  n_next_users_stored     28  4  n_next_history_stored
 *     32  8  config hash of the writer (u64)
 *   sections, in this order (bits: bit j of byte j/8, row-major, the pad bits of the last byte 0):
 *     users           int32 (n)
 *     policy_version  int32 (n)
 *     reward          float32 (n)
 *     done            bits (n)
 *     history         int32 (n, H)
 *     slate           int32 (n, K)
 *     clicks          bits (n, K)
 *     tokens          uint8 or uint16 (n, K, L)            when L > 0
 *     behaviour_logp  float32 (n, K, L)                    when log-probs are carried
 *     next_users      bits (n): 1 = stored; then int32 of the stored rows in row order. A row
 *                     whose next user equals its user is "derived" (the usual case: sim_env.h
 *                     keeps the user in s', also for a finished row)
 *     next_history    bits (n): 1 = stored; then int32 (n_stored, H). A row whose next history
 *                     is replay_rows_next_history(history, slate, clicks) is "derived" (checked
 *                     row by row when packing; the environment always gives it)
 * Tokens are uint8 when the writer's config says every vocabulary V <= 256, else uint16.
 * The columnar layout puts like values together (ids with ids, bits with bits) for zstd.
 *
 * Unpacking validates everything a reader relies on and names the field (and row) in its error:
 * the frame (io_zstd: HSRL_E_CORRUPT), magic, version, flags, section sizes, stored counts and
 * pad bits (HSRL_E_CORRUPT), and (HSRL_E_INPUT) a shape (H, K, L, log-probs) or config hash
 * other than the reader's, more rows than it can hold, and values no writer may send: user and
 * slate ids < 1, history ids < 0, a token >= the vocabulary, a non-finite reward or log-prob, a
 * negative policy version.
 *
 * Memory: replay_block_init allocates the raw buffer and the zstd contexts for max_rows rows;
 * pack and unpack allocate nothing. One context per thread. */
#ifndef REPLAY_BLOCK_H
#define REPLAY_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_status.h"
#include "replay/replay_rows.h"

#define REPLAY_BLOCK_MAGIC 0x42525348u /* "HSRB" read as a little-endian u32 */
#define REPLAY_BLOCK_VERSION 1
#define REPLAY_BLOCK_HEADER_SIZE 40

typedef struct replay_block_config {
  replay_rows_shape shape;
  int64_t max_rows;     /* rows of the largest block packed or unpacked */
  int64_t max_vocab;    /* largest SID vocabulary V over the levels; <= 256: tokens as uint8;
                           0: unknown (uint16, no range check) */
  uint64_t config_hash; /* written into every block; unpack rejects another nonzero hash (0: no check) */
  int level;            /* zstd level, e.g. IO_ZSTD_DEFAULT_LEVEL */
} replay_block_config;

/* Figures of one packed or unpacked block. */
typedef struct replay_block_stats {
  int64_t n_rows;
  int64_t raw_bytes;    /* narrow layout before compression (header included) */
  int64_t framed_bytes; /* the framed zstd block (io_zstd header included) */
  int64_t n_next_users_stored, n_next_history_stored;
  int tokens_u16;
  uint64_t config_hash;
} replay_block_stats;

typedef struct replay_block replay_block;

/* HSRL_E_USAGE for a bad zstd level or max_vocab > 65536; checks (bugs) on the shape. */
hsrl_status replay_block_init(replay_block **out, const replay_block_config *cfg);
void replay_block_free(replay_block *b); /* NULL ok */
const replay_block_config *replay_block_get_config(const replay_block *b);

/* Raw bytes of a block of n rows of this shape with the given stored counts and token width. */
int64_t replay_block_raw_size(const replay_rows_shape *s, int64_t n, int64_t n_next_users_stored,
                              int64_t n_next_history_stored, int tokens_u16);
/* Capacity a destination buffer needs for any block of up to max_rows rows. */
size_t replay_block_bound(const replay_block *b);

/* Packs rows (1..max_rows of them; every field of the shape present) and compresses them into
 * dst (dst_cap >= replay_block_bound to be sure); *out_size = framed bytes; stats may be NULL.
 * Checks (bugs): clicks and done are 0/1, tokens < max_vocab when it is known. */
hsrl_status replay_block_pack(replay_block *b, void *dst, size_t dst_cap, const replay_rows *rows,
                              size_t *out_size, replay_block_stats *stats);

/* Decompresses and validates the block src (src_size framed bytes) into rows [0, n) of dst
 * (dst->capacity >= n, the reader's shape); *n_rows = n; stats may be NULL. `source` names the
 * sender in messages ("block from rank 3"). On error dst's contents are unspecified. */
hsrl_status replay_block_unpack(replay_block *b, replay_rows_buf *dst, const void *src,
                                size_t src_size, const char *source, int64_t *n_rows,
                                replay_block_stats *stats);

#endif
