/* test_sim_data.c: the prepared-data file and its in-memory form (sim_data.h, docs/data-format.md;
 * method.md §2).
 *
 * What is checked: allocation and freeing; that validation catches each kind of broken dataset
 * (and names the field); a write/read round trip of every array, attribute and provenance value;
 * writing into an open file that gets more groups before its commit;
 * that large arrays are stored compressed; that a failed write leaves nothing under the name and
 * an earlier file intact; that reading rejects a missing file, a non-HDF5 file, a truncated file, a
 * file of another kind or version, a file whose shapes disagree with its size attributes and a
 * file whose ids are out of range; the click rate and the distinct-feature count. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "sim/sim_data.h"
#include "tests/test_harness.h"

static int file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int k = 0;
  char *p = buf[k++ % 4];
  snprintf(p, 512, "%s/%s", test_tmpdir(), name);
  return p;
}

/* Entries of the test's temporary directory whose name contains `part`. */
static int tmp_count(const char *part) {
  DIR *d = opendir(test_tmpdir());
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) n += strstr(e->d_name, part) != NULL;
  closedir(d);
  return n;
}

/* A random valid dataset: N items of D features, U users of P, R records of K and H. */
static void make_dataset(sim_dataset *d, int64_t N, int64_t D, int64_t U, int64_t P, int64_t R,
                         int64_t K, int64_t H, uint64_t seed) {
  hsrl_rng r;
  hsrl_rng_init(&r, seed, 0);
  sim_dataset_alloc(d, N, D, U, P, R, K, H);
  snprintf(d->name, sizeof d->name, "test-%llu", (unsigned long long)seed);
  snprintf(d->source_format, sizeof d->source_format, "ml1m");
  for (int64_t i = 1; i <= N; i++) {
    d->item_raw_id[i] = 10 * i + 3;
    for (int64_t j = 0; j < D; j++) d->item_features[i * D + j] = hsrl_rng_uniform(&r) - 0.5f;
  }
  for (int64_t u = 1; u <= U; u++) {
    d->user_raw_id[u] = 7 * u;
    for (int64_t j = 0; j < P; j++) d->user_features[u * P + j] = (float)hsrl_rng_below(&r, 2);
  }
  for (int64_t i = 0; i < R; i++) {
    d->rec_user[i] = (int32_t)(1 + hsrl_rng_below(&r, (uint64_t)U));
    d->rec_time[i] = 1000000 + 17 * i;
    int64_t h = (int64_t)hsrl_rng_below(&r, (uint64_t)H + 1);
    for (int64_t j = H - h; j < H; j++) d->rec_history[i * H + j] = (int32_t)(1 + hsrl_rng_below(&r, (uint64_t)N));
    for (int64_t k = 0; k < K; k++) {
      d->rec_slate[i * K + k] = (int32_t)(1 + hsrl_rng_below(&r, (uint64_t)N));
      d->rec_clicks[i * K + k] = (uint8_t)hsrl_rng_below(&r, 2);
    }
  }
  /* split: every third record test, in increasing order */
  for (int64_t i = 0; i < R; i++) {
    if (i % 3 == 2) d->test_idx[d->n_test++] = i;
    else d->train_idx[d->n_train++] = i;
  }
}

static void make_provenance(sim_provenance *p) {
  memset(p, 0, sizeof *p);
  p->n_sources = 3;
  const char *names[3] = {"/data/ml/movies.dat", "/data/ml/users.dat", "/data/ml/ratings.dat"};
  for (int i = 0; i < 3; i++) {
    snprintf(p->source_path[i], sizeof p->source_path[i], "%s", names[i]);
    p->source_bytes[i] = 1000 * (i + 1) + i;
    snprintf(p->source_checksum[i], sizeof p->source_checksum[i], "%016llx", 0x0123456789abcdefull + (unsigned)i);
  }
  p->n_lines_read = 12345;
  p->n_dropped = 67;
  snprintf(p->protocol, sizeof p->protocol, "datasets.md v1: test");
}

static int same_dataset(const sim_dataset *a, const sim_dataset *b) {
  if (a->n_items != b->n_items || a->item_dim != b->item_dim || a->n_users != b->n_users ||
      a->user_dim != b->user_dim || a->n_records != b->n_records || a->slate_size != b->slate_size ||
      a->history_len != b->history_len || a->n_train != b->n_train || a->n_test != b->n_test)
    return 0;
  if (strcmp(a->name, b->name) || strcmp(a->source_format, b->source_format)) return 0;
  const int64_t N1 = a->n_items + 1, U1 = a->n_users + 1, R = a->n_records;
  return !memcmp(a->item_features, b->item_features, (size_t)(N1 * a->item_dim) * sizeof(float)) &&
         !memcmp(a->item_raw_id, b->item_raw_id, (size_t)N1 * sizeof(int64_t)) &&
         !memcmp(a->user_features, b->user_features, (size_t)(U1 * a->user_dim) * sizeof(float)) &&
         !memcmp(a->user_raw_id, b->user_raw_id, (size_t)U1 * sizeof(int64_t)) &&
         !memcmp(a->rec_user, b->rec_user, (size_t)R * sizeof(int32_t)) &&
         !memcmp(a->rec_history, b->rec_history, (size_t)(R * a->history_len) * sizeof(int32_t)) &&
         !memcmp(a->rec_slate, b->rec_slate, (size_t)(R * a->slate_size) * sizeof(int32_t)) &&
         !memcmp(a->rec_clicks, b->rec_clicks, (size_t)(R * a->slate_size)) &&
         !memcmp(a->rec_time, b->rec_time, (size_t)R * sizeof(int64_t)) &&
         !memcmp(a->train_idx, b->train_idx, (size_t)a->n_train * sizeof(int64_t)) &&
         !memcmp(a->test_idx, b->test_idx, (size_t)a->n_test * sizeof(int64_t));
}

static void test_alloc_free(void) {
  sim_dataset d;
  sim_dataset_alloc(&d, 5, 3, 4, 2, 6, 3, 7);
  TEST_ASSERT(d.n_items == 5 && d.item_dim == 3 && d.n_users == 4 && d.user_dim == 2);
  TEST_ASSERT(d.n_records == 6 && d.slate_size == 3 && d.history_len == 7);
  TEST_ASSERT(d.n_train == 0 && d.n_test == 0);
  for (int i = 0; i < 6 * 3; i++) TEST_ASSERT(d.item_features[i] == 0.0f);
  for (int i = 0; i < 6 * 7; i++) TEST_ASSERT(d.rec_history[i] == 0);
  d.train_idx[5] = 1, d.test_idx[5] = 1; /* room for R entries each */
  sim_dataset_free(&d);
  TEST_ASSERT(d.item_features == NULL && d.n_records == 0 && d.train_idx == NULL);
  sim_dataset_free(&d); /* twice is fine: it was zeroed */
  sim_dataset_free(NULL);
}

/* Each mutation makes validation fail with a message naming `field`; undoing it passes again. */
static void test_validate_catches_each_violation(void) {
  sim_dataset d;
  make_dataset(&d, 9, 4, 5, 3, 30, 3, 6, 1);
  TEST_ASSERT(sim_dataset_validate(&d, "t") == HSRL_OK);
  int32_t *slate = &d.rec_slate[7 * 3 + 1], *user = &d.rec_user[4], *hist = d.rec_history + 11 * 6;
  float *feat0 = &d.item_features[2], *ufeat0 = &d.user_features[1], *feat5 = &d.item_features[5 * 4 + 1];
  struct {
    const char *field;
    int kind;
  } cases[] = {{"records/slate", 0}, {"records/slate", 1}, {"records/user", 2}, {"records/user", 3},
               {"records/history", 4}, {"records/history", 5}, {"records/history", 6}, {"records/clicks", 7},
               {"items/features", 8}, {"users/features", 9}, {"items/features", 10}, {"items/features", 11},
               {"split/test", 12}, {"split/train", 13}, {"split", 14}, {NULL, 15}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int32_t s0 = *slate, u0 = *user, h[6];
    memcpy(h, hist, sizeof h);
    float f0 = *feat0, uf0 = *ufeat0, f5 = *feat5;
    uint8_t c0 = d.rec_clicks[3];
    int64_t raw0 = d.item_raw_id[0], te0 = d.test_idx[0], tr1 = d.train_idx[1], ntr = d.n_train;
    switch (cases[c].kind) {
      case 0: *slate = 0; break;
      case 1: *slate = 10; break;
      case 2: *user = 0; break;
      case 3: *user = 6; break;
      case 4: hist[5] = -1; break;
      case 5: hist[5] = 10; break;
      case 6: hist[0] = 3, hist[1] = 0, hist[5] = 2; break; /* padding after an item */
      case 7: d.rec_clicks[3] = 2; break;
      case 8: *feat0 = 1.0f; break;
      case 9: *ufeat0 = 1.0f; break;
      case 10: d.item_raw_id[0] = 5; break;
      case 11: *feat5 = NAN; break;
      case 12: d.test_idx[0] = d.train_idx[0]; break; /* a record twice, another missing */
      case 13: d.train_idx[1] = 30; break;
      case 14: d.n_train--; break;
      case 15: d.slate_size = 0; break;
    }
    hsrl_status st = sim_dataset_validate(&d, "t");
    char want[64];
    snprintf(want, sizeof want, "field '%s'", cases[c].field ? cases[c].field : "");
    TEST_ASSERTF(st == HSRL_E_INPUT && (!cases[c].field || strstr(hsrl_err_message(), want)),
                 "case %d: status %d, %s", cases[c].kind, (int)st, hsrl_err_message());
    TEST_ASSERT(strncmp(hsrl_err_message(), "t:", 2) == 0);
    *slate = s0, *user = u0, *feat0 = f0, *ufeat0 = uf0, *feat5 = f5;
    memcpy(hist, h, sizeof h);
    d.rec_clicks[3] = c0, d.item_raw_id[0] = raw0, d.test_idx[0] = te0, d.train_idx[1] = tr1, d.n_train = ntr;
    d.slate_size = 3;
    TEST_ASSERTF(sim_dataset_validate(&d, "t") == HSRL_OK, "case %d not undone", cases[c].kind);
  }
  sim_dataset_free(&d);
}

static void test_write_read_roundtrip(void) {
  sim_dataset d, e;
  sim_provenance p, q;
  make_dataset(&d, 40, 7, 15, 5, 3000, 4, 50, 2);
  make_provenance(&p);
  const char *path = tmp_path("round.data.h5");
  TEST_ASSERTF(sim_dataset_write(&d, path, &p, 0xfeedbeef12345678ull) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(tmp_count(".tmp-") == 0);
  TEST_ASSERTF(sim_dataset_read(&e, path) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(same_dataset(&d, &e));
  TEST_ASSERTF(sim_dataset_read_provenance(&q, path) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(q.n_sources == 3 && q.n_lines_read == 12345 && q.n_dropped == 67 && !strcmp(q.protocol, p.protocol));
  for (int i = 0; i < 3; i++)
    TEST_ASSERT(!strcmp(q.source_path[i], p.source_path[i]) && q.source_bytes[i] == p.source_bytes[i] &&
                !strcmp(q.source_checksum[i], p.source_checksum[i]));

  /* the attributes a user sees with h5dump -A */
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK);
  int64_t v = 0;
  uint64_t hash = 0;
  TEST_ASSERT(io_h5_check_stamp(f, "data", 1, 1, &v, &hash) == HSRL_OK && v == SIM_DATA_FORMAT_VERSION);
  TEST_ASSERT(hash == 0xfeedbeef12345678ull);
  TEST_ASSERT(io_h5_attr_get_i64(f, "/", "n_records", &v) == HSRL_OK && v == 3000);
  TEST_ASSERT(io_h5_attr_get_i64(f, "/", "n_test", &v) == HSRL_OK && v == 1000);
  double rate = 0;
  TEST_ASSERT(io_h5_attr_get_f64(f, "/", "click_rate_train", &rate) == HSRL_OK);
  TEST_ASSERT(rate == sim_dataset_click_rate(&d, d.train_idx, d.n_train));
  char buf[64];
  TEST_ASSERT(io_h5_attr_get_str(f, "/", "source_format", buf, sizeof buf) == HSRL_OK && !strcmp(buf, "ml1m"));
  /* large arrays are compressed: the histories are half padding */
  int64_t stored = 0;
  TEST_ASSERT(io_h5_storage_size(f, "records/history", &stored) == HSRL_OK);
  TEST_ASSERTF(stored > 0 && stored < 3000 * 50 * 4 / 2, "records/history stores %lld bytes", (long long)stored);
  TEST_ASSERT(io_h5_storage_size(f, "records/clicks", &stored) == HSRL_OK && stored < 3000 * 4);
  io_h5_close(f);

  /* without provenance: no provenance attributes, reading them is an error */
  sim_dataset_free(&e);
  TEST_ASSERT(sim_dataset_write(&d, path, NULL, 0) == HSRL_OK);
  TEST_ASSERT(sim_dataset_read(&e, path) == HSRL_OK && same_dataset(&d, &e));
  TEST_ASSERT(sim_dataset_read_provenance(&q, path) != HSRL_OK);
  unlink(path);
  sim_dataset_free(&d);
  sim_dataset_free(&e);
}

/* write_into leaves the file open for more (e.g. /world) and uncommitted until io_h5_commit. */
static void test_write_into_open_file(void) {
  sim_dataset d, e;
  make_dataset(&d, 8, 2, 3, 2, 10, 2, 3, 5);
  const char *path = tmp_path("into.data.h5");
  io_h5 *f = NULL;
  TEST_ASSERT(io_h5_create(&f, path) == HSRL_OK);
  TEST_ASSERT(sim_dataset_write_into(f, &d, NULL, 42) == HSRL_OK);
  const int64_t dims[1] = {3};
  const int32_t extra[3] = {7, 8, 9};
  TEST_ASSERT(io_h5_write_i32(f, "world/extra", extra, 1, dims, 0) == HSRL_OK);
  TEST_ASSERT(!file_exists(path)); /* not before the commit */
  TEST_ASSERT(io_h5_commit(f) == HSRL_OK);
  TEST_ASSERT(sim_dataset_read(&e, path) == HSRL_OK && same_dataset(&d, &e));
  TEST_ASSERT(io_h5_open(&f, path) == HSRL_OK && io_h5_exists(f, "world/extra"));
  io_h5_close(f);
  sim_dataset_free(&e);
  /* an invalid dataset: an error, and closing without commit leaves nothing */
  d.rec_slate[0] = 9;
  TEST_ASSERT(io_h5_create(&f, tmp_path("into2.data.h5")) == HSRL_OK);
  TEST_ASSERT(sim_dataset_write_into(f, &d, NULL, 0) == HSRL_E_INPUT);
  io_h5_close(f);
  TEST_ASSERT(tmp_count("into2") == 0);
  unlink(path);
  sim_dataset_free(&d);
}

static void test_failed_write_leaves_nothing(void) {
  sim_dataset d, e;
  make_dataset(&d, 10, 3, 4, 2, 20, 3, 5, 3);
  const char *path = tmp_path("fail.data.h5");
  d.rec_slate[5] = 11; /* out of range */
  hsrl_status st = sim_dataset_write(&d, path, NULL, 0);
  TEST_ASSERT(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "not written") && strstr(hsrl_err_message(), "records/slate"));
  TEST_ASSERT(!file_exists(path) && tmp_count("fail.data.h5") == 0);
  /* an earlier file under the name survives a failed write unchanged */
  d.rec_slate[5] = 1;
  TEST_ASSERT(sim_dataset_write(&d, path, NULL, 0) == HSRL_OK);
  d.rec_user[0] = 0;
  TEST_ASSERT(sim_dataset_write(&d, path, NULL, 0) == HSRL_E_INPUT);
  d.rec_user[0] = 1;
  TEST_ASSERT(sim_dataset_read(&e, path) == HSRL_OK);
  TEST_ASSERT(e.rec_slate[5] == 1 && e.rec_user[0] != 0);
  TEST_ASSERT(tmp_count("fail.data.h5") == 1);
  unlink(path);
  sim_dataset_free(&d);
  sim_dataset_free(&e);
}

/* Writes d in the file layout without validation, with the given stamp and n_items attribute. */
static hsrl_status write_manual(const sim_dataset *d, const char *path, const char *kind, int64_t version,
                                int64_t n_items_attr) {
  io_h5 *f = NULL;
  hsrl_status st;
  int64_t dims[2];
  HSRL_TRY(io_h5_create(&f, path));
  HSRL_TRY(io_h5_stamp(f, kind, version, 0));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "name", d->name));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "source_format", d->source_format));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_items", n_items_attr));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_users", d->n_users));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_records", d->n_records));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "slate_size", d->slate_size));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "history_len", d->history_len));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "item_dim", d->item_dim));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "user_dim", d->user_dim));
  dims[0] = d->n_items + 1, dims[1] = d->item_dim;
  HSRL_TRY(io_h5_write_f32(f, "items/features", d->item_features, 2, dims, 0));
  HSRL_TRY(io_h5_write_i64(f, "items/raw_id", d->item_raw_id, 1, dims, 0));
  dims[0] = d->n_users + 1, dims[1] = d->user_dim;
  HSRL_TRY(io_h5_write_f32(f, "users/features", d->user_features, 2, dims, 0));
  HSRL_TRY(io_h5_write_i64(f, "users/raw_id", d->user_raw_id, 1, dims, 0));
  dims[0] = d->n_records;
  HSRL_TRY(io_h5_write_i32(f, "records/user", d->rec_user, 1, dims, 0));
  HSRL_TRY(io_h5_write_i64(f, "records/time", d->rec_time, 1, dims, 0));
  dims[1] = d->history_len;
  HSRL_TRY(io_h5_write_i32(f, "records/history", d->rec_history, 2, dims, 0));
  dims[1] = d->slate_size;
  HSRL_TRY(io_h5_write_i32(f, "records/slate", d->rec_slate, 2, dims, 0));
  HSRL_TRY(io_h5_write_u8(f, "records/clicks", d->rec_clicks, 2, dims, 0));
  dims[0] = d->n_train;
  HSRL_TRY(io_h5_write_i64(f, "split/train", d->train_idx, 1, dims, 0));
  dims[0] = d->n_test;
  HSRL_TRY(io_h5_write_i64(f, "split/test", d->test_idx, 1, dims, 0));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

static void test_read_rejects_bad_files(void) {
  sim_dataset d, e;
  make_dataset(&d, 12, 3, 4, 2, 25, 3, 5, 4);
  const char *good = tmp_path("good.data.h5"), *bad = tmp_path("bad.data.h5");
  hsrl_status st;
  /* the manual writer is right: its file reads back */
  TEST_ASSERT(write_manual(&d, good, "data", 1, d.n_items) == HSRL_OK);
  TEST_ASSERTF(sim_dataset_read(&e, good) == HSRL_OK, "%s", hsrl_err_message());
  TEST_ASSERT(same_dataset(&d, &e));
  sim_dataset_free(&e);

  st = sim_dataset_read(&e, tmp_path("missing.data.h5"));
  TEST_ASSERT(hsrl_status_exit_code(st) == 2 && strstr(hsrl_err_message(), "missing.data.h5"));
  TEST_ASSERT(e.item_features == NULL);

  FILE *f = fopen(bad, "wb");
  fputs("1::1193::5::978300760\n", f);
  fclose(f);
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(hsrl_status_exit_code(st) == 2 && strstr(hsrl_err_message(), "bad.data.h5"));

  /* truncated: the first half of a valid file */
  FILE *in = fopen(good, "rb");
  fseek(in, 0, SEEK_END);
  long n = ftell(in);
  fseek(in, 0, SEEK_SET);
  char *buf = hsrl_malloc((size_t)n);
  TEST_ASSERT(fread(buf, 1, (size_t)n, in) == (size_t)n);
  fclose(in);
  f = fopen(bad, "wb");
  fwrite(buf, 1, (size_t)n / 2, f);
  fclose(f);
  st = sim_dataset_read(&e, bad);
  TEST_ASSERTF(st != HSRL_OK && hsrl_status_exit_code(st) == 2, "truncated: %d %s", (int)st, hsrl_err_message());
  hsrl_free(buf);

  TEST_ASSERT(write_manual(&d, bad, "checkpoint", 1, d.n_items) == HSRL_OK);
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "checkpoint"));
  TEST_ASSERT(write_manual(&d, bad, "data", 2, d.n_items) == HSRL_OK);
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(st == HSRL_E_INPUT && strstr(hsrl_err_message(), "version"));
  TEST_ASSERT(write_manual(&d, bad, "data", 1, d.n_items + 1) == HSRL_OK); /* attrs disagree with shapes */
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(st == HSRL_E_CORRUPT && strstr(hsrl_err_message(), "items/features"));
  TEST_ASSERT(write_manual(&d, bad, "data", 1, (int64_t)1 << 50) == HSRL_OK); /* absurd size */
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(st == HSRL_E_CORRUPT && strstr(hsrl_err_message(), "n_items"));
  d.rec_history[3 * 5 + 4] = 13; /* an item id beyond N, stored without validation */
  TEST_ASSERT(write_manual(&d, bad, "data", 1, d.n_items) == HSRL_OK);
  st = sim_dataset_read(&e, bad);
  TEST_ASSERT(st == HSRL_E_CORRUPT && strstr(hsrl_err_message(), "records/history") && strstr(hsrl_err_message(), "record 3"));
  TEST_ASSERT(e.item_features == NULL); /* nothing kept on failure */
  unlink(good);
  unlink(bad);
  sim_dataset_free(&d);
}

static void test_click_rate_and_distinct_features(void) {
  sim_dataset d;
  sim_dataset_alloc(&d, 6, 2, 1, 1, 4, 2, 1);
  const uint8_t clicks[8] = {1, 0, 1, 1, 0, 0, 1, 1};
  memcpy(d.rec_clicks, clicks, sizeof clicks);
  const int64_t idx[2] = {1, 3};
  TEST_NEAR(sim_dataset_click_rate(&d, idx, 2), 4.0 / 4.0, 0);
  TEST_NEAR(sim_dataset_click_rate(&d, NULL, 4), 5.0 / 8.0, 0);
  TEST_NEAR(sim_dataset_click_rate(&d, idx, 0), 0.0, 0);
  /* rows 1..6: (1,0) (0,1) (1,0) (0,0) (0,1) (1,1): 4 distinct */
  const float x[14] = {0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1};
  memcpy(d.item_features, x, sizeof x);
  TEST_ASSERT(sim_dataset_distinct_item_features(&d) == 4);
  d.item_features[6] = 0.5f; /* row 3: (1,0) -> (0.5,0), no longer equal to row 1: 5 distinct */
  TEST_ASSERT(sim_dataset_distinct_item_features(&d) == 5);
  sim_dataset_free(&d);
}

int main(void) {
  TEST_RUN(test_alloc_free);
  TEST_RUN(test_validate_catches_each_violation);
  TEST_RUN(test_write_read_roundtrip);
  TEST_RUN(test_write_into_open_file);
  TEST_RUN(test_failed_write_leaves_nothing);
  TEST_RUN(test_read_rejects_bad_files);
  TEST_RUN(test_click_rate_and_distinct_features);
  return test_summary();
}
