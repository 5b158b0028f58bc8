/* test_sim_sid_churn.c: catalog churn with frozen codebooks (sim_sid_churn.h; method.md §5).
 * Add 10% new items and delete 10% (then revive some and delete more): the index and trie equal
 * ones built from scratch, new items get the greedy nearest-centre tokens, decoding stays exact
 * (top-K by trie = brute force) and never returns a deleted item, and no codebook byte changes;
 * the `hsrl sid assign` command writes the same result with the codebooks byte for byte, keeps
 * the stored vectors, and rejects bad requests with exit status 2 without writing anything. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/io/io_h5.h"
#include "sim/sim_data.h"
#include "sim/sim_sid_churn.h"
#include "sim/sim_sid_decode.h"
#include "tests/test_harness.h"

enum { N0 = 2000, N_ALL = 2250, DIM = 6, L = 3 };
static const int64_t VOCAB[L] = {8, 8, 4};

static float *g_vec; /* (N_ALL + 1, DIM): item vectors, clustered */

static void make_vectors(void) {
  hsrl_rng r;
  hsrl_rng_init(&r, 404, 0);
  float centres[12][DIM];
  for (int c = 0; c < 12; c++)
    for (int j = 0; j < DIM; j++) centres[c][j] = (float)(3.0 * hsrl_rng_normal(&r));
  g_vec = hsrl_calloc((size_t)(N_ALL + 1) * DIM, sizeof(float));
  for (int64_t i = 1; i <= N_ALL; i++) {
    int c = (int)hsrl_rng_below(&r, 12);
    for (int j = 0; j < DIM; j++) g_vec[i * DIM + j] = centres[c][j] + (float)hsrl_rng_normal(&r);
  }
}

/* A SID file for items 1..N0 (all live), codebooks built on their vectors. */
static void make_file(sim_sid_file *f) {
  memset(f, 0, sizeof *f);
  sim_sid_build_config c;
  sim_sid_build_config_default(&c);
  c.n_levels = L;
  for (int l = 0; l < L; l++) c.vocab[l] = VOCAB[l];
  c.dedup = 0;
  c.seed = 3;
  f->n_items = N0;
  f->tokens = hsrl_calloc((size_t)(N0 + 1) * L, sizeof(uint16_t));
  f->live = hsrl_calloc(N0 + 1, 1);
  for (int64_t i = 1; i <= N0; i++) f->live[i] = 1;
  HSRL_CHECK(sim_sid_codebook_build(&f->cb, f->tokens + L, g_vec + DIM, N0, DIM, &c, NULL) == HSRL_OK);
  snprintf(f->vectors, sizeof f->vectors, "features");
  f->config_hash = 0x5151u;
}

/* A deep copy of the codebooks' floats, to compare bytes later. */
static float *codebook_copy(const sim_sid_codebook *cb) {
  int64_t n = 0;
  for (int l = 0; l < cb->n_levels; l++) n += cb->vocab[l] * cb->dim;
  float *out = hsrl_malloc((size_t)n * sizeof(float)), *p = out;
  for (int l = 0; l < cb->n_levels; l++) {
    memcpy(p, cb->centers[l], (size_t)(cb->vocab[l] * cb->dim) * sizeof(float));
    p += cb->vocab[l] * cb->dim;
  }
  return out;
}

static int codebook_same(const sim_sid_codebook *cb, const float *copy) {
  const float *p = copy;
  for (int l = 0; l < cb->n_levels; l++) {
    if (memcmp(p, cb->centers[l], (size_t)(cb->vocab[l] * cb->dim) * sizeof(float))) return 0;
    p += cb->vocab[l] * cb->dim;
  }
  return cb->n_levels == L && cb->vocab[0] == VOCAB[0] && cb->vocab[1] == VOCAB[1] && cb->vocab[2] == VOCAB[2];
}

/* The greedy residual rule checked naively in double: the chosen centre is a nearest one (up to
 * the rounding of the BLAS distances). Returns the first bad level or -1. */
static int check_greedy(const sim_sid_codebook *cb, const float *x, const uint16_t *z) {
  double r[DIM];
  for (int j = 0; j < DIM; j++) r[j] = (double)x[j];
  for (int l = 0; l < L; l++) {
    double best = HUGE_VAL, chosen = 0.0;
    for (int64_t v = 0; v < cb->vocab[l]; v++) {
      double d2 = 0.0;
      for (int j = 0; j < DIM; j++) d2 += (r[j] - (double)cb->centers[l][v * DIM + j]) * (r[j] - (double)cb->centers[l][v * DIM + j]);
      if (d2 < best) best = d2;
      if (v == z[l]) chosen = d2;
    }
    if (chosen > best + 1e-4 * (1.0 + best)) return l;
    for (int j = 0; j < DIM; j++) r[j] -= (double)cb->centers[l][z[l] * DIM + j];
  }
  return -1;
}

/* The index and trie equal fresh ones built from the file's tables; top-K by trie equals brute
 * force and no deleted item is ever returned. *ok = 1 when all holds. */
static void check_consistent(const sim_sid_file *f, const sim_sid_index *idx, const sim_sid_trie *trie, uint64_t seed,
                             int *ok) {
  *ok = 0;
  sim_sid_index fresh;
  TEST_ASSERT(sim_sid_index_init(&fresh, L, f->cb.vocab, f->n_items, f->tokens, f->live, idx->tie_seed) == HSRL_OK);
  TEST_ASSERT(fresh.n_items == idx->n_items && fresh.n_live == idx->n_live && fresh.n_sids == idx->n_sids);
  TEST_ASSERT(!memcmp(fresh.sid_key, idx->sid_key, (size_t)idx->n_sids * sizeof(uint64_t)));
  TEST_ASSERT(!memcmp(fresh.bucket_start, idx->bucket_start, (size_t)(idx->n_sids + 1) * sizeof(int64_t)));
  TEST_ASSERT(!memcmp(fresh.bucket_items, idx->bucket_items, (size_t)idx->n_live * sizeof(int32_t)));
  TEST_ASSERT(fresh.n_colliding_items == idx->n_colliding_items && fresh.max_bucket == idx->max_bucket);
  sim_sid_trie t2;
  memset(&t2, 0, sizeof t2);
  sim_sid_trie_build(&t2, &fresh);
  TEST_ASSERT(trie->generation == idx->generation);
  for (int d = 0; d < L; d++) {
    TEST_ASSERT(t2.n_nodes[d + 1] == trie->n_nodes[d + 1]);
    TEST_ASSERT(!memcmp(t2.child_start[d], trie->child_start[d], (size_t)(t2.n_nodes[d] + 1) * sizeof(int64_t)));
    TEST_ASSERT(!memcmp(t2.token[d], trie->token[d], (size_t)t2.n_nodes[d + 1] * sizeof(uint16_t)));
  }
  sim_sid_trie_free(&t2);
  sim_sid_index_free(&fresh);
  /* decoding */
  enum { B = 40, K = 25 };
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  float lp[L][B * 8];
  for (int l = 0; l < L; l++)
    for (int b = 0; b < B; b++) {
      double z = 0.0, t[8];
      for (int64_t v = 0; v < VOCAB[l]; v++) t[v] = 2.0 * hsrl_rng_normal(&r), z += exp(t[v]);
      for (int64_t v = 0; v < VOCAB[l]; v++) lp[l][b * VOCAB[l] + v] = (float)(t[v] - log(z));
    }
  sim_sid_logp view = {.level = {lp[0], lp[1], lp[2], NULL}};
  sim_sid_decode_ws ws;
  sim_sid_decode_ws_init(&ws, K, L, 8, 0);
  int32_t a[B * K], bf[B * K];
  double la[B * K], lb[B * K];
  sim_sid_decode_topk(a, la, NULL, idx, trie, &view, B, K, &ws);
  sim_sid_decode_topk_list(bf, lb, NULL, idx, &view, NULL, 0, B, K, &ws);
  int same = !memcmp(a, bf, sizeof a) && !memcmp(la, lb, sizeof la);
  hsrl_rng rs;
  hsrl_rng_init(&rs, seed, 1);
  int32_t s[B * K];
  sim_sid_decode_sample(s, NULL, NULL, idx, trie, &view, B, K, 0.2f, &rs, &ws);
  int all_live = 1;
  for (int j = 0; j < B * K; j++) all_live &= f->live[a[j]] && f->live[s[j]];
  sim_sid_decode_ws_free(&ws);
  TEST_ASSERT(same);
  TEST_ASSERT(all_live);
  *ok = 1;
}

static void test_churn_in_memory(void) {
  sim_sid_file f;
  make_file(&f);
  float *cb_before = codebook_copy(&f.cb);
  sim_sid_index idx;
  TEST_ASSERT(sim_sid_index_init(&idx, L, f.cb.vocab, f.n_items, f.tokens, f.live, 0) == HSRL_OK);
  sim_sid_trie trie;
  memset(&trie, 0, sizeof trie);
  sim_sid_trie_build(&trie, &idx);
  int ok;
  check_consistent(&f, &idx, &trie, 1, &ok);
  TEST_ASSERT(ok);
  hsrl_rng r;
  hsrl_rng_init(&r, 17, 0);
  /* round 1: ids 2001..2200 added (10%), 200 random live ids deleted (10%) */
  int32_t add[250], del[200];
  int64_t n_add = 0, n_del = 0;
  for (int32_t i = N0 + 1; i <= 2200; i++) add[n_add++] = i;
  while (n_del < 200) {
    int32_t i = 1 + (int32_t)hsrl_rng_below(&r, N0);
    int dup = 0;
    for (int64_t t = 0; t < n_del; t++) dup |= del[t] == i;
    if (!dup) del[n_del++] = i;
  }
  float add_vec[250 * DIM], sq[250];
  for (int64_t t = 0; t < n_add; t++) memcpy(add_vec + t * DIM, g_vec + (int64_t)add[t] * DIM, sizeof(float) * DIM);
  int64_t live_before = idx.n_live;
  TEST_ASSERT(sim_sid_churn_apply(&f, &idx, &trie, add, add_vec, n_add, del, n_del, sq) == HSRL_OK);
  TEST_ASSERT(f.n_items == 2200 && idx.n_live == live_before && idx.n_items == 2200);
  TEST_ASSERT(codebook_same(&f.cb, cb_before));
  for (int64_t t = 0; t < n_add; t++) {
    int bad = check_greedy(&f.cb, add_vec + t * DIM, f.tokens + (int64_t)add[t] * L);
    TEST_ASSERTF(bad < 0, "item %d: token at level %d is not a nearest centre", add[t], bad);
    TEST_ASSERT(sq[t] >= 0.0f && f.live[add[t]]);
  }
  for (int64_t t = 0; t < n_del; t++) TEST_ASSERT(!f.live[del[t]] && !idx.live[del[t]]);
  check_consistent(&f, &idx, &trie, 2, &ok);
  TEST_ASSERT(ok);
  /* round 2: revive 50 deleted ids (with moved vectors), add 2201..2250, delete 100 more */
  int64_t n_add2 = 0, n_del2 = 0;
  int32_t add2[100], del2[100];
  float add_vec2[100 * DIM];
  for (int64_t t = 0; t < 50; t++) {
    add2[n_add2] = del[t];
    for (int j = 0; j < DIM; j++) add_vec2[n_add2 * DIM + j] = g_vec[(int64_t)del[t] * DIM + j] + 0.5f;
    n_add2++;
  }
  for (int32_t i = 2201; i <= N_ALL; i++, n_add2++) memcpy(add_vec2 + n_add2 * DIM, g_vec + (int64_t)i * DIM, sizeof(float) * DIM), add2[n_add2] = i;
  for (int32_t i = 1; n_del2 < 100; i++)
    if (f.live[i]) del2[n_del2++] = i;
  TEST_ASSERT(sim_sid_churn_apply(&f, &idx, &trie, add2, add_vec2, n_add2, del2, n_del2, NULL) == HSRL_OK);
  TEST_ASSERT(codebook_same(&f.cb, cb_before) && f.n_items == N_ALL);
  check_consistent(&f, &idx, &trie, 3, &ok);
  TEST_ASSERT(ok);
  /* bad requests change nothing */
  uint64_t gen = idx.generation;
  TEST_ASSERT(sim_sid_churn_apply(&f, &idx, &trie, add2, add_vec2, 1, NULL, 0, NULL) == HSRL_E_INPUT); /* live */
  TEST_ASSERT(sim_sid_churn_apply(&f, &idx, &trie, NULL, NULL, 0, del + 199, 1, NULL) == HSRL_E_INPUT); /* not live */
  int32_t fresh_id = 3000;
  float nan_vec[DIM] = {0, 0, NAN, 0, 0, 0};
  TEST_ASSERT(sim_sid_churn_apply(&f, &idx, &trie, &fresh_id, nan_vec, 1, NULL, 0, NULL) == HSRL_E_INPUT);
  TEST_ASSERT(idx.generation == gen && f.n_items == N_ALL && codebook_same(&f.cb, cb_before));
  hsrl_free(cb_before);
  sim_sid_trie_free(&trie);
  sim_sid_index_free(&idx);
  sim_sid_file_free(&f);
}

/* ---- the command ---------------------------------------------------------------------------- */

static int run_assign(const char **args, int n) {
  char *argv[32];
  argv[0] = (char *)"assign";
  for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
  hsrl_err_clear();
  return sim_sid_assign_command(n + 1, argv);
}

static void write_vectors(const char *path, const float *v, int64_t rows, int64_t dim) {
  io_h5 *h;
  HSRL_CHECK(io_h5_create(&h, path) == HSRL_OK);
  int64_t dims[2] = {rows, dim};
  HSRL_CHECK(io_h5_write_f32(h, "items/vectors", v, 2, dims, 0) == HSRL_OK);
  HSRL_CHECK(io_h5_commit(h) == HSRL_OK);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void test_assign_command(void) {
  char in[512], out[512], vec_path[512], vec5[512], del_path[512], bad_out[512];
  const char *dir = test_tmpdir();
  snprintf(in, sizeof in, "%s/cat.sid.h5", dir);
  snprintf(out, sizeof out, "%s/cat2.sid.h5", dir);
  snprintf(vec_path, sizeof vec_path, "%s/new.h5", dir);
  snprintf(vec5, sizeof vec5, "%s/new5.h5", dir);
  snprintf(del_path, sizeof del_path, "%s/del.txt", dir);
  snprintf(bad_out, sizeof bad_out, "%s/never.sid.h5", dir);
  sim_sid_file f;
  make_file(&f);
  TEST_ASSERT(sim_sid_file_write_ex(&f, g_vec, "test", in) == HSRL_OK); /* with vectors 0..N0 */
  write_vectors(vec_path, g_vec, 2201, DIM);
  write_vectors(vec5, g_vec, 2201, 5);
  FILE *fp = fopen(del_path, "w");
  TEST_ASSERT(fp != NULL);
  fprintf(fp, "5, 6\n100-119\n  7\n");
  fclose(fp);
  char del_arg[520];
  snprintf(del_arg, sizeof del_arg, "@%s", del_path);
  const char *args[] = {"--sid", in, "--vectors", vec_path, "--add", "new", "--delete", del_arg, "--out", out, "--quiet"};
  TEST_ASSERTF(run_assign(args, 11) == 0, "%s", hsrl_err_message());
  /* the same churn in memory */
  int32_t *del = NULL, add[200];
  int64_t n_del = 0;
  TEST_ASSERT(sim_sid_churn_parse_ids("5,6,100-119,7", "delete", &del, &n_del) == HSRL_OK && n_del == 23);
  for (int t = 0; t < 200; t++) add[t] = N0 + 1 + t;
  TEST_ASSERT(sim_sid_churn_apply(&f, NULL, NULL, add, g_vec + (N0 + 1) * DIM, 200, del, n_del, NULL) == HSRL_OK);
  hsrl_free(del);
  sim_sid_file g;
  TEST_ASSERT(sim_sid_file_read(&g, out) == HSRL_OK);
  sim_sid_file orig;
  TEST_ASSERT(sim_sid_file_read(&orig, in) == HSRL_OK);
  float *cb_orig = codebook_copy(&orig.cb);
  TEST_ASSERT(codebook_same(&g.cb, cb_orig)); /* no codebook byte changed */
  TEST_ASSERT(g.cb.dim == DIM && g.config_hash == 0x5151u && !strcmp(g.vectors, "features"));
  TEST_ASSERT(g.n_items == 2200 && f.n_items == 2200);
  TEST_ASSERT(!memcmp(g.tokens, f.tokens, (size_t)(2201 * L) * sizeof(uint16_t)));
  TEST_ASSERT(!memcmp(g.live, f.live, 2201));
  TEST_ASSERT(!g.live[5] && !g.live[110] && g.live[2200] && g.live[4]);
  float *vec = NULL;
  int64_t rows, dim;
  TEST_ASSERT(sim_sid_file_read_vectors(&vec, &rows, &dim, out) == HSRL_OK && vec && rows == 2201 && dim == DIM);
  TEST_ASSERT(!memcmp(vec, g_vec, (size_t)(2201 * DIM) * sizeof(float)));
  hsrl_free(vec);
  /* bad requests: exit 2, a message, no output file */
  const char *a1[] = {"--sid", out, "--vectors", vec_path, "--add", "2001", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a1, 9) == 2 && strstr(hsrl_err_message(), "already live"));
  const char *a2[] = {"--sid", out, "--delete", "5", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a2, 7) == 2 && strstr(hsrl_err_message(), "not live"));
  const char *a3[] = {"--sid", in, "--vectors", vec_path, "--add", "2300", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a3, 9) == 2 && strstr(hsrl_err_message(), "2300"));
  const char *a4[] = {"--sid", in, "--vectors", vec5, "--add", "2001", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a4, 9) == 2 && strstr(hsrl_err_message(), "wide"));
  const char *a5[] = {"--sid", in, "--vectors", vec_path, "--add", "5-3", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a5, 9) == 2 && strstr(hsrl_err_message(), "5-3"));
  const char *a6[] = {"--sid", in, "--add", "2001", "--out", bad_out};
  TEST_ASSERT(run_assign(a6, 6) == 2); /* no vector source */
  const char *a7[] = {"--sid", in, "--delete", "1", "--bogus"};
  TEST_ASSERT(run_assign(a7, 5) == 2);
  const char *a8[] = {"--sid", in, "--vectors", vec_path, "--add", "new", "--out", bad_out, "--quiet", "--data",
                      "x.data.h5"};
  TEST_ASSERT(run_assign(a8, 11) == 2); /* two vector sources */
  const char *a9[] = {"--sid", vec_path, "--delete", "1", "--out", bad_out, "--quiet"};
  TEST_ASSERT(run_assign(a9, 7) == 2); /* not a SID file */
  TEST_ASSERT(!exists(bad_out));
  /* deletes only, no vectors needed; output over its own input; a summary on stdout */
  const char *a10[] = {"--sid", out, "--delete", "2200", "--out", out};
  TEST_ASSERT(run_assign(a10, 6) == 0);
  sim_sid_file h;
  TEST_ASSERT(sim_sid_file_read(&h, out) == HSRL_OK);
  TEST_ASSERT(!h.live[2200] && h.live[2199] && codebook_same(&h.cb, cb_orig));
  sim_sid_file_free(&h);
  hsrl_free(cb_orig);
  sim_sid_file_free(&orig);
  sim_sid_file_free(&g);
  sim_sid_file_free(&f);
}

/* --data: the raw item features of a prepared-data file are the vectors of a "features" file. */
static void test_assign_from_data(void) {
  char in[512], out[512], data_path[512];
  const char *dir = test_tmpdir();
  snprintf(in, sizeof in, "%s/d.sid.h5", dir);
  snprintf(out, sizeof out, "%s/d2.sid.h5", dir);
  snprintf(data_path, sizeof data_path, "%s/d.data.h5", dir);
  sim_dataset d;
  memset(&d, 0, sizeof d);
  sim_dataset_alloc(&d, 2100, DIM, 1, 1, 1, 1, 1);
  snprintf(d.name, sizeof d.name, "churn");
  snprintf(d.source_format, sizeof d.source_format, "synth");
  memcpy(d.item_features, g_vec, (size_t)(2101 * DIM) * sizeof(float));
  for (int64_t i = 1; i <= 2100; i++) d.item_raw_id[i] = i;
  d.user_raw_id[1] = 1;
  d.rec_user[0] = 1, d.rec_slate[0] = 1;
  d.train_idx[0] = 0, d.n_train = 1;
  hsrl_status st = sim_dataset_write(&d, data_path, NULL, 0);
  sim_dataset_free(&d);
  if (st != HSRL_OK) TEST_SKIP("cannot write a minimal prepared-data file here");
  sim_sid_file f;
  make_file(&f);
  TEST_ASSERT(sim_sid_file_write(&f, in) == HSRL_OK);
  const char *args[] = {"--sid", in, "--data", data_path, "--add", "new", "--out", out, "--quiet"};
  TEST_ASSERTF(run_assign(args, 9) == 0, "%s", hsrl_err_message());
  sim_sid_file g;
  TEST_ASSERT(sim_sid_file_read(&g, out) == HSRL_OK);
  TEST_ASSERT(g.n_items == 2100 && g.live[2100] && g.live[1]);
  for (int64_t i = N0 + 1; i <= 2100; i++) TEST_ASSERT(check_greedy(&g.cb, g_vec + i * DIM, g.tokens + i * L) < 0);
  float *vec = NULL;
  int64_t rows, dim;
  TEST_ASSERT(sim_sid_file_read_vectors(&vec, &rows, &dim, out) == HSRL_OK && vec == NULL); /* none stored */
  /* a "sim" file needs --sim */
  snprintf(f.vectors, sizeof f.vectors, "sim");
  TEST_ASSERT(sim_sid_file_write(&f, in) == HSRL_OK);
  TEST_ASSERT(run_assign(args, 9) == 2 && strstr(hsrl_err_message(), "--sim"));
  sim_sid_file_free(&g);
  sim_sid_file_free(&f);
}

static void test_parse_ids(void) {
  int32_t *ids;
  int64_t n;
  TEST_ASSERT(sim_sid_churn_parse_ids(" 3, 9-11 ,2", "add", &ids, &n) == HSRL_OK && n == 5);
  TEST_ASSERT(ids[0] == 3 && ids[1] == 9 && ids[3] == 11 && ids[4] == 2);
  hsrl_free(ids);
  const char *bad[] = {"0", "3-", "x", "4-2", "1,,2y", "-5", "99999999999", "1-200000000"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    TEST_ASSERTF(sim_sid_churn_parse_ids(bad[k], "add", &ids, &n) == HSRL_E_USAGE, "'%s' accepted", bad[k]);
    TEST_ASSERT(ids == NULL && n == 0);
  }
  TEST_ASSERT(sim_sid_churn_parse_ids("@/nonexistent/ids.txt", "delete", &ids, &n) == HSRL_E_USAGE);
}

int main(void) {
  make_vectors();
  TEST_RUN(test_parse_ids);
  TEST_RUN(test_churn_in_memory);
  TEST_RUN(test_assign_command);
  TEST_RUN(test_assign_from_data);
  hsrl_free(g_vec);
  return test_summary();
}
