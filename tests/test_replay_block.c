/* test_replay_block.c: transition blocks (replay/replay_block.h): exact round trips (uint8 and
 * uint16 tokens, no tokens, odd row counts for the bit sections), next histories derived vs
 * stored, the derivation against a naive reference, the documented raw layout, and every class
 * of bad block (damaged frame, truncation, wrong shape or config hash, too many rows, bad values
 * and inconsistent sections written into a valid frame) giving its error naming the field. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/io/io_zstd.h"
#include "replay/replay_block.h"
#include "tests/test_harness.h"

/* ---------------------------------------------------------------- random rows */

/* Rows [0, n) of b: plausible ids, clicks ~ 0.3, done ~ 0.1; next users differ with p_moved,
 * next histories are derived except with p_stored (then random; stored[i] = 1). */
static void gen_rows(replay_rows_buf *b, int64_t n, uint64_t seed, int64_t vocab, double p_stored,
                     double p_moved, uint8_t *stored) {
  const int64_t H = b->shape.history_len, K = b->shape.slate_size, KL = K * b->shape.n_levels;
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 11);
  for (int64_t i = 0; i < n; i++) {
    b->users[i] = 1 + (int32_t)hsrl_rng_below(&r, 500);
    int64_t pad = (int64_t)hsrl_rng_below(&r, (uint64_t)H + 1);
    for (int64_t h = 0; h < H; h++)
      b->history[i * H + h] = h < pad ? 0 : 1 + (int32_t)hsrl_rng_below(&r, 3000);
    for (int64_t k = 0; k < K; k++) {
      b->slate[i * K + k] = 1 + (int32_t)hsrl_rng_below(&r, 3000);
      b->clicks[i * K + k] = (uint8_t)hsrl_rng_bernoulli(&r, 0.3f);
    }
    for (int64_t j = 0; j < KL; j++) b->tokens[i * KL + j] = (uint16_t)hsrl_rng_below(&r, (uint64_t)vocab);
    if (b->logp)
      for (int64_t j = 0; j < KL; j++) b->logp[i * KL + j] = -4.0f * hsrl_rng_uniform(&r);
    b->reward[i] = hsrl_rng_uniform(&r) - 0.1f;
    b->done[i] = (uint8_t)hsrl_rng_bernoulli(&r, 0.1f);
    b->policy_version[i] = (int32_t)hsrl_rng_below(&r, 40);
    b->next_users[i] = hsrl_rng_uniform_double(&r) < p_moved ? b->users[i] + 1 : b->users[i];
    stored[i] = hsrl_rng_uniform_double(&r) < p_stored;
    if (stored[i])
      for (int64_t h = 0; h < H; h++) b->next_history[i * H + h] = 1 + (int32_t)hsrl_rng_below(&r, 3000);
    else
      replay_rows_next_history(b->next_history + i * H, b->history + i * H, b->slate + i * K,
                               b->clicks + i * K, H, K);
  }
}

/* 1 if rows [0, n) of a and b are equal in every field of the shape (floats bit for bit). */
static int rows_equal(const replay_rows_buf *a, const replay_rows_buf *b, int64_t n) {
  const int64_t H = a->shape.history_len, K = a->shape.slate_size, KL = K * a->shape.n_levels;
  return !memcmp(a->users, b->users, (size_t)n * 4) && !memcmp(a->history, b->history, (size_t)(n * H) * 4) &&
         !memcmp(a->slate, b->slate, (size_t)(n * K) * 4) && !memcmp(a->clicks, b->clicks, (size_t)(n * K)) &&
         !memcmp(a->done, b->done, (size_t)n) && !memcmp(a->reward, b->reward, (size_t)n * 4) &&
         !memcmp(a->next_users, b->next_users, (size_t)n * 4) &&
         !memcmp(a->next_history, b->next_history, (size_t)(n * H) * 4) &&
         !memcmp(a->policy_version, b->policy_version, (size_t)n * 4) &&
         (!KL || !memcmp(a->tokens, b->tokens, (size_t)(n * KL) * 2)) &&
         (!a->logp || !memcmp(a->logp, b->logp, (size_t)(n * KL) * 4));
}

/* Packs n random rows of `shape` with vocabulary `vocab`, unpacks them, compares. */
static void round_trip(const replay_rows_shape *shape, int64_t n, int64_t vocab, int64_t max_vocab,
                       double p_stored, int expect_u16) {
  replay_rows_buf in, out;
  replay_rows_buf_init(&in, shape, n);
  replay_rows_buf_init(&out, shape, n);
  uint8_t *stored = hsrl_calloc((size_t)n, 1);
  gen_rows(&in, n, 5 + (uint64_t)n, vocab, p_stored, 0.1, stored);
  int64_t n_stored = 0, n_moved = 0;
  for (int64_t i = 0; i < n; i++) n_stored += stored[i], n_moved += in.next_users[i] != in.users[i];

  replay_block_config cfg = {*shape, n, max_vocab, 0x1234abcdull, 3};
  replay_block *b = NULL;
  TEST_ASSERT(replay_block_init(&b, &cfg) == HSRL_OK);
  size_t cap = replay_block_bound(b), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows v = replay_rows_buf_view(&in, 0, n);
  replay_block_stats ps, us;
  TEST_ASSERT(replay_block_pack(b, frame, cap, &v, &size, &ps) == HSRL_OK);
  TEST_ASSERT(ps.n_rows == n && ps.framed_bytes == (int64_t)size);
  TEST_ASSERTF(ps.n_next_history_stored == n_stored, "stored %lld, made %lld",
               (long long)ps.n_next_history_stored, (long long)n_stored);
  TEST_ASSERT(ps.n_next_users_stored == n_moved);
  TEST_ASSERT(ps.tokens_u16 == expect_u16);
  TEST_ASSERT(ps.raw_bytes == replay_block_raw_size(shape, n, n_moved, n_stored, expect_u16));

  int64_t n_out = 0;
  hsrl_status st = replay_block_unpack(b, &out, frame, size, "test", &n_out, &us);
  TEST_ASSERTF(st == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(n_out == n && us.raw_bytes == ps.raw_bytes && us.config_hash == 0x1234abcdull);
  TEST_ASSERT(rows_equal(&in, &out, n));
  /* a second, independent decode context agrees (no state carried between calls) */
  replay_block *b2 = NULL;
  TEST_ASSERT(replay_block_init(&b2, &cfg) == HSRL_OK);
  memset(out.users, 0, (size_t)n * 4);
  TEST_ASSERT(replay_block_unpack(b2, &out, frame, size, "test", &n_out, NULL) == HSRL_OK);
  TEST_ASSERT(rows_equal(&in, &out, n));
  replay_block_free(b2);
  replay_block_free(b);
  hsrl_free(frame);
  hsrl_free(stored);
  replay_rows_buf_free(&in);
  replay_rows_buf_free(&out);
}

static void test_round_trip_uint8_tokens(void) {
  replay_rows_shape s = {7, 5, 3, 1};
  round_trip(&s, 37, 64, 64, 0.2, 0);
  round_trip(&s, 1, 256, 256, 0.0, 0); /* V = 256 still fits a byte */
}

static void test_round_trip_uint16_tokens(void) {
  replay_rows_shape s = {6, 4, 2, 1};
  round_trip(&s, 29, 1000, 1000, 0.3, 1);
  round_trip(&s, 8, 300, 0, 0.0, 1); /* vocabulary unknown: uint16 */
}

static void test_round_trip_without_tokens(void) {
  replay_rows_shape s = {5, 3, 0, 0};
  round_trip(&s, 17, 1, 0, 0.5, 0);
}

/* Naive reference: concatenate, keep the tail. */
static void naive_next(int32_t *out, const int32_t *h, const int32_t *slate, const uint8_t *c,
                       int64_t H, int64_t K) {
  int32_t all[64];
  int64_t n = 0;
  for (int64_t i = 0; i < H; i++) all[n++] = h[i];
  for (int64_t k = 0; k < K; k++)
    if (c[k]) all[n++] = slate[k];
  memcpy(out, all + n - H, (size_t)H * 4);
}

static void test_next_history_derivation(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 3, 0);
  for (int trial = 0; trial < 2000; trial++) {
    int64_t H = 1 + (int64_t)hsrl_rng_below(&r, 8), K = 1 + (int64_t)hsrl_rng_below(&r, 12);
    int32_t h[16], s[16], a[16], b[16];
    uint8_t c[16];
    for (int64_t i = 0; i < H; i++) h[i] = (int32_t)hsrl_rng_below(&r, 5);
    for (int64_t k = 0; k < K; k++) {
      s[k] = 1 + (int32_t)hsrl_rng_below(&r, 50);
      c[k] = (uint8_t)hsrl_rng_bernoulli(&r, 0.5f);
    }
    replay_rows_next_history(a, h, s, c, H, K);
    naive_next(b, h, s, c, H, K);
    TEST_ASSERTF(!memcmp(a, b, (size_t)H * 4), "trial %d H %lld K %lld", trial, (long long)H, (long long)K);
    TEST_ASSERT(replay_rows_next_history_derived(a, h, s, c, H, K));
    int64_t j = (int64_t)hsrl_rng_below(&r, (uint64_t)H);
    a[j] += 100; /* any one change is noticed */
    TEST_ASSERT(!replay_rows_next_history_derived(a, h, s, c, H, K));
  }
}

/* Derived rows cost one bit: the raw size falls by exactly 4 H per derived row, and a next
 * history off by one entry is stored (and restored exactly). */
static void test_derived_vs_stored(void) {
  replay_rows_shape s = {9, 4, 2, 0};
  const int64_t n = 10, H = 9;
  replay_rows_buf in, out;
  replay_rows_buf_init(&in, &s, n);
  replay_rows_buf_init(&out, &s, n);
  uint8_t stored[10];
  gen_rows(&in, n, 9, 16, 0.0, 0.0, stored);
  in.next_history[3 * H + 4] += 1; /* row 3: one entry differs */
  replay_block_config cfg = {s, n, 16, 0, 3};
  replay_block *b = NULL;
  TEST_ASSERT(replay_block_init(&b, &cfg) == HSRL_OK);
  size_t cap = replay_block_bound(b), size = 0;
  uint8_t *frame = hsrl_malloc(cap);
  replay_rows v = replay_rows_buf_view(&in, 0, n);
  replay_block_stats ps;
  TEST_ASSERT(replay_block_pack(b, frame, cap, &v, &size, &ps) == HSRL_OK);
  TEST_ASSERT(ps.n_next_history_stored == 1 && ps.n_next_users_stored == 0);
  TEST_ASSERT(ps.raw_bytes == replay_block_raw_size(&s, n, 0, 0, 0) + 4 * H);
  int64_t n_out = 0;
  TEST_ASSERT(replay_block_unpack(b, &out, frame, size, "test", &n_out, NULL) == HSRL_OK);
  TEST_ASSERT(rows_equal(&in, &out, n));
  replay_block_free(b);
  hsrl_free(frame);
  replay_rows_buf_free(&in);
  replay_rows_buf_free(&out);
}

/* ---------------------------------------------------------------- bad blocks */

typedef struct bad_fixture {
  replay_rows_shape shape;
  int64_t n;
  replay_rows_buf in, out;
  replay_block *b;
  io_zstd *z;
  uint8_t *frame, *raw, *frame2;
  size_t cap, size, raw_size;
} bad_fixture;

static int bad_setup(bad_fixture *f) {
  memset(f, 0, sizeof *f);
  f->shape = (replay_rows_shape){5, 6, 2, 1};
  f->n = 11;
  replay_rows_buf_init(&f->in, &f->shape, f->n);
  replay_rows_buf_init(&f->out, &f->shape, f->n);
  uint8_t stored[11];
  gen_rows(&f->in, f->n, 21, 32, 0.3, 0.3, stored);
  replay_block_config cfg = {f->shape, f->n, 32, 77, 3};
  if (replay_block_init(&f->b, &cfg) != HSRL_OK) return 0;
  f->cap = replay_block_bound(f->b);
  f->frame = hsrl_malloc(f->cap);
  f->frame2 = hsrl_malloc(f->cap + 64);
  f->raw = hsrl_malloc(f->cap);
  replay_rows v = replay_rows_buf_view(&f->in, 0, f->n);
  if (replay_block_pack(f->b, f->frame, f->cap, &v, &f->size, NULL) != HSRL_OK) return 0;
  if (io_zstd_init(&f->z, 3, f->cap) != HSRL_OK) return 0;
  return io_zstd_decompress_block(f->z, f->raw, f->cap, f->frame, f->size, &f->raw_size) == HSRL_OK;
}

static void bad_teardown(bad_fixture *f) {
  replay_rows_buf_free(&f->in);
  replay_rows_buf_free(&f->out);
  replay_block_free(f->b);
  io_zstd_free(f->z);
  hsrl_free(f->frame), hsrl_free(f->frame2), hsrl_free(f->raw);
}

/* Re-frames raw[0..raw_n) (a valid zstd frame around edited content) and unpacks it: the status,
 * and 1 in *named if the message names `field`. */
static hsrl_status unpack_raw(bad_fixture *f, const uint8_t *raw, size_t raw_n, const char *field,
                              int *named) {
  size_t n2 = 0;
  HSRL_CHECK(io_zstd_compress_block(f->z, f->frame2, f->cap + 64, raw, raw_n, &n2) == HSRL_OK);
  int64_t n_out = 0;
  hsrl_status st = replay_block_unpack(f->b, &f->out, f->frame2, n2, "rank 3", &n_out, NULL);
  char want[96];
  snprintf(want, sizeof want, "field '%s'", field);
  *named = strstr(hsrl_err_message(), want) != NULL && strstr(hsrl_err_message(), "rank 3") != NULL;
  return st;
}

static void test_damaged_frames(void) {
  bad_fixture f;
  TEST_ASSERT(bad_setup(&f));
  int64_t n_out = 0;
  /* a flipped byte anywhere in the frame: refused, never decoded */
  for (size_t pos = 0; pos < f.size; pos += 7) {
    memcpy(f.frame2, f.frame, f.size);
    f.frame2[pos] ^= 0x10;
    hsrl_status st = replay_block_unpack(f.b, &f.out, f.frame2, f.size, "rank 3", &n_out, NULL);
    TEST_ASSERTF(st == HSRL_E_CORRUPT, "flip at %zu: %s", pos, hsrl_status_name(st));
  }
  /* truncated at every length */
  for (size_t len = 0; len < f.size; len++) {
    hsrl_status st = replay_block_unpack(f.b, &f.out, f.frame, len, "rank 3", &n_out, NULL);
    TEST_ASSERTF(st == HSRL_E_CORRUPT, "truncated to %zu: %s", len, hsrl_status_name(st));
  }
  TEST_ASSERT(strstr(hsrl_err_message(), "rank 3"));
  bad_teardown(&f);
}

static void test_reader_mismatch(void) {
  bad_fixture f;
  TEST_ASSERT(bad_setup(&f));
  int64_t n_out = 0;
  struct {
    replay_rows_shape shape;
    int64_t max_rows;
    uint64_t hash;
    const char *field;
  } cases[] = {
      {{6, 6, 2, 1}, 11, 77, "history_len"}, {{5, 7, 2, 1}, 11, 77, "slate_size"},
      {{5, 6, 3, 1}, 11, 77, "n_levels"},    {{5, 6, 2, 0}, 11, 77, "behaviour_logp"},
      {{5, 6, 2, 1}, 11, 78, "config_hash"}, {{5, 6, 2, 1}, 10, 77, "n_rows"},
      {{5, 6, 2, 1}, 3, 77, "n_rows"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    replay_block_config cfg = {cases[c].shape, cases[c].max_rows, 32, cases[c].hash, 3};
    replay_block *r = NULL;
    replay_rows_buf out;
    TEST_ASSERT(replay_block_init(&r, &cfg) == HSRL_OK);
    replay_rows_buf_init(&out, &cases[c].shape, cases[c].max_rows);
    hsrl_status st = replay_block_unpack(r, &out, f.frame, f.size, "rank 3", &n_out, NULL);
    char want[64];
    snprintf(want, sizeof want, "field '%s'", cases[c].field);
    TEST_ASSERTF(st == HSRL_E_INPUT && strstr(hsrl_err_message(), want), "case %zu: %s: %s", c,
                 hsrl_status_name(st), hsrl_err_message());
    replay_rows_buf_free(&out);
    replay_block_free(r);
  }
  /* a reader that does not check the hash takes it */
  replay_block_config any = {f.shape, f.n, 32, 0, 3};
  replay_block *r = NULL;
  TEST_ASSERT(replay_block_init(&r, &any) == HSRL_OK);
  TEST_ASSERT(replay_block_unpack(r, &f.out, f.frame, f.size, "rank 3", &n_out, NULL) == HSRL_OK);
  TEST_ASSERT(rows_equal(&f.in, &f.out, f.n));
  replay_block_free(r);
  bad_teardown(&f);
}

/* Offsets of the documented layout (replay_block.h) for the fixture's block. */
static void test_bad_contents(void) {
  bad_fixture f;
  TEST_ASSERT(bad_setup(&f));
  const size_t n = (size_t)f.n, H = 5, K = 6, KL = 12, nb = (n + 7) / 8;
  const size_t o_users = 40, o_version = o_users + 4 * n, o_reward = o_version + 4 * n;
  const size_t o_done = o_reward + 4 * n, o_history = o_done + nb, o_slate = o_history + 4 * n * H;
  const size_t o_clicks = o_slate + 4 * n * K, o_tokens = o_clicks + (n * K + 7) / 8;
  const size_t o_logp = o_tokens + n * KL, o_nu = o_logp + 4 * n * KL;
  uint8_t *raw = hsrl_malloc(f.raw_size + 8);
  int named = 0;
  hsrl_status st;
  /* the unedited raw bytes re-framed decode exactly: the offsets above are the layout */
  memcpy(raw, f.raw, f.raw_size);
  TEST_ASSERT(unpack_raw(&f, raw, f.raw_size, "x", &named) == HSRL_OK);
  TEST_ASSERT(rows_equal(&f.in, &f.out, f.n));
  TEST_ASSERT(raw[o_tokens] == f.in.tokens[0] && raw[o_tokens + 1] == f.in.tokens[1]);
  uint32_t u0;
  memcpy(&u0, raw + o_users, 4);
  TEST_ASSERT((int32_t)u0 == f.in.users[0]);

#define EDIT_AND_EXPECT(edit, size, code, field)                                             \
  do {                                                                                       \
    memcpy(raw, f.raw, f.raw_size);                                                          \
    edit;                                                                                    \
    st = unpack_raw(&f, raw, size, field, &named);                                           \
    TEST_ASSERTF(st == (code) && named, "%s: %s: %s", field, hsrl_status_name(st), hsrl_err_message()); \
  } while (0)

  EDIT_AND_EXPECT(raw[0] ^= 1, f.raw_size, HSRL_E_CORRUPT, "magic");
  EDIT_AND_EXPECT(raw[4] = 2, f.raw_size, HSRL_E_CORRUPT, "version");
  EDIT_AND_EXPECT(raw[6] |= 0x40, f.raw_size, HSRL_E_CORRUPT, "flags");
  EDIT_AND_EXPECT(raw[6] |= 2, f.raw_size, HSRL_E_CORRUPT, "n_rows"); /* uint16 tokens: sizes disagree */
  EDIT_AND_EXPECT((void)0, f.raw_size - 4, HSRL_E_CORRUPT, "n_rows");           /* truncated content */
  EDIT_AND_EXPECT((void)0, f.raw_size + 4, HSRL_E_CORRUPT, "n_rows");           /* trailing bytes */
  EDIT_AND_EXPECT(memset(raw + o_users + 8, 0, 4), f.raw_size, HSRL_E_INPUT, "users");
  EDIT_AND_EXPECT(raw[o_version + 3] = 0x80, f.raw_size, HSRL_E_INPUT, "policy_version");
  EDIT_AND_EXPECT(memset(raw + o_reward + 4, 0xff, 4), f.raw_size, HSRL_E_INPUT, "reward"); /* NaN */
  EDIT_AND_EXPECT(raw[o_done + 1] |= 0x80, f.raw_size, HSRL_E_CORRUPT, "done");            /* pad bit */
  EDIT_AND_EXPECT(raw[o_history + 3] = 0xff, f.raw_size, HSRL_E_INPUT, "history");         /* < 0 */
  EDIT_AND_EXPECT(memset(raw + o_slate, 0, 4), f.raw_size, HSRL_E_INPUT, "slate");
  EDIT_AND_EXPECT(raw[o_tokens - 1] |= 0x80, f.raw_size, HSRL_E_CORRUPT, "clicks");       /* pad bit */
  EDIT_AND_EXPECT(raw[o_tokens + 2] = 40, f.raw_size, HSRL_E_INPUT, "tokens");             /* >= V 32 */
  EDIT_AND_EXPECT(memset(raw + o_logp, 0xff, 4), f.raw_size, HSRL_E_INPUT, "behaviour_logp");
  EDIT_AND_EXPECT(raw[o_nu] ^= 1, f.raw_size, HSRL_E_CORRUPT, "next_users");   /* flags vs count */
  EDIT_AND_EXPECT(raw[24] ^= 1, f.raw_size, HSRL_E_CORRUPT, "n_rows");         /* count vs size */
#undef EDIT_AND_EXPECT
  hsrl_free(raw);
  bad_teardown(&f);
}

static void test_no_allocation_per_block(void) {
  bad_fixture f;
  TEST_ASSERT(bad_setup(&f));
  replay_rows v = replay_rows_buf_view(&f.in, 0, f.n);
  int64_t n_out = 0, before = hsrl_alloc_count();
  for (int i = 0; i < 200; i++) {
    TEST_ASSERT(replay_block_pack(f.b, f.frame, f.cap, &v, &f.size, NULL) == HSRL_OK);
    TEST_ASSERT(replay_block_unpack(f.b, &f.out, f.frame, f.size, "t", &n_out, NULL) == HSRL_OK);
  }
  TEST_ASSERT(hsrl_alloc_count() == before);
  bad_teardown(&f);
}

int main(void) {
  TEST_RUN(test_round_trip_uint8_tokens);
  TEST_RUN(test_round_trip_uint16_tokens);
  TEST_RUN(test_round_trip_without_tokens);
  TEST_RUN(test_next_history_derivation);
  TEST_RUN(test_derived_vs_stored);
  TEST_RUN(test_damaged_frames);
  TEST_RUN(test_reader_mismatch);
  TEST_RUN(test_bad_contents);
  TEST_RUN(test_no_allocation_per_block);
  return test_summary();
}
