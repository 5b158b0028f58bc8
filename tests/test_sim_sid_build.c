/* test_sim_sid_build.c: RQ-k-means Semantic IDs (sim_sid_codebook.h), their file
 * (sim_sid_file.h) and statistics (sim_sid_stats.h): build tokens = greedy encoding, residual
 * error falls level by level, encoding allocates nothing with scratch and does not depend on the
 * batch, determinism of every stored byte, de-duplication and balanced last level, file round
 * trip and bad files, statistics on a hand-made table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/io/io_h5.h"
#include "sim/sim_kmeans.h"
#include "sim/sim_sid_codebook.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_sid_stats.h"
#include "tests/test_harness.h"

/* Hierarchical data: 8 top clusters (scale 10), 6 sub-clusters each (scale 2), noise 0.3. */
static float *make_tree_data(int64_t n, int64_t dim, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  float *top = hsrl_malloc((size_t)(8 * dim) * sizeof *top), *sub = hsrl_malloc((size_t)(48 * dim) * sizeof *sub);
  for (int64_t i = 0; i < 8 * dim; i++) top[i] = (float)(10.0 * hsrl_rng_normal(&r));
  for (int64_t i = 0; i < 48 * dim; i++) sub[i] = top[(i / dim / 6) * dim + i % dim] + (float)(2.0 * hsrl_rng_normal(&r));
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x);
  for (int64_t i = 0; i < n; i++) {
    int64_t s = (int64_t)hsrl_rng_below(&r, 48);
    for (int64_t d = 0; d < dim; d++) x[i * dim + d] = sub[s * dim + d] + (float)(0.3 * hsrl_rng_normal(&r));
  }
  hsrl_free(top);
  hsrl_free(sub);
  return x;
}

static void build_config(sim_sid_build_config *c, int L, int64_t V, uint64_t seed) {
  sim_sid_build_config_default(c);
  c->n_levels = L;
  for (int l = 0; l < SIM_SID_MAX_LEVELS; l++) c->vocab[l] = V;
  c->seed = seed;
}

static void test_build_tokens_are_the_greedy_encoding(void) {
  const int64_t n = 3001, dim = 11;
  const int L = 3;
  float *x = make_tree_data(n, dim, 1);
  uint16_t *tok = hsrl_malloc((size_t)(n * L) * sizeof *tok), *enc = hsrl_malloc((size_t)(n * L) * sizeof *enc);
  float *err = hsrl_malloc((size_t)n * sizeof *err);
  sim_sid_build_config c;
  build_config(&c, L, 8, 5);
  c.vocab[2] = 13; /* per-level vocabularies */
  c.sample = 500;  /* seeding and warm-up on a sample */
  sim_sid_codebook cb;
  sim_sid_build_report rep;
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, n, dim, &c, &rep) == HSRL_OK);
  TEST_ASSERT(cb.n_levels == L && cb.dim == dim && cb.vocab[2] == 13);
  for (int64_t i = 0; i < n * L; i++) TEST_ASSERT(tok[i] < cb.vocab[i % L]);
  /* each level removes error; the 8 x 6 tree is mostly explained by two levels of 8 */
  double var = 0.0, mean[11] = {0};
  for (int64_t i = 0; i < n * dim; i++) mean[i % dim] += (double)x[i] / (double)n;
  for (int64_t i = 0; i < n * dim; i++) var += ((double)x[i] - mean[i % dim]) * ((double)x[i] - mean[i % dim]) / (double)n;
  TEST_ASSERTF(rep.mse_after[0] < 0.2 * var, "level 1 mse %g of variance %g", rep.mse_after[0], var);
  TEST_ASSERT(rep.mse_after[1] < rep.mse_after[0] && rep.mse_after[2] < rep.mse_after[1]);
  TEST_ASSERT(rep.warm_iters[0] >= 1 && rep.iters[0] >= 1);
  /* frozen-codebook encoding reproduces the build (plain mode, no dedup) */
  float *scratch = hsrl_malloc((size_t)sim_sid_encode_scratch_floats(&cb, n) * sizeof *scratch);
  int64_t before = hsrl_alloc_count();
  sim_sid_codebook_encode(&cb, x, n, enc, err, scratch);
  TEST_ASSERT(hsrl_alloc_count() == before);
  TEST_ASSERT(memcmp(tok, enc, (size_t)(n * L) * sizeof *tok) == 0);
  double mse = 0.0;
  for (int64_t i = 0; i < n; i++) mse += (double)err[i] / (double)n;
  TEST_NEAR(mse, rep.mse_after[2], 1e-6 * (1.0 + mse));
  /* one item at a time, without scratch: the same tokens and errors */
  for (int64_t i = 0; i < n; i += 101) {
    uint16_t one[3];
    float e1;
    sim_sid_codebook_encode(&cb, x + i * dim, 1, one, &e1, NULL);
    TEST_ASSERT(memcmp(one, tok + i * L, sizeof one) == 0);
    TEST_ASSERT(e1 == err[i]);
  }
  /* sq_err is |x - sum_l C_l[z_l]|^2 */
  double e0 = 0.0;
  for (int64_t d = 0; d < dim; d++) {
    double r = (double)x[d];
    for (int l = 0; l < L; l++) r -= (double)cb.centers[l][tok[l] * dim + d];
    e0 += r * r;
  }
  TEST_NEAR(err[0], e0, 1e-4 * (1.0 + e0));
  hsrl_free(scratch);
  sim_sid_codebook_free(&cb);
  sim_sid_codebook_free(&cb); /* twice: a no-op */
  hsrl_free(x); hsrl_free(tok); hsrl_free(enc); hsrl_free(err);
}

static int64_t file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  int64_t n = (int64_t)ftell(f);
  fclose(f);
  return n;
}

/* 1 when dataset `name` holds the same type, shape and bytes in both files. */
static int same_dataset(io_h5 *a, io_h5 *b, const char *name, io_h5_type type, size_t elem) {
  void *da = NULL, *db = NULL;
  int na = 0, nb = 0;
  int64_t sa[IO_H5_MAX_DIMS], sb[IO_H5_MAX_DIMS];
  if (io_h5_read_alloc(a, name, type, &da, &na, sa) != HSRL_OK) return 0;
  if (io_h5_read_alloc(b, name, type, &db, &nb, sb) != HSRL_OK) {
    hsrl_free(da);
    return 0;
  }
  int64_t count = 1;
  int same = na == nb;
  for (int d = 0; same && d < na; d++) {
    same = sa[d] == sb[d];
    count *= sa[d];
  }
  same = same && memcmp(da, db, (size_t)count * elem) == 0;
  hsrl_free(da);
  hsrl_free(db);
  return same;
}

/* A sid file for x (n items; ids 1..n); tokens from build. */
static hsrl_status build_file(sim_sid_file *f, const float *x, int64_t n, int64_t dim, const sim_sid_build_config *c) {
  memset(f, 0, sizeof *f);
  int L = c->n_levels;
  f->n_items = n;
  f->tokens = hsrl_calloc((size_t)((n + 1) * L), sizeof *f->tokens);
  f->live = hsrl_calloc((size_t)(n + 1), 1);
  for (int64_t i = 1; i <= n; i++) f->live[i] = 1;
  snprintf(f->vectors, sizeof f->vectors, "features");
  f->config_hash = 0xabcdef;
  return sim_sid_codebook_build(&f->cb, f->tokens + L, x, n, dim, c, NULL);
}

/* Same seed -> the same stored bytes in every dataset and attribute, and the same file size.
 * (Whole-file bytes are not compared: io_h5's intermediate groups carry HDF5 object timestamps,
 * so two files written in different seconds differ in those words; reported to the io owner.) */
static void test_deterministic_file_contents(void) {
  const int64_t n = 2500, dim = 8;
  float *x = make_tree_data(n, dim, 2);
  float *rows = hsrl_calloc((size_t)((n + 1) * dim), sizeof *rows);
  memcpy(rows + dim, x, (size_t)(n * dim) * sizeof *x);
  char path[3][512];
  int64_t size[3];
  for (int v = 0; v < 3; v++) {
    sim_sid_build_config c;
    build_config(&c, 3, 16, v < 2 ? 42 : 43);
    c.sample = 600;
    c.balanced = 2;
    c.dedup = 1;
    sim_sid_file f;
    TEST_ASSERT(build_file(&f, x, n, dim, &c) == HSRL_OK);
    snprintf(path[v], sizeof path[v], "%s/det%d.sid.h5", test_tmpdir(), v);
    TEST_ASSERT(sim_sid_file_write_ex(&f, rows, "test", path[v]) == HSRL_OK);
    sim_sid_file_free(&f);
    size[v] = file_size(path[v]);
    TEST_ASSERT(size[v] > 0);
  }
  TEST_ASSERT(size[0] == size[1]);
  static const struct { const char *name; io_h5_type type; size_t elem; } sets[] = {
      {"codebook/level0", IO_H5_F32, 4}, {"codebook/level1", IO_H5_F32, 4}, {"codebook/level2", IO_H5_F32, 4},
      {"items/tokens", IO_H5_U16, 2},    {"items/live", IO_H5_U8, 1},       {"items/vectors", IO_H5_F32, 4},
      {"stats/perplexity", IO_H5_F64, 8}, {"stats/tokens_used", IO_H5_I64, 8}, {"stats/n_prefixes", IO_H5_I64, 8},
      {"stats/mse_after", IO_H5_F64, 8}};
  io_h5 *h[3] = {NULL, NULL, NULL};
  for (int v = 0; v < 3; v++) TEST_ASSERT(io_h5_open(&h[v], path[v]) == HSRL_OK);
  int n_differ_other_seed = 0;
  for (size_t q = 0; q < sizeof sets / sizeof sets[0]; q++) {
    TEST_ASSERTF(same_dataset(h[0], h[1], sets[q].name, sets[q].type, sets[q].elem), "%s differs", sets[q].name);
    n_differ_other_seed += !same_dataset(h[0], h[2], sets[q].name, sets[q].type, sets[q].elem);
  }
  TEST_ASSERT(n_differ_other_seed >= 4); /* another seed: other codebooks and tokens */
  double r0 = -1.0, r1 = -2.0;
  char b0[256], b1[256];
  TEST_ASSERT(io_h5_attr_get_f64(h[0], "/", "collision_rate", &r0) == HSRL_OK);
  TEST_ASSERT(io_h5_attr_get_f64(h[1], "/", "collision_rate", &r1) == HSRL_OK && r0 == r1);
  TEST_ASSERT(io_h5_attr_get_str(h[0], "/", "vocab", b0, sizeof b0) == HSRL_OK && !strcmp(b0, "16,16,16"));
  TEST_ASSERT(io_h5_attr_get_str(h[1], "/", "vocab", b1, sizeof b1) == HSRL_OK && !strcmp(b0, b1));
  for (int v = 0; v < 3; v++) io_h5_close(h[v]);
  hsrl_free(x); hsrl_free(rows);
}

static void test_file_round_trip_and_bad_files(void) {
  const int64_t n = 700, dim = 5;
  float *x = make_tree_data(n, dim, 3);
  float *rows = hsrl_calloc((size_t)((n + 1) * dim), sizeof *rows);
  memcpy(rows + dim, x, (size_t)(n * dim) * sizeof *x);
  sim_sid_build_config c;
  build_config(&c, 2, 12, 7);
  c.vocab[1] = 9;
  sim_sid_file f, g;
  TEST_ASSERT(build_file(&f, x, n, dim, &c) == HSRL_OK);
  f.live[17] = 0; /* a deleted item */
  char path[512], bad[512];
  snprintf(path, sizeof path, "%s/rt.sid.h5", test_tmpdir());
  int64_t handles = io_h5_open_handles();
  TEST_ASSERT(sim_sid_file_write_ex(&f, rows, "round trip", path) == HSRL_OK);
  TEST_ASSERT(sim_sid_file_read(&g, path) == HSRL_OK);
  TEST_ASSERT(g.n_items == n && g.cb.n_levels == 2 && g.cb.dim == dim && g.cb.vocab[0] == 12 && g.cb.vocab[1] == 9);
  TEST_ASSERT(g.config_hash == 0xabcdef && !strcmp(g.vectors, "features"));
  TEST_ASSERT(memcmp(g.tokens, f.tokens, (size_t)((n + 1) * 2) * sizeof *g.tokens) == 0);
  TEST_ASSERT(memcmp(g.live, f.live, (size_t)(n + 1)) == 0);
  for (int l = 0; l < 2; l++)
    TEST_ASSERT(memcmp(g.cb.centers[l], f.cb.centers[l], (size_t)(f.cb.vocab[l] * dim) * sizeof(float)) == 0);
  float *v = NULL;
  int64_t vr = 0, vd = 0;
  TEST_ASSERT(sim_sid_file_read_vectors(&v, &vr, &vd, path) == HSRL_OK);
  TEST_ASSERT(v && vr == n + 1 && vd == dim && memcmp(v, rows, (size_t)(vr * vd) * sizeof *v) == 0);
  hsrl_free(v);
  sim_sid_file_free(&g);
  /* without vectors: read_vectors says so with NULL */
  snprintf(bad, sizeof bad, "%s/novec.sid.h5", test_tmpdir());
  TEST_ASSERT(sim_sid_file_write(&f, bad) == HSRL_OK);
  TEST_ASSERT(sim_sid_file_read_vectors(&v, &vr, &vd, bad) == HSRL_OK && v == NULL);
  /* a token outside its vocabulary is refused by the writer, nothing is left behind */
  f.tokens[5 * 2 + 1] = 9;
  snprintf(bad, sizeof bad, "%s/badtok.sid.h5", test_tmpdir());
  TEST_ASSERT(sim_sid_file_write(&f, bad) == HSRL_E_INPUT);
  TEST_ASSERT(strstr(hsrl_err_message(), "items/tokens") != NULL);
  FILE *probe = fopen(bad, "rb");
  TEST_ASSERT(probe == NULL);
  f.tokens[5 * 2 + 1] = 0;
  f.live[0] = 1;
  TEST_ASSERT(sim_sid_file_write(&f, bad) == HSRL_E_INPUT);
  f.live[0] = 0;
  /* a truncated file and a file of another kind: clear errors, no crash */
  unsigned char *buf = hsrl_malloc(1 << 20);
  FILE *in = fopen(path, "rb");
  int64_t len = (int64_t)fread(buf, 1, 1 << 20, in);
  fclose(in);
  snprintf(bad, sizeof bad, "%s/trunc.sid.h5", test_tmpdir());
  FILE *out = fopen(bad, "wb");
  fwrite(buf, 1, (size_t)(len / 2), out);
  fclose(out);
  hsrl_status st = sim_sid_file_read(&g, bad);
  TEST_ASSERT(st == HSRL_E_INPUT || st == HSRL_E_CORRUPT);
  io_h5 *h = NULL;
  snprintf(bad, sizeof bad, "%s/other.h5", test_tmpdir());
  TEST_ASSERT(io_h5_create(&h, bad) == HSRL_OK);
  TEST_ASSERT(io_h5_stamp(h, "data", 1, 0) == HSRL_OK);
  TEST_ASSERT(io_h5_commit(h) == HSRL_OK);
  TEST_ASSERT(sim_sid_file_read(&g, bad) == HSRL_E_INPUT);
  TEST_ASSERT(g.tokens == NULL && g.cb.centers[0] == NULL); /* nothing left allocated */
  TEST_ASSERT(io_h5_open_handles() == handles);
  hsrl_free(buf);
  sim_sid_file_free(&f);
  hsrl_free(x); hsrl_free(rows);
}

/* Identical vectors cannot be told apart by k-means; dedup gives them distinct last tokens. */
static void test_dedup_and_balanced_last_level(void) {
  const int64_t distinct = 40, copies = 4, n = distinct * copies, dim = 6, V2 = 32;
  const int L = 2;
  float *base = make_tree_data(distinct, dim, 4);
  float *x = hsrl_malloc((size_t)(n * dim) * sizeof *x);
  for (int64_t i = 0; i < n; i++) memcpy(x + i * dim, base + (i % distinct) * dim, (size_t)dim * sizeof *x);
  uint16_t *plain = hsrl_malloc((size_t)(n * L) * sizeof *plain), *dd = hsrl_malloc((size_t)(n * L) * sizeof *dd);
  sim_sid_build_config c;
  build_config(&c, L, 16, 9);
  c.vocab[1] = V2;
  sim_sid_codebook cb1, cb2;
  sim_sid_build_report rep;
  sim_sid_stats s;
  TEST_ASSERT(sim_sid_codebook_build(&cb1, plain, x, n, dim, &c, NULL) == HSRL_OK);
  sim_sid_stats_compute(&s, &cb1, plain, NULL, n, x);
  TEST_ASSERTF(s.collision_rate == 1.0 && s.largest_bucket >= copies, "plain: rate %g", s.collision_rate);
  c.dedup = 1;
  TEST_ASSERT(sim_sid_codebook_build(&cb2, dd, x, n, dim, &c, &rep) == HSRL_OK);
  sim_sid_stats_compute(&s, &cb2, dd, NULL, n, x);
  TEST_ASSERTF(s.collision_rate == 0.0 && s.n_distinct == n, "dedup: rate %g", s.collision_rate);
  TEST_ASSERT(rep.n_dedup_unresolved == 0 && rep.n_dedup_moved >= n - distinct);
  /* dedup changes only the last token of moved items, and the codebooks not at all */
  TEST_ASSERT(memcmp(cb1.centers[0], cb2.centers[0], (size_t)(16 * dim) * sizeof(float)) == 0);
  TEST_ASSERT(memcmp(cb1.centers[1], cb2.centers[1], (size_t)(V2 * dim) * sizeof(float)) == 0);
  int64_t moved = 0;
  for (int64_t i = 0; i < n; i++) {
    TEST_ASSERT(dd[i * L] == plain[i * L]);
    moved += dd[i * L + 1] != plain[i * L + 1];
    /* identical copies are equally close: only the lowest-index one can keep the greedy code */
    if (i >= distinct) TEST_ASSERT(dd[i * L + 1] != plain[i * L + 1]);
  }
  TEST_ASSERT(moved == rep.n_dedup_moved);
  /* a moved item takes the nearest code free in its prefix: no code of that prefix that was
   * free (unused by the final table) is nearer than the one it got */
  for (int64_t i = 0; i < n; i++) {
    if (dd[i * L + 1] == plain[i * L + 1]) continue;
    float r[6];
    for (int64_t d = 0; d < dim; d++) r[d] = x[i * dim + d] - cb2.centers[0][dd[i * L] * dim + d];
    double got = sim_kmeans_dist2(r, cb2.centers[1] + dd[i * L + 1] * dim, dim);
    for (int64_t j = 0; j < V2; j++) {
      if (sim_kmeans_dist2(r, cb2.centers[1] + j * dim, dim) >= got) continue;
      int used = 0;
      for (int64_t q = 0; q < n && !used; q++) used = dd[q * L] == dd[i * L] && dd[q * L + 1] == j;
      TEST_ASSERTF(used, "item %lld got code %u while nearer code %lld was free", (long long)i,
                   (unsigned)dd[i * L + 1], (long long)j);
    }
  }
  sim_sid_codebook_free(&cb2);
  /* balanced last level: every last-level code holds at most ceil(n / V) items */
  c.dedup = 0;
  c.balanced = 2;
  TEST_ASSERT(sim_sid_codebook_build(&cb2, dd, x, n, dim, &c, NULL) == HSRL_OK);
  int64_t size[32] = {0}, cap = (n + V2 - 1) / V2;
  for (int64_t i = 0; i < n; i++) size[dd[i * L + 1]]++;
  for (int j = 0; j < V2; j++) TEST_ASSERTF(size[j] <= cap, "code %d: %lld > %lld", j, (long long)size[j], (long long)cap);
  sim_sid_codebook_free(&cb1);
  sim_sid_codebook_free(&cb2);
  hsrl_free(base); hsrl_free(x); hsrl_free(plain); hsrl_free(dd);
}

static void test_stats_on_a_known_table(void) {
  /* L = 2, V = 4; row 0 is padding, row 8 deleted */
  const uint16_t tok[10][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 1}, {1, 2}, {1, 2}, {1, 2}, {3, 3}, {0, 1}, {2, 0}};
  const uint8_t live[10] = {0, 1, 1, 1, 1, 1, 1, 1, 0, 1};
  sim_sid_codebook cb;
  memset(&cb, 0, sizeof cb);
  cb.n_levels = 2;
  cb.vocab[0] = cb.vocab[1] = 4;
  cb.dim = 1;
  sim_sid_stats s;
  sim_sid_stats_compute(&s, &cb, &tok[0][0], live, 10, NULL);
  TEST_ASSERT(s.n_items == 8 && s.n_distinct == 5);
  TEST_ASSERT(s.n_colliding == 5 && s.largest_bucket == 3); /* (0,0) x2 and (1,2) x3 */
  TEST_NEAR(s.collision_rate, 5.0 / 8.0, 1e-15);
  /* level 1 codes: 0 x3, 1 x3, 2 x1, 3 x1 */
  double h = -(2 * (3.0 / 8) * log2(3.0 / 8) + 2 * (1.0 / 8) * log2(1.0 / 8));
  TEST_ASSERT(s.level[0].used == 4 && s.level[0].n_prefixes == 4);
  TEST_NEAR(s.level[0].entropy_bits, h, 1e-12);
  TEST_NEAR(s.level[0].perplexity, pow(2.0, h), 1e-12);
  TEST_NEAR(s.level[0].cond_perplexity, pow(2.0, h), 1e-12);
  TEST_ASSERT(s.level[0].prefix_max == 3 && s.level[0].prefix_median == 1);
  TEST_NEAR(s.level[0].prefix_mean, 2.0, 1e-15);
  /* level 2 codes: 0 x3, 1 x1, 2 x3, 3 x1; prefixes = full SIDs: sizes 2, 1, 3, 1, 1 */
  TEST_ASSERT(s.level[1].used == 4 && s.level[1].n_prefixes == 5 && s.level[1].prefix_max == 3);
  TEST_ASSERT(s.level[1].prefix_median == 1 && s.level[1].prefix_p90 == 3);
  double hfull = -(2.0 / 8 * log2(2.0 / 8) + 3.0 / 8 * log2(3.0 / 8) + 3 * (1.0 / 8) * log2(1.0 / 8));
  TEST_NEAR(s.level[1].cond_perplexity, pow(2.0, hfull - h), 1e-12);
  TEST_ASSERT(isnan(s.level[0].mse) && isnan(s.total_variance));
  /* with vectors: the reconstruction error after each level */
  float c0[4] = {0, 10, 20, 30}, c1[4] = {0, 1, 2, 3}, vec[10];
  cb.centers[0] = c0;
  cb.centers[1] = c1;
  for (int i = 0; i < 10; i++) vec[i] = c0[tok[i][0]] + c1[tok[i][1]] + (i == 3 ? 0.5f : 0.0f);
  sim_sid_stats_compute(&s, &cb, &tok[0][0], live, 10, vec);
  TEST_NEAR(s.level[1].mse, 0.25 / 8.0, 1e-12);
  double l1 = 0.0;
  for (int i = 1; i < 10; i++)
    if (live[i]) l1 += ((double)c1[tok[i][1]] + (i == 3 ? 0.5 : 0.0)) * ((double)c1[tok[i][1]] + (i == 3 ? 0.5 : 0.0));
  TEST_NEAR(s.level[0].mse, l1 / 8.0, 1e-12);
  TEST_ASSERT(s.level[1].rel_mse > 0.0 && s.level[1].rel_mse < s.level[0].rel_mse);
}

static void test_bad_config_and_input(void) {
  float x[12] = {0};
  uint16_t tok[16];
  sim_sid_codebook cb;
  sim_sid_build_config c;
  build_config(&c, 5, 4, 1);
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, 4, 3, &c, NULL) == HSRL_E_USAGE);
  build_config(&c, 2, 0, 1);
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, 4, 3, &c, NULL) == HSRL_E_USAGE);
  build_config(&c, 2, 70000, 1);
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, 4, 3, &c, NULL) == HSRL_E_USAGE);
  build_config(&c, 2, 2, 1);
  x[7] = NAN;
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, 4, 3, &c, NULL) == HSRL_E_INPUT);
  TEST_ASSERT(strstr(hsrl_err_message(), "row 2") != NULL);
  TEST_ASSERT(cb.centers[0] == NULL);
  /* more codes than items: still a valid (if wasteful) codebook */
  x[7] = 1.0f;
  build_config(&c, 2, 8, 1);
  TEST_ASSERT(sim_sid_codebook_build(&cb, tok, x, 4, 3, &c, NULL) == HSRL_OK);
  for (int i = 0; i < 8; i++) TEST_ASSERT(tok[i] < 8);
  sim_sid_codebook_free(&cb);
}

int main(void) {
  TEST_RUN(test_build_tokens_are_the_greedy_encoding);
  TEST_RUN(test_deterministic_file_contents);
  TEST_RUN(test_file_round_trip_and_bad_files);
  TEST_RUN(test_dedup_and_balanced_last_level);
  TEST_RUN(test_stats_on_a_known_table);
  TEST_RUN(test_bad_config_and_input);
  return test_summary();
}
