/* replay_block.c: narrow transition blocks, zstd-framed (see replay_block.h for the layout). */
#include "replay/replay_block.h"

#include <math.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/io/io_zstd.h"

enum { BLOCK_F_TOKENS = 1, BLOCK_F_TOKENS_U16 = 2, BLOCK_F_LOGP = 4, BLOCK_F_ALL = 7 };

struct replay_block {
  replay_block_config cfg;
  int tokens_u16;   /* from cfg.max_vocab */
  int64_t raw_cap;  /* raw bytes of the largest block */
  uint8_t *raw;     /* (raw_cap) */
  io_zstd *zstd;
};

/* ---------------------------------------------------------------- little-endian bytes */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}
static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int64_t bit_bytes(int64_t n_bits) { return (n_bits + 7) / 8; }

/* ---------------------------------------------------------------- sizes */

int64_t replay_block_raw_size(const replay_rows_shape *s, int64_t n, int64_t n_next_users_stored,
                              int64_t n_next_history_stored, int tokens_u16) {
  const int64_t H = s->history_len, K = s->slate_size, KL = K * s->n_levels;
  int64_t b = REPLAY_BLOCK_HEADER_SIZE;
  b += 4 * n * 3 + bit_bytes(n);             /* users, policy_version, reward, done */
  b += 4 * n * H + 4 * n * K + bit_bytes(n * K); /* history, slate, clicks */
  b += n * KL * (tokens_u16 ? 2 : 1);        /* tokens */
  if (s->with_logp) b += 4 * n * KL;         /* behaviour_logp */
  b += bit_bytes(n) + 4 * n_next_users_stored;
  b += bit_bytes(n) + 4 * H * n_next_history_stored;
  return b;
}

size_t replay_block_bound(const replay_block *b) { return io_zstd_bound((size_t)b->raw_cap); }

const replay_block_config *replay_block_get_config(const replay_block *b) { return &b->cfg; }

hsrl_status replay_block_init(replay_block **out, const replay_block_config *cfg) {
  hsrl_status st = HSRL_OK;
  *out = NULL;
  replay_rows_shape_check(&cfg->shape);
  HSRL_CHECK(cfg->max_rows >= 1 && cfg->max_rows <= INT32_MAX);
  if (cfg->max_vocab < 0 || cfg->max_vocab > 65536)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "max_vocab",
                    "SID vocabulary %lld: tokens are stored in at most 16 bits",
                    (long long)cfg->max_vocab);
  replay_block *b = hsrl_calloc(1, sizeof *b);
  b->cfg = *cfg;
  b->tokens_u16 = cfg->max_vocab == 0 || cfg->max_vocab > 256;
  /* sized as if log-probs were carried, so that a block that carries them where this reader
   * expects none is refused for that reason (the header says so) rather than for its size */
  replay_rows_shape widest = cfg->shape;
  widest.with_logp = cfg->shape.n_levels > 0;
  b->raw_cap = replay_block_raw_size(&widest, cfg->max_rows, cfg->max_rows, cfg->max_rows, 1);
  b->raw = hsrl_malloc((size_t)b->raw_cap);
  HSRL_TRY(io_zstd_init(&b->zstd, cfg->level, (size_t)b->raw_cap));
  *out = b;
done:
  if (st != HSRL_OK) replay_block_free(b);
  return st;
}

void replay_block_free(replay_block *b) {
  if (!b) return;
  io_zstd_free(b->zstd);
  hsrl_free(b->raw);
  hsrl_free(b);
}

/* ---------------------------------------------------------------- pack */

/* Sets bits [0, n) of dst from the 0/1 bytes src (pad bits of the last byte 0). */
static uint8_t *pack_bits(uint8_t *dst, const uint8_t *src, int64_t n) {
  memset(dst, 0, (size_t)bit_bytes(n));
  for (int64_t j = 0; j < n; j++) dst[j >> 3] |= (uint8_t)((src[j] & 1u) << (j & 7));
  return dst + bit_bytes(n);
}
static uint8_t *pack_i32(uint8_t *p, const int32_t *v, int64_t n) {
  for (int64_t j = 0; j < n; j++, p += 4) put_u32(p, (uint32_t)v[j]);
  return p;
}
static uint8_t *pack_f32(uint8_t *p, const float *v, int64_t n) {
  for (int64_t j = 0; j < n; j++, p += 4) put_u32(p, f32_bits(v[j]));
  return p;
}

hsrl_status replay_block_pack(replay_block *b, void *dst, size_t dst_cap, const replay_rows *rows,
                              size_t *out_size, replay_block_stats *stats) {
  const replay_rows_shape *s = &b->cfg.shape;
  const int64_t n = rows->B, H = s->history_len, K = s->slate_size, KL = K * s->n_levels;
  HSRL_CHECKF(n >= 1 && n <= b->cfg.max_rows, "block of %lld rows, at most %lld", (long long)n,
              (long long)b->cfg.max_rows);
  HSRL_CHECK(rows->users && rows->history && rows->slate && rows->clicks && rows->reward &&
             rows->done && rows->next_users && rows->next_history && rows->policy_version);
  HSRL_CHECKF(KL == 0 || rows->tokens, "this block carries SID tokens: rows->tokens is NULL");
  HSRL_CHECKF(!s->with_logp || rows->behaviour_logp, "rows->behaviour_logp is NULL");
  for (int64_t j = 0; j < n * K; j++) HSRL_CHECKF(rows->clicks[j] <= 1, "click %d", rows->clicks[j]);
  for (int64_t j = 0; j < n; j++) HSRL_CHECKF(rows->done[j] <= 1, "done %d", rows->done[j]);
  if (b->cfg.max_vocab > 0)
    for (int64_t j = 0; j < n * KL; j++)
      HSRL_CHECKF(rows->tokens[j] < b->cfg.max_vocab, "token %d >= vocabulary %lld",
                  rows->tokens[j], (long long)b->cfg.max_vocab);

  int64_t n_nu = 0, n_nh = 0;
  for (int64_t i = 0; i < n; i++) {
    n_nu += rows->next_users[i] != rows->users[i];
    n_nh += !replay_rows_next_history_derived(rows->next_history + i * H, rows->history + i * H,
                                              rows->slate + i * K, rows->clicks + i * K, H, K);
  }
  const int64_t raw_size = replay_block_raw_size(s, n, n_nu, n_nh, b->tokens_u16);
  uint8_t *p = b->raw;
  put_u32(p, REPLAY_BLOCK_MAGIC);
  put_u16(p + 4, REPLAY_BLOCK_VERSION);
  put_u16(p + 6, (uint16_t)((KL ? BLOCK_F_TOKENS : 0) | (KL && b->tokens_u16 ? BLOCK_F_TOKENS_U16 : 0) |
                            (s->with_logp ? BLOCK_F_LOGP : 0)));
  put_u32(p + 8, (uint32_t)n);
  put_u32(p + 12, (uint32_t)H);
  put_u32(p + 16, (uint32_t)K);
  put_u32(p + 20, (uint32_t)s->n_levels);
  put_u32(p + 24, (uint32_t)n_nu);
  put_u32(p + 28, (uint32_t)n_nh);
  put_u64(p + 32, b->cfg.config_hash);
  p += REPLAY_BLOCK_HEADER_SIZE;
  p = pack_i32(p, rows->users, n);
  p = pack_i32(p, rows->policy_version, n);
  p = pack_f32(p, rows->reward, n);
  p = pack_bits(p, rows->done, n);
  p = pack_i32(p, rows->history, n * H);
  p = pack_i32(p, rows->slate, n * K);
  p = pack_bits(p, rows->clicks, n * K);
  if (KL && b->tokens_u16)
    for (int64_t j = 0; j < n * KL; j++, p += 2) put_u16(p, rows->tokens[j]);
  else
    for (int64_t j = 0; j < n * KL; j++) *p++ = (uint8_t)rows->tokens[j];
  if (s->with_logp) p = pack_f32(p, rows->behaviour_logp, n * KL);
  /* next users: flags, then the stored ones */
  uint8_t *flags = p;
  memset(flags, 0, (size_t)bit_bytes(n));
  p += bit_bytes(n);
  for (int64_t i = 0; i < n; i++) {
    if (rows->next_users[i] == rows->users[i]) continue;
    flags[i >> 3] |= (uint8_t)(1u << (i & 7));
    put_u32(p, (uint32_t)rows->next_users[i]);
    p += 4;
  }
  /* next histories: flags, then the stored ones */
  flags = p;
  memset(flags, 0, (size_t)bit_bytes(n));
  p += bit_bytes(n);
  for (int64_t i = 0; i < n; i++) {
    if (replay_rows_next_history_derived(rows->next_history + i * H, rows->history + i * H,
                                         rows->slate + i * K, rows->clicks + i * K, H, K))
      continue;
    flags[i >> 3] |= (uint8_t)(1u << (i & 7));
    p = pack_i32(p, rows->next_history + i * H, H);
  }
  HSRL_CHECK(p - b->raw == raw_size);

  hsrl_status st = io_zstd_compress_block(b->zstd, dst, dst_cap, b->raw, (size_t)raw_size, out_size);
  if (st != HSRL_OK) return st;
  if (stats) {
    stats->n_rows = n;
    stats->raw_bytes = raw_size;
    stats->framed_bytes = (int64_t)*out_size;
    stats->n_next_users_stored = n_nu;
    stats->n_next_history_stored = n_nh;
    stats->tokens_u16 = KL ? b->tokens_u16 : 0;
    stats->config_hash = b->cfg.config_hash;
  }
  return HSRL_OK;
}

/* ---------------------------------------------------------------- unpack */

typedef struct block_reader {
  const uint8_t *p, *end;
  const char *source;
} block_reader;

/* The next n bytes of section `field`, or NULL (with the error recorded) when they run past the
 * end of the block. */
static const uint8_t *take(block_reader *r, int64_t n, const char *field, hsrl_status *st) {
  if (n > r->end - r->p) {
    *st = hsrl_err(HSRL_E_CORRUPT, r->source, 0, field,
                   "block truncated: section needs %lld bytes, %lld left", (long long)n,
                   (long long)(r->end - r->p));
    return NULL;
  }
  const uint8_t *q = r->p;
  r->p += n;
  return q;
}

/* Bits [0, n) of src into 0/1 bytes; the pad bits of the last byte must be 0. */
static hsrl_status unpack_bits(uint8_t *dst, const uint8_t *src, int64_t n, const char *source,
                               const char *field) {
  for (int64_t j = 0; j < n; j++) dst[j] = (uint8_t)((src[j >> 3] >> (j & 7)) & 1u);
  if ((n & 7) && (src[n >> 3] >> (n & 7)))
    return hsrl_err(HSRL_E_CORRUPT, source, 0, field, "padding bits after bit %lld are set",
                    (long long)n);
  return HSRL_OK;
}

static void unpack_i32(int32_t *dst, const uint8_t *p, int64_t n) {
  for (int64_t j = 0; j < n; j++, p += 4) dst[j] = (int32_t)get_u32(p);
}
static void unpack_f32(float *dst, const uint8_t *p, int64_t n) {
  for (int64_t j = 0; j < n; j++, p += 4) dst[j] = bits_f32(get_u32(p));
}

/* HSRL_E_INPUT naming field and row when some v[j] < lo (width values per row). */
static hsrl_status check_min(const int32_t *v, int64_t n, int64_t width, int32_t lo,
                             const char *source, const char *field) {
  for (int64_t j = 0; j < n; j++)
    if (v[j] < lo)
      return hsrl_err(HSRL_E_INPUT, source, 0, field, "row %lld entry %lld: %d, expected >= %d",
                      (long long)(j / width), (long long)(j % width), (int)v[j], (int)lo);
  return HSRL_OK;
}
static hsrl_status check_finite(const float *v, int64_t n, int64_t width, const char *source,
                                const char *field) {
  for (int64_t j = 0; j < n; j++)
    if (!isfinite(v[j]))
      return hsrl_err(HSRL_E_INPUT, source, 0, field, "row %lld entry %lld: %g is not finite",
                      (long long)(j / width), (long long)(j % width), (double)v[j]);
  return HSRL_OK;
}

static int64_t popcount_bits(const uint8_t *p, int64_t n) {
  int64_t c = 0;
  for (int64_t j = 0; j < n; j++) c += (p[j >> 3] >> (j & 7)) & 1u;
  return c;
}

/* The header fields must match the reader's shape, hash and capacity. */
static hsrl_status unpack_header(const replay_block *b, const replay_rows_buf *dst, block_reader *r,
                                 replay_block_stats *hs, int *flags_out) {
  hsrl_status st = HSRL_OK;
  const replay_rows_shape *s = &b->cfg.shape;
  const char *src = r->source;
  const uint8_t *h = take(r, REPLAY_BLOCK_HEADER_SIZE, "header", &st);
  if (!h) return st;
  if (get_u32(h) != REPLAY_BLOCK_MAGIC)
    return hsrl_err(HSRL_E_CORRUPT, src, 0, "magic", "not a transition block (magic %08x)",
                    (unsigned)get_u32(h));
  if (get_u16(h + 4) != REPLAY_BLOCK_VERSION)
    return hsrl_err(HSRL_E_CORRUPT, src, 0, "version",
                    "transition block format version %u, this reader knows %d", get_u16(h + 4),
                    REPLAY_BLOCK_VERSION);
  int flags = get_u16(h + 6);
  if (flags & ~BLOCK_F_ALL)
    return hsrl_err(HSRL_E_CORRUPT, src, 0, "flags", "unknown flag bits 0x%x", flags);
  const int64_t n = get_u32(h + 8), H = get_u32(h + 12), K = get_u32(h + 16), L = get_u32(h + 20);
  const int64_t n_nu = get_u32(h + 24), n_nh = get_u32(h + 28);
  const uint64_t hash = get_u64(h + 32);
  if (H != s->history_len)
    return hsrl_err(HSRL_E_INPUT, src, 0, "history_len", "block has H = %lld, the shard %lld",
                    (long long)H, (long long)s->history_len);
  if (K != s->slate_size)
    return hsrl_err(HSRL_E_INPUT, src, 0, "slate_size", "block has K = %lld, the shard %lld",
                    (long long)K, (long long)s->slate_size);
  if (L != s->n_levels)
    return hsrl_err(HSRL_E_INPUT, src, 0, "n_levels", "block has L = %lld, the shard %lld",
                    (long long)L, (long long)s->n_levels);
  if (!(flags & BLOCK_F_TOKENS) != !L || ((flags & BLOCK_F_TOKENS_U16) && !L))
    return hsrl_err(HSRL_E_CORRUPT, src, 0, "flags", "token flags 0x%x disagree with L = %lld",
                    flags, (long long)L);
  if (!(flags & BLOCK_F_LOGP) != !s->with_logp)
    return hsrl_err(HSRL_E_INPUT, src, 0, "behaviour_logp", "block %s log-probs, the shard %s",
                    flags & BLOCK_F_LOGP ? "carries" : "has no", s->with_logp ? "needs them" : "stores none");
  if (b->cfg.config_hash && hash != b->cfg.config_hash)
    return hsrl_err(HSRL_E_INPUT, src, 0, "config_hash",
                    "block written under config %016llx, this shard runs %016llx",
                    (unsigned long long)hash, (unsigned long long)b->cfg.config_hash);
  if (n < 1 || n > dst->capacity || n > b->cfg.max_rows)
    return hsrl_err(HSRL_E_INPUT, src, 0, "n_rows", "block of %lld rows, this shard takes 1..%lld",
                    (long long)n, (long long)(dst->capacity < b->cfg.max_rows ? dst->capacity : b->cfg.max_rows));
  if (n_nu > n || n_nh > n)
    return hsrl_err(HSRL_E_CORRUPT, src, 0, n_nu > n ? "next_users" : "next_history",
                    "%lld stored rows in a block of %lld", (long long)(n_nu > n ? n_nu : n_nh),
                    (long long)n);
  const int u16 = (flags & BLOCK_F_TOKENS_U16) != 0;
  const int64_t want = replay_block_raw_size(s, n, n_nu, n_nh, u16);
  if (r->end - h != want)
    return hsrl_err(HSRL_E_CORRUPT, src, 0, "n_rows",
                    "block holds %lld bytes, its header describes %lld", (long long)(r->end - h),
                    (long long)want);
  hs->n_rows = n, hs->n_next_users_stored = n_nu, hs->n_next_history_stored = n_nh;
  hs->tokens_u16 = u16, hs->config_hash = hash, hs->raw_bytes = want;
  *flags_out = flags;
  return HSRL_OK;
}

hsrl_status replay_block_unpack(replay_block *b, replay_rows_buf *dst, const void *src,
                                size_t src_size, const char *source, int64_t *n_rows,
                                replay_block_stats *stats) {
  hsrl_status st = HSRL_OK;
  const replay_rows_shape *s = &b->cfg.shape;
  HSRL_CHECKF(replay_rows_shape_equal(&dst->shape, s), "unpack into rows of another shape");
  const int64_t H = s->history_len, K = s->slate_size, KL = K * s->n_levels;
  if (!source) source = "transition block";
  *n_rows = 0;
  size_t raw_size = 0;
  uint64_t peek_raw = 0;
  st = io_zstd_block_peek(src, src_size, &peek_raw, NULL);
  if (st != HSRL_OK) return hsrl_err_context(st, "%s", source);
  if (peek_raw > (uint64_t)b->raw_cap)
    return hsrl_err(HSRL_E_INPUT, source, 0, "n_rows",
                    "a block of %llu raw bytes: blocks of up to %lld rows take at most %lld",
                    (unsigned long long)peek_raw, (long long)b->cfg.max_rows, (long long)b->raw_cap);
  st = io_zstd_decompress_block(b->zstd, b->raw, (size_t)b->raw_cap, src, src_size, &raw_size);
  if (st != HSRL_OK) return hsrl_err_context(st, "%s", source);
  block_reader r = {b->raw, b->raw + raw_size, source};
  replay_block_stats hs = {0};
  int flags = 0;
  HSRL_TRY(unpack_header(b, dst, &r, &hs, &flags));
  const int64_t n = hs.n_rows;
  const uint8_t *p;
  /* the header fixed every section's size and the total, so take() cannot fail from here */
  p = take(&r, 4 * n, "users", &st);
  unpack_i32(dst->users, p, n);
  HSRL_TRY(check_min(dst->users, n, 1, 1, source, "users"));
  p = take(&r, 4 * n, "policy_version", &st);
  unpack_i32(dst->policy_version, p, n);
  HSRL_TRY(check_min(dst->policy_version, n, 1, 0, source, "policy_version"));
  p = take(&r, 4 * n, "reward", &st);
  unpack_f32(dst->reward, p, n);
  HSRL_TRY(check_finite(dst->reward, n, 1, source, "reward"));
  p = take(&r, bit_bytes(n), "done", &st);
  HSRL_TRY(unpack_bits(dst->done, p, n, source, "done"));
  p = take(&r, 4 * n * H, "history", &st);
  unpack_i32(dst->history, p, n * H);
  HSRL_TRY(check_min(dst->history, n * H, H, 0, source, "history"));
  p = take(&r, 4 * n * K, "slate", &st);
  unpack_i32(dst->slate, p, n * K);
  HSRL_TRY(check_min(dst->slate, n * K, K, 1, source, "slate"));
  p = take(&r, bit_bytes(n * K), "clicks", &st);
  HSRL_TRY(unpack_bits(dst->clicks, p, n * K, source, "clicks"));
  if (KL) {
    p = take(&r, n * KL * (hs.tokens_u16 ? 2 : 1), "tokens", &st);
    for (int64_t j = 0; j < n * KL; j++) {
      dst->tokens[j] = hs.tokens_u16 ? get_u16(p + 2 * j) : p[j];
      if (b->cfg.max_vocab > 0 && dst->tokens[j] >= b->cfg.max_vocab)
        return hsrl_err(HSRL_E_INPUT, source, 0, "tokens",
                        "row %lld entry %lld: token %d >= the vocabulary %lld", (long long)(j / KL),
                        (long long)(j % KL), dst->tokens[j], (long long)b->cfg.max_vocab);
    }
  }
  if (s->with_logp) {
    p = take(&r, 4 * n * KL, "behaviour_logp", &st);
    unpack_f32(dst->logp, p, n * KL);
    HSRL_TRY(check_finite(dst->logp, n * KL, KL, source, "behaviour_logp"));
  }
  /* next users */
  const uint8_t *fl = take(&r, bit_bytes(n), "next_users", &st);
  if (popcount_bits(fl, n) != hs.n_next_users_stored || ((n & 7) && (fl[n >> 3] >> (n & 7))))
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "next_users",
                    "stored-row flags disagree with the header's count %lld",
                    (long long)hs.n_next_users_stored);
  p = take(&r, 4 * hs.n_next_users_stored, "next_users", &st);
  for (int64_t i = 0; i < n; i++) {
    if ((fl[i >> 3] >> (i & 7)) & 1u) {
      dst->next_users[i] = (int32_t)get_u32(p);
      p += 4;
    } else {
      dst->next_users[i] = dst->users[i];
    }
  }
  HSRL_TRY(check_min(dst->next_users, n, 1, 1, source, "next_users"));
  /* next histories */
  fl = take(&r, bit_bytes(n), "next_history", &st);
  if (popcount_bits(fl, n) != hs.n_next_history_stored || ((n & 7) && (fl[n >> 3] >> (n & 7))))
    return hsrl_err(HSRL_E_CORRUPT, source, 0, "next_history",
                    "stored-row flags disagree with the header's count %lld",
                    (long long)hs.n_next_history_stored);
  p = take(&r, 4 * H * hs.n_next_history_stored, "next_history", &st);
  for (int64_t i = 0; i < n; i++) {
    int32_t *out = dst->next_history + i * H;
    if ((fl[i >> 3] >> (i & 7)) & 1u) {
      unpack_i32(out, p, H);
      p += 4 * H;
    } else {
      replay_rows_next_history(out, dst->history + i * H, dst->slate + i * K, dst->clicks + i * K,
                               H, K);
    }
  }
  HSRL_TRY(check_min(dst->next_history, n * H, H, 0, source, "next_history"));
  HSRL_CHECK(r.p == r.end && st == HSRL_OK);
  hs.framed_bytes = (int64_t)src_size;
  if (stats) *stats = hs;
  *n_rows = n;
done:
  return st;
}
