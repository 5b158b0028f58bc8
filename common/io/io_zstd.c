/* io_zstd.c: framed, checksummed zstd blocks over reused static contexts. See io_zstd.h for the
 * block layout and the memory contract. */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_initStaticCCtx / DCtx, ZSTD_estimate*_usingCParams */
#include "common/io/io_zstd.h"

#include <string.h>
#include <zstd.h>

#include "common/hsrl_alloc.h"

struct io_zstd {
  int level;
  size_t max_block_size;
  ZSTD_CCtx *cctx;      /* placed in cwork, never frees or allocates */
  ZSTD_DCtx *dctx;      /* placed in dwork */
  void *cwork, *dwork;  /* hsrl_alloc_aligned, owned */
  size_t cwork_size, dwork_size;
};

/* ---- little-endian field access (independent of the host's byte order) ---- */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint64_t get_u64(const unsigned char *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put_u64(unsigned char *p, uint64_t v) { put_u32(p, (uint32_t)v), put_u32(p + 4, (uint32_t)(v >> 32)); }

/* ---- XXH32, after the reference implementation (github.com/Cyan4973/xxHash) ---- */

#define XXH_P1 2654435761u
#define XXH_P2 2246822519u
#define XXH_P3 3266489917u
#define XXH_P4 668265263u
#define XXH_P5 374761393u

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static uint32_t xxh_round(uint32_t acc, uint32_t in) { return rotl32(acc + in * XXH_P2, 13) * XXH_P1; }

uint32_t io_zstd_xxh32(const void *data, size_t n, uint32_t seed) {
  const unsigned char *p = data, *end = p + n;
  uint32_t h;
  if (n >= 16) {
    uint32_t v1 = seed + XXH_P1 + XXH_P2, v2 = seed + XXH_P2, v3 = seed, v4 = seed - XXH_P1;
    const unsigned char *limit = end - 16;
    do {
      v1 = xxh_round(v1, get_u32(p)), v2 = xxh_round(v2, get_u32(p + 4));
      v3 = xxh_round(v3, get_u32(p + 8)), v4 = xxh_round(v4, get_u32(p + 12));
      p += 16;
    } while (p <= limit);
    h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
  } else {
    h = seed + XXH_P5;
  }
  h += (uint32_t)n;
  for (; p + 4 <= end; p += 4) h = rotl32(h + get_u32(p) * XXH_P3, 17) * XXH_P4;
  for (; p < end; p++) h = rotl32(h + *p * XXH_P5, 11) * XXH_P1;
  h ^= h >> 15, h *= XXH_P2, h ^= h >> 13, h *= XXH_P3, h ^= h >> 16;
  return h;
}

/* ---- contexts ---- */

/* Workspace for a static CCtx that can compress any block of up to max_n bytes at `level`. zstd
 * picks smaller parameters for smaller inputs; the table sizes are not guaranteed monotone in the
 * input size, so take the largest estimate over zstd's own size tiers (as ZSTD_estimateCCtxSize
 * does for unbounded inputs). */
static size_t cctx_workspace_size(int level, size_t max_n) {
  const size_t tiers[4] = {16u << 10, 128u << 10, 256u << 10, max_n};
  size_t best = 0;
  for (int i = 0; i < 4; i++) {
    size_t s = tiers[i] < max_n ? tiers[i] : max_n;
    ZSTD_compressionParameters cp = ZSTD_getCParams(level, s ? s : 1, 0);
    size_t need = ZSTD_estimateCCtxSize_usingCParams(cp);
    if (need > best) best = need;
  }
  return best;
}

hsrl_status io_zstd_init(io_zstd **out, int level, size_t max_block_size) {
  *out = NULL;
  if (level == 0 || level > ZSTD_maxCLevel() || level < ZSTD_minCLevel())
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "zstd level", "%d is not a zstd level (1..%d, or %d..-1)", level,
                    ZSTD_maxCLevel(), ZSTD_minCLevel());
  io_zstd *z = hsrl_calloc(1, sizeof *z);
  z->level = level;
  z->max_block_size = max_block_size;
  z->cwork_size = cctx_workspace_size(level, max_block_size);
  z->dwork_size = ZSTD_estimateDCtxSize();
  z->cwork = hsrl_alloc_aligned(z->cwork_size);
  z->dwork = hsrl_alloc_aligned(z->dwork_size);
  z->cctx = ZSTD_initStaticCCtx(z->cwork, z->cwork_size);
  z->dctx = ZSTD_initStaticDCtx(z->dwork, z->dwork_size);
  if (!z->cctx || !z->dctx) {
    hsrl_status st = hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                              "zstd: cannot place static contexts in %zu + %zu bytes", z->cwork_size,
                              z->dwork_size);
    io_zstd_free(z);
    return st;
  }
  size_t r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_contentSizeFlag, 1);
  if (ZSTD_isError(r)) {
    io_zstd_free(z);
    return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL, "zstd: cannot set parameters: %s", ZSTD_getErrorName(r));
  }
  *out = z;
  return HSRL_OK;
}

void io_zstd_free(io_zstd *z) {
  if (!z) return;
  /* static contexts live inside their workspaces: freeing the workspace frees them */
  hsrl_free(z->cwork);
  hsrl_free(z->dwork);
  hsrl_free(z);
}

size_t io_zstd_bound(size_t n) { return IO_ZSTD_HEADER_SIZE + ZSTD_compressBound(n); }

/* ---- blocks ---- */

hsrl_status io_zstd_compress_block(io_zstd *z, void *dst, size_t dst_cap, const void *src, size_t n,
                                   size_t *out_size) {
  *out_size = 0;
  if (n > z->max_block_size)
    return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL,
                    "zstd block: %zu raw bytes exceed the context's maximum of %zu", n, z->max_block_size);
  if (dst_cap < IO_ZSTD_HEADER_SIZE)
    return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL, "zstd block: destination of %zu bytes cannot hold a header",
                    dst_cap);
  unsigned char *d = dst;
  /* ZSTD_compress2 keeps the sticky parameters set at init (level, content size) */
  size_t c = ZSTD_compress2(z->cctx, d + IO_ZSTD_HEADER_SIZE, dst_cap - IO_ZSTD_HEADER_SIZE, src, n);
  if (ZSTD_isError(c))
    return hsrl_err(HSRL_E_INTERNAL, NULL, 0, NULL, "zstd block: compressing %zu bytes into %zu: %s", n,
                    dst_cap, ZSTD_getErrorName(c));
  put_u32(d, IO_ZSTD_MAGIC);
  put_u16(d + 4, IO_ZSTD_VERSION);
  put_u16(d + 6, 0);
  put_u64(d + 8, (uint64_t)n);
  put_u64(d + 16, (uint64_t)c);
  put_u32(d + 24, io_zstd_xxh32(d + IO_ZSTD_HEADER_SIZE, c, 0));
  put_u32(d + 28, io_zstd_xxh32(d, 28, 0));
  *out_size = IO_ZSTD_HEADER_SIZE + c;
  return HSRL_OK;
}

hsrl_status io_zstd_block_peek(const void *src, size_t src_size, uint64_t *raw_size, uint64_t *block_size) {
  const unsigned char *s = src;
  if (src_size < IO_ZSTD_HEADER_SIZE)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: truncated header (%zu of %d bytes)", src_size,
                    IO_ZSTD_HEADER_SIZE);
  uint32_t magic = get_u32(s);
  if (magic != IO_ZSTD_MAGIC)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: bad magic 0x%08x (expected 0x%08x \"HSZB\")",
                    (unsigned)magic, (unsigned)IO_ZSTD_MAGIC);
  unsigned version = get_u16(s + 4), flags = get_u16(s + 6);
  if (version != IO_ZSTD_VERSION)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: format version %u, this build reads version %d",
                    version, IO_ZSTD_VERSION);
  uint32_t hsum = get_u32(s + 28), hsum_now = io_zstd_xxh32(s, 28, 0);
  if (hsum != hsum_now)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: header checksum mismatch (stored 0x%08x, computed 0x%08x)",
                    (unsigned)hsum, (unsigned)hsum_now);
  if (flags != 0)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: unknown flags 0x%04x", flags);
  uint64_t raw = get_u64(s + 8), payload = get_u64(s + 16);
  if (payload > UINT64_MAX - IO_ZSTD_HEADER_SIZE)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: impossible payload size %llu",
                    (unsigned long long)payload);
  if (raw_size) *raw_size = raw;
  if (block_size) *block_size = IO_ZSTD_HEADER_SIZE + payload;
  return HSRL_OK;
}

hsrl_status io_zstd_decompress_block(io_zstd *z, void *dst, size_t dst_cap, const void *src,
                                     size_t src_size, size_t *out_size) {
  *out_size = 0;
  uint64_t raw = 0, total = 0;
  hsrl_status st = io_zstd_block_peek(src, src_size, &raw, &total);
  if (st != HSRL_OK) return st;
  if ((uint64_t)src_size < total)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: truncated (%zu of %llu bytes)", src_size,
                    (unsigned long long)total);
  if ((uint64_t)src_size > total)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: %zu bytes given, the block has %llu", src_size,
                    (unsigned long long)total);
  if (raw > (uint64_t)dst_cap)
    return hsrl_err(HSRL_E_INPUT, NULL, 0, NULL, "zstd block: holds %llu raw bytes, the buffer has %zu",
                    (unsigned long long)raw, dst_cap);
  const unsigned char *payload = (const unsigned char *)src + IO_ZSTD_HEADER_SIZE;
  size_t n_payload = (size_t)(total - IO_ZSTD_HEADER_SIZE);
  uint32_t sum = get_u32((const unsigned char *)src + 24), sum_now = io_zstd_xxh32(payload, n_payload, 0);
  if (sum != sum_now)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: payload checksum mismatch (stored 0x%08x, computed 0x%08x)",
                    (unsigned)sum, (unsigned)sum_now);
  size_t d = ZSTD_decompressDCtx(z->dctx, dst, (size_t)raw, payload, n_payload);
  if (ZSTD_isError(d))
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: cannot decompress: %s", ZSTD_getErrorName(d));
  if ((uint64_t)d != raw)
    return hsrl_err(HSRL_E_CORRUPT, NULL, 0, NULL, "zstd block: decompressed to %zu bytes, header says %llu", d,
                    (unsigned long long)raw);
  *out_size = d;
  return HSRL_OK;
}
