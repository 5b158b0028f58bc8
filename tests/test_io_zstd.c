/* test_io_zstd.c: framed zstd blocks (common/io/io_zstd.h): XXH32 known answers, round trips of
 * random and compressible data of many sizes, every kind of damage rejected as HSRL_E_CORRUPT
 * with a message saying which, and no allocation per call after init. */
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/io/io_zstd.h"
#include "tests/test_harness.h"

#define MAX_BLOCK (1u << 20)

/* Reference values of XXH32 with seed 0 (the content checksums the lz4 tool writes). */
static void test_xxh32_known_answers(void) {
  static const struct { const char *s; uint32_t h; } cases[] = {
      {"", 0x02cc5d05u},
      {"a", 0x550d7456u},
      {"abc", 0x32d153ffu},
      {"Nobody inspects the spammish repetition", 0xe2293b2fu}, /* >= 16 bytes: the 4-lane loop */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint32_t h = io_zstd_xxh32(cases[i].s, strlen(cases[i].s), 0);
    TEST_ASSERTF(h == cases[i].h, "xxh32(\"%s\") = %08x, expected %08x", cases[i].s, (unsigned)h,
                 (unsigned)cases[i].h);
  }
  /* the seed matters and every single-bit flip changes the hash */
  unsigned char buf[64];
  for (int i = 0; i < 64; i++) buf[i] = (unsigned char)(i * 37 + 11);
  uint32_t h0 = io_zstd_xxh32(buf, sizeof buf, 0);
  TEST_ASSERT(io_zstd_xxh32(buf, sizeof buf, 1) != h0);
  for (int bit = 0; bit < 64 * 8; bit++) {
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    uint32_t h = io_zstd_xxh32(buf, sizeof buf, 0);
    buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    TEST_ASSERTF(h != h0, "flipping bit %d leaves the hash unchanged", bit);
  }
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)hsrl_rng_u32(&r);
}

/* Compressible: small integers as little-endian int32, like ids and counts. */
static void fill_compressible(unsigned char *p, size_t n, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 1);
  for (size_t i = 0; i < n; i++) p[i] = (i % 4 == 0) ? (unsigned char)hsrl_rng_below(&r, 16) : 0;
}

static void test_round_trip_sizes(void) {
  io_zstd *z = NULL;
  TEST_ASSERT(io_zstd_init(&z, IO_ZSTD_DEFAULT_LEVEL, MAX_BLOCK) == HSRL_OK);
  unsigned char *src = hsrl_malloc(MAX_BLOCK), *out = hsrl_malloc(MAX_BLOCK);
  size_t cap = io_zstd_bound(MAX_BLOCK);
  unsigned char *blk = hsrl_malloc(cap);
  static const size_t sizes[] = {0, 1, 2, 3, 15, 16, 17, 100, 4096, 65537, 300000, MAX_BLOCK};
  int failed = 0;
  for (int kind = 0; kind < 2 && !failed; kind++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && !failed; i++) {
      size_t n = sizes[i], n_blk = 0, n_out = 0;
      if (kind == 0) fill_random(src, n, 100 + i);
      else fill_compressible(src, n, 200 + i);
      memset(out, 0xAB, n + 1 <= MAX_BLOCK ? n + 1 : MAX_BLOCK);
      hsrl_status st = io_zstd_compress_block(z, blk, cap, src, n, &n_blk);
      failed = st != HSRL_OK;
      TEST_ASSERTF(!failed, "compress %zu bytes: %s", n, hsrl_err_message());
      TEST_ASSERT(n_blk >= IO_ZSTD_HEADER_SIZE && n_blk <= io_zstd_bound(n));
      uint64_t raw = 0, total = 0;
      TEST_ASSERT(io_zstd_block_peek(blk, n_blk, &raw, &total) == HSRL_OK);
      TEST_ASSERT(raw == n && total == n_blk);
      st = io_zstd_decompress_block(z, out, MAX_BLOCK, blk, n_blk, &n_out);
      TEST_ASSERTF(st == HSRL_OK, "decompress %zu bytes: %s", n, hsrl_err_message());
      TEST_ASSERT(n_out == n);
      TEST_ASSERTF(n == 0 || memcmp(src, out, n) == 0, "%s data of %zu bytes differs after the round trip",
                   kind ? "compressible" : "random", n);
      if (kind == 1 && n >= 4096)
        TEST_ASSERTF(n_blk < n / 4, "compressible %zu bytes took %zu", n, n_blk); /* it does compress */
    }
  }
  hsrl_free(src);
  hsrl_free(out);
  hsrl_free(blk);
  io_zstd_free(z);
}

/* Blocks concatenated in a stream are found again with io_zstd_block_peek. */
static void test_stream_of_blocks(void) {
  io_zstd *z = NULL;
  TEST_ASSERT(io_zstd_init(&z, 1, 4096) == HSRL_OK);
  enum { N_BLOCKS = 5 };
  unsigned char src[N_BLOCKS][1000], out[1000], stream[N_BLOCKS * 1200];
  size_t pos = 0;
  for (int b = 0; b < N_BLOCKS; b++) {
    size_t n_blk = 0, n = 200 * (size_t)b + 1;
    fill_compressible(src[b], n, (uint64_t)b);
    TEST_ASSERT(io_zstd_compress_block(z, stream + pos, sizeof stream - pos, src[b], n, &n_blk) == HSRL_OK);
    pos += n_blk;
  }
  size_t at = 0;
  for (int b = 0; b < N_BLOCKS; b++) {
    uint64_t raw = 0, total = 0;
    size_t n_out = 0;
    TEST_ASSERT(io_zstd_block_peek(stream + at, pos - at, &raw, &total) == HSRL_OK);
    TEST_ASSERT(raw == 200 * (uint64_t)b + 1);
    TEST_ASSERT(io_zstd_decompress_block(z, out, sizeof out, stream + at, (size_t)total, &n_out) == HSRL_OK);
    TEST_ASSERT(n_out == raw && memcmp(out, src[b], n_out) == 0);
    at += (size_t)total;
  }
  TEST_ASSERT(at == pos);
  io_zstd_free(z);
}

/* Damages a copy of a good block with `damage` and expects HSRL_E_CORRUPT and a message
 * containing `word`. */
static int expect_corrupt(io_zstd *z, const unsigned char *blk, size_t n_blk, size_t n_given, size_t offset,
                          unsigned char xor_mask, const char *word) {
  static unsigned char copy[8192], out[8192];
  memcpy(copy, blk, n_blk);
  if (xor_mask) copy[offset] ^= xor_mask;
  size_t n_out = 12345;
  hsrl_err_clear();
  hsrl_status st = io_zstd_decompress_block(z, out, sizeof out, copy, n_given, &n_out);
  if (st != HSRL_E_CORRUPT) {
    fprintf(stderr, "damage at %zu (xor %02x, %zu of %zu bytes): status %s\n", offset, xor_mask, n_given, n_blk,
            hsrl_status_name(st));
    return 0;
  }
  if (n_out != 0 || !strstr(hsrl_err_message(), word)) {
    fprintf(stderr, "damage at %zu: message \"%s\" lacks \"%s\" (n_out %zu)\n", offset, hsrl_err_message(), word,
            n_out);
    return 0;
  }
  return 1;
}

static void test_damage_is_rejected(void) {
  io_zstd *z = NULL;
  TEST_ASSERT(io_zstd_init(&z, IO_ZSTD_DEFAULT_LEVEL, 8192) == HSRL_OK);
  unsigned char src[5000], blk[8192];
  size_t n_blk = 0;
  fill_compressible(src, sizeof src, 7);
  for (size_t i = 0; i < 1000; i++) src[i] = (unsigned char)(i * 7); /* some literals too */
  TEST_ASSERT(io_zstd_compress_block(z, blk, sizeof blk, src, sizeof src, &n_blk) == HSRL_OK);
  TEST_ASSERT(n_blk > IO_ZSTD_HEADER_SIZE + 16);

  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 0, 0x01, "magic"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 3, 0x80, "magic"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 4, 0x02, "version"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 6, 0x01, "header checksum")); /* flags */
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 9, 0x01, "header checksum")); /* raw size */
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 16, 0x01, "header checksum")); /* payload size */
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 24, 0x01, "header checksum")); /* payload sum */
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk, 30, 0x10, "header checksum"));
  /* every byte of the payload, flipped, is caught by the payload checksum */
  for (size_t off = IO_ZSTD_HEADER_SIZE; off < n_blk; off++)
    TEST_ASSERTF(expect_corrupt(z, blk, n_blk, n_blk, off, 0x04, "payload checksum"), "payload byte %zu", off);
  /* truncated anywhere: inside the header, at its end, inside the payload */
  static const size_t cuts[] = {0, 1, 4, 31};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    TEST_ASSERT(expect_corrupt(z, blk, n_blk, cuts[i], 0, 0, "truncated header"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, IO_ZSTD_HEADER_SIZE, 0, 0, "truncated"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk - 1, 0, 0, "truncated"));
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk / 2, 0, 0, "truncated"));
  /* trailing bytes after the block mean the caller's framing is off */
  TEST_ASSERT(expect_corrupt(z, blk, n_blk, n_blk + 1, 0, 0, "the block has"));

  /* a destination smaller than the block's raw size is an input error, not corruption */
  unsigned char small[100];
  size_t n_out = 0;
  TEST_ASSERT(io_zstd_decompress_block(z, small, sizeof small, blk, n_blk, &n_out) == HSRL_E_INPUT);
  TEST_ASSERT(strstr(hsrl_err_message(), "5000") != NULL);

  /* a well-formed header around a payload that is not zstd: the checksum matches (we recompute
   * it), so zstd itself must refuse it */
  unsigned char fake[IO_ZSTD_HEADER_SIZE + 16];
  memcpy(fake, blk, IO_ZSTD_HEADER_SIZE);
  memset(fake + IO_ZSTD_HEADER_SIZE, 0x5A, 16);
  uint64_t payload = 16;
  for (int i = 0; i < 8; i++) fake[16 + i] = (unsigned char)(payload >> (8 * i));
  uint32_t s = io_zstd_xxh32(fake + IO_ZSTD_HEADER_SIZE, 16, 0);
  for (int i = 0; i < 4; i++) fake[24 + i] = (unsigned char)(s >> (8 * i));
  uint32_t hs = io_zstd_xxh32(fake, 28, 0);
  for (int i = 0; i < 4; i++) fake[28 + i] = (unsigned char)(hs >> (8 * i));
  static unsigned char roomy[8192];
  TEST_ASSERT(io_zstd_decompress_block(z, roomy, sizeof roomy, fake, sizeof fake, &n_out) == HSRL_E_CORRUPT);
  TEST_ASSERT(strstr(hsrl_err_message(), "cannot decompress") != NULL);
  io_zstd_free(z);
}

static void test_misuse_is_reported(void) {
  io_zstd *z = NULL;
  TEST_ASSERT(io_zstd_init(&z, 99, 1024) == HSRL_E_USAGE && z == NULL);
  TEST_ASSERT(strstr(hsrl_err_message(), "99") != NULL);
  TEST_ASSERT(io_zstd_init(&z, 0, 1024) == HSRL_E_USAGE);
  TEST_ASSERT(io_zstd_init(&z, -5, 1024) == HSRL_OK); /* a "fast" level */
  unsigned char src[2048] = {0}, dst[4096];
  size_t n = 0;
  TEST_ASSERT(io_zstd_compress_block(z, dst, sizeof dst, src, 1024, &n) == HSRL_OK);
  TEST_ASSERT(io_zstd_compress_block(z, dst, sizeof dst, src, 1025, &n) == HSRL_E_INTERNAL); /* > max */
  TEST_ASSERT(n == 0);
  fill_random(src, 1024, 3);
  TEST_ASSERT(io_zstd_compress_block(z, dst, 100, src, 1024, &n) == HSRL_E_INTERNAL); /* dst too small */
  TEST_ASSERT(io_zstd_compress_block(z, dst, 10, src, 0, &n) == HSRL_E_INTERNAL);
  io_zstd_free(z);
  io_zstd_free(NULL);
}

/* After init, compress and decompress allocate nothing: our counter does not move, and zstd's
 * contexts are static (placed in workspaces at init), so zstd cannot allocate either. Also check
 * that the workspace sized for the maximum block suffices for every size, at a high level where
 * the tables are large. */
static void test_no_allocation_after_init(void) {
  io_zstd *z = NULL;
  TEST_ASSERT(io_zstd_init(&z, 9, 200000) == HSRL_OK);
  unsigned char *src = hsrl_malloc(200000), *out = hsrl_malloc(200000);
  size_t cap = io_zstd_bound(200000);
  unsigned char *blk = hsrl_malloc(cap);
  fill_compressible(src, 200000, 9);
  int64_t before = hsrl_alloc_count();
  size_t sizes[] = {200000, 1, 70000, 0, 131072, 199999, 16385, 3};
  for (int rep = 0; rep < 4; rep++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n_blk = 0, n_out = 0;
      hsrl_status st = io_zstd_compress_block(z, blk, cap, src, sizes[i], &n_blk);
      TEST_ASSERTF(st == HSRL_OK, "size %zu: %s", sizes[i], hsrl_err_message());
      st = io_zstd_decompress_block(z, out, 200000, blk, n_blk, &n_out);
      TEST_ASSERTF(st == HSRL_OK, "size %zu: %s", sizes[i], hsrl_err_message());
      TEST_ASSERT(n_out == sizes[i] && (n_out == 0 || memcmp(out, src, n_out) == 0));
    }
  }
  TEST_ASSERTF(hsrl_alloc_count() == before, "%lld allocations in the loop",
               (long long)(hsrl_alloc_count() - before));
  hsrl_free(src);
  hsrl_free(out);
  hsrl_free(blk);
  io_zstd_free(z);
}

/* The same input gives the same bytes (replay blocks and tests rely on it). */
static void test_deterministic(void) {
  io_zstd *a = NULL, *b = NULL;
  TEST_ASSERT(io_zstd_init(&a, 3, 65536) == HSRL_OK && io_zstd_init(&b, 3, 65536) == HSRL_OK);
  static unsigned char src[50000], x[60000], y[60000];
  fill_compressible(src, sizeof src, 11);
  size_t nx = 0, ny = 0;
  TEST_ASSERT(io_zstd_compress_block(a, x, sizeof x, src, sizeof src, &nx) == HSRL_OK);
  TEST_ASSERT(io_zstd_compress_block(a, y, sizeof y, src, 10, &ny) == HSRL_OK); /* context reused */
  TEST_ASSERT(io_zstd_compress_block(b, y, sizeof y, src, sizeof src, &ny) == HSRL_OK);
  TEST_ASSERT(nx == ny && memcmp(x, y, nx) == 0);
  TEST_ASSERT(io_zstd_compress_block(a, y, sizeof y, src, sizeof src, &ny) == HSRL_OK);
  TEST_ASSERT(nx == ny && memcmp(x, y, nx) == 0);
  io_zstd_free(a);
  io_zstd_free(b);
}

int main(void) {
  TEST_RUN(test_xxh32_known_answers);
  TEST_RUN(test_round_trip_sizes);
  TEST_RUN(test_stream_of_blocks);
  TEST_RUN(test_damage_is_rejected);
  TEST_RUN(test_misuse_is_reported);
  TEST_RUN(test_no_allocation_after_init);
  TEST_RUN(test_deterministic);
  return test_summary();
}
