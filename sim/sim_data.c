/* sim_data.c: the prepared-data file and its in-memory form; see sim_data.h and
 * docs/data-format.md (method.md §2, datasets.md).
 *
 * Writing validates first, so that no file of this format holds an id out of range or a split
 * that misses a record; reading checks the stamp (hsrl_kind "data", format version), checks every
 * array's stored shape against the size attributes before allocating anything (a damaged
 * attribute cannot make us allocate terabytes), reads, and validates again. */
#include "sim/sim_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/io/io_h5.h"

/* Bound on any size attribute: larger is a damaged or hostile file, not data. */
#define DATA_MAX_COUNT ((int64_t)1 << 40)
#define DATA_MAX_WIDTH ((int64_t)1 << 20)

void sim_dataset_alloc(sim_dataset *d, int64_t n_items, int64_t item_dim, int64_t n_users,
                       int64_t user_dim, int64_t n_records, int64_t slate_size,
                       int64_t history_len) {
  memset(d, 0, sizeof *d);
  d->n_items = n_items, d->item_dim = item_dim;
  d->n_users = n_users, d->user_dim = user_dim;
  d->n_records = n_records, d->slate_size = slate_size, d->history_len = history_len;
  d->item_features = hsrl_calloc((size_t)((n_items + 1) * item_dim), sizeof(float));
  d->item_raw_id = hsrl_calloc((size_t)(n_items + 1), sizeof(int64_t));
  d->user_features = hsrl_calloc((size_t)((n_users + 1) * user_dim), sizeof(float));
  d->user_raw_id = hsrl_calloc((size_t)(n_users + 1), sizeof(int64_t));
  d->rec_user = hsrl_calloc((size_t)n_records, sizeof(int32_t));
  d->rec_history = hsrl_calloc((size_t)(n_records * history_len), sizeof(int32_t));
  d->rec_slate = hsrl_calloc((size_t)(n_records * slate_size), sizeof(int32_t));
  d->rec_clicks = hsrl_calloc((size_t)(n_records * slate_size), sizeof(uint8_t));
  d->rec_time = hsrl_calloc((size_t)n_records, sizeof(int64_t));
  d->train_idx = hsrl_calloc((size_t)n_records, sizeof(int64_t));
  d->test_idx = hsrl_calloc((size_t)n_records, sizeof(int64_t));
}

void sim_dataset_free(sim_dataset *d) {
  if (!d) return;
  hsrl_free(d->item_features);
  hsrl_free(d->item_raw_id);
  hsrl_free(d->user_features);
  hsrl_free(d->user_raw_id);
  hsrl_free(d->rec_user);
  hsrl_free(d->rec_history);
  hsrl_free(d->rec_slate);
  hsrl_free(d->rec_clicks);
  hsrl_free(d->rec_time);
  hsrl_free(d->train_idx);
  hsrl_free(d->test_idx);
  memset(d, 0, sizeof *d);
}

/* ---- validation ------------------------------------------------------------------------ */

static hsrl_status data_check_table(const char *what, const char *field, const float *x,
                                    const int64_t *raw, int64_t n, int64_t dim) {
  if (raw[0] != 0) return hsrl_err(HSRL_E_INPUT, what, 0, field, "row 0 (padding) has raw id %lld, expected 0", (long long)raw[0]);
  for (int64_t j = 0; j < dim; j++)
    if (x[j] != 0.0f)
      return hsrl_err(HSRL_E_INPUT, what, 0, field, "row 0 (padding) is not zero (column %lld)", (long long)j);
  for (int64_t i = 0; i < (n + 1) * dim; i++)
    if (!isfinite(x[i]))
      return hsrl_err(HSRL_E_INPUT, what, 0, field, "row %lld column %lld is not finite",
                      (long long)(i / dim), (long long)(i % dim));
  return HSRL_OK;
}

hsrl_status sim_dataset_validate(const sim_dataset *d, const char *what) {
  const int64_t N = d->n_items, U = d->n_users, R = d->n_records, K = d->slate_size,
                H = d->history_len;
  if (N < 1 || d->item_dim < 1 || U < 1 || d->user_dim < 1 || R < 0 || K < 1 || H < 0)
    return hsrl_err(HSRL_E_INPUT, what, 0, NULL,
                    "bad sizes: %lld items x %lld, %lld users x %lld, %lld records, K %lld, H %lld",
                    (long long)N, (long long)d->item_dim, (long long)U, (long long)d->user_dim,
                    (long long)R, (long long)K, (long long)H);
  if (N > INT32_MAX || U > INT32_MAX)
    return hsrl_err(HSRL_E_INPUT, what, 0, NULL, "more than 2^31-1 items or users (ids are int32)");
  if (d->n_train < 0 || d->n_test < 0 || d->n_train + d->n_test != R)
    return hsrl_err(HSRL_E_INPUT, what, 0, "split", "%lld train + %lld test indices for %lld records",
                    (long long)d->n_train, (long long)d->n_test, (long long)R);
  hsrl_status st = data_check_table(what, "items/features", d->item_features, d->item_raw_id, N, d->item_dim);
  if (st == HSRL_OK) st = data_check_table(what, "users/features", d->user_features, d->user_raw_id, U, d->user_dim);
  if (st != HSRL_OK) return st;
  for (int64_t r = 0; r < R; r++) {
    if (d->rec_user[r] < 1 || d->rec_user[r] > U)
      return hsrl_err(HSRL_E_INPUT, what, 0, "records/user", "record %lld: user %d is outside 1..%lld",
                      (long long)r, d->rec_user[r], (long long)U);
    for (int64_t k = 0; k < K; k++) {
      int32_t id = d->rec_slate[r * K + k];
      if (id < 1 || id > N)
        return hsrl_err(HSRL_E_INPUT, what, 0, "records/slate",
                        "record %lld position %lld: item %d is outside 1..%lld", (long long)r,
                        (long long)k, id, (long long)N);
      if (d->rec_clicks[r * K + k] > 1)
        return hsrl_err(HSRL_E_INPUT, what, 0, "records/clicks", "record %lld position %lld: %d is not 0 or 1",
                        (long long)r, (long long)k, d->rec_clicks[r * K + k]);
    }
    const int32_t *h = d->rec_history + r * H;
    int seen_item = 0;
    for (int64_t j = 0; j < H; j++) {
      if (h[j] < 0 || h[j] > N)
        return hsrl_err(HSRL_E_INPUT, what, 0, "records/history",
                        "record %lld position %lld: item %d is outside 0..%lld", (long long)r,
                        (long long)j, h[j], (long long)N);
      if (h[j] == 0 && seen_item)
        return hsrl_err(HSRL_E_INPUT, what, 0, "records/history",
                        "record %lld position %lld: padding 0 after an item (histories are "
                        "left-padded)", (long long)r, (long long)j);
      seen_item |= h[j] != 0;
    }
  }
  uint8_t *seen = hsrl_calloc((size_t)(R ? R : 1), 1);
  for (int part = 0; part < 2 && st == HSRL_OK; part++) {
    const int64_t *idx = part ? d->test_idx : d->train_idx;
    int64_t n = part ? d->n_test : d->n_train;
    const char *field = part ? "split/test" : "split/train";
    for (int64_t i = 0; i < n; i++) {
      if (idx[i] < 0 || idx[i] >= R) {
        st = hsrl_err(HSRL_E_INPUT, what, 0, field, "entry %lld: record %lld is outside 0..%lld",
                      (long long)i, (long long)idx[i], (long long)(R - 1));
        break;
      }
      if (seen[idx[i]]++) {
        st = hsrl_err(HSRL_E_INPUT, what, 0, field, "entry %lld: record %lld is listed twice in the split",
                      (long long)i, (long long)idx[i]);
        break;
      }
    }
  }
  hsrl_free(seen);
  return st;
}

/* ---- writing --------------------------------------------------------------------------- */

/* "a\nb\nc" of the provenance's per-source values. */
static void data_join(char *out, size_t cap, const sim_provenance *p, int which) {
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < p->n_sources && n < cap; i++) {
    const char *sep = i ? "\n" : "";
    int w;
    if (which == 0) w = snprintf(out + n, cap - n, "%s%s", sep, p->source_path[i]);
    else if (which == 1) w = snprintf(out + n, cap - n, "%s%lld", sep, (long long)p->source_bytes[i]);
    else w = snprintf(out + n, cap - n, "%s%s", sep, p->source_checksum[i]);
    n += w > 0 ? (size_t)w : 0;
  }
}

static hsrl_status data_write_provenance(io_h5 *f, const sim_provenance *p) {
  hsrl_status st;
  size_t cap = SIM_DATA_MAX_SOURCES * 520;
  char *buf = hsrl_malloc(cap);
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_sources", p->n_sources));
  data_join(buf, cap, p, 0);
  HSRL_TRY(io_h5_attr_set_str(f, "/", "source_files", buf));
  data_join(buf, cap, p, 1);
  HSRL_TRY(io_h5_attr_set_str(f, "/", "source_bytes", buf));
  data_join(buf, cap, p, 2);
  HSRL_TRY(io_h5_attr_set_str(f, "/", "source_checksums", buf));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "checksum_algorithm", "FNV-1a 64 of the file's bytes"));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_lines_read", p->n_lines_read));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_dropped", p->n_dropped));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "protocol", p->protocol));
done:
  hsrl_free(buf);
  return st;
}

hsrl_status sim_dataset_write_into(struct io_h5 *f, const sim_dataset *d, const sim_provenance *prov,
                                   uint64_t config_hash) {
  hsrl_status st = sim_dataset_validate(d, d->name[0] ? d->name : io_h5_path(f));
  if (st != HSRL_OK) return hsrl_err_context(st, "%s: not written", io_h5_path(f));
  const int z = IO_H5_ZSTD;
  const int64_t N = d->n_items, U = d->n_users, R = d->n_records, K = d->slate_size,
                H = d->history_len;
  int64_t dims[2];
  HSRL_TRY(io_h5_stamp(f, "data", SIM_DATA_FORMAT_VERSION, config_hash));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "name", d->name));
  HSRL_TRY(io_h5_attr_set_str(f, "/", "source_format", d->source_format));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_items", N));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_users", U));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_records", R));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "slate_size", K));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "history_len", H));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "item_dim", d->item_dim));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "user_dim", d->user_dim));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_train", d->n_train));
  HSRL_TRY(io_h5_attr_set_i64(f, "/", "n_test", d->n_test));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "click_rate_train", sim_dataset_click_rate(d, d->train_idx, d->n_train)));
  HSRL_TRY(io_h5_attr_set_f64(f, "/", "click_rate_test", sim_dataset_click_rate(d, d->test_idx, d->n_test)));
  if (prov) HSRL_TRY(data_write_provenance(f, prov));

  dims[0] = N + 1, dims[1] = d->item_dim;
  HSRL_TRY(io_h5_write_f32(f, "items/features", d->item_features, 2, dims, z));
  HSRL_TRY(io_h5_write_i64(f, "items/raw_id", d->item_raw_id, 1, dims, z));
  dims[0] = U + 1, dims[1] = d->user_dim;
  HSRL_TRY(io_h5_write_f32(f, "users/features", d->user_features, 2, dims, z));
  HSRL_TRY(io_h5_write_i64(f, "users/raw_id", d->user_raw_id, 1, dims, z));
  dims[0] = R;
  HSRL_TRY(io_h5_write_i32(f, "records/user", d->rec_user, 1, dims, z));
  HSRL_TRY(io_h5_write_i64(f, "records/time", d->rec_time, 1, dims, z));
  dims[1] = H;
  HSRL_TRY(io_h5_write_i32(f, "records/history", d->rec_history, 2, dims, z));
  dims[1] = K;
  HSRL_TRY(io_h5_write_i32(f, "records/slate", d->rec_slate, 2, dims, z));
  HSRL_TRY(io_h5_write_u8(f, "records/clicks", d->rec_clicks, 2, dims, z));
  dims[0] = d->n_train;
  HSRL_TRY(io_h5_write_i64(f, "split/train", d->train_idx, 1, dims, z));
  dims[0] = d->n_test;
  HSRL_TRY(io_h5_write_i64(f, "split/test", d->test_idx, 1, dims, z));
done:
  return st;
}

hsrl_status sim_dataset_write(const sim_dataset *d, const char *path, const sim_provenance *prov,
                              uint64_t config_hash) {
  io_h5 *f = NULL;
  hsrl_status st;
  HSRL_TRY(io_h5_create(&f, path)); /* an invalid d is caught inside; closing deletes the temporary */
  HSRL_TRY(sim_dataset_write_into(f, d, prov, config_hash));
  st = io_h5_commit(f);
  f = NULL;
done:
  io_h5_close(f);
  return st;
}

/* ---- reading --------------------------------------------------------------------------- */

static hsrl_status data_get_count(io_h5 *f, const char *attr, int64_t lo, int64_t hi, int64_t *v) {
  hsrl_status st = io_h5_attr_get_i64(f, "/", attr, v);
  if (st != HSRL_OK) return st;
  if (*v < lo || *v > hi)
    return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, attr, "attribute value %lld is outside %lld..%lld",
                    (long long)*v, (long long)lo, (long long)hi);
  return HSRL_OK;
}

/* The stored shape of `name` must be (d0) or (d0, d1) (d1 < 0: one dimension). */
static hsrl_status data_check_shape(io_h5 *f, const char *name, int64_t d0, int64_t d1) {
  int nd = 0;
  int64_t dims[IO_H5_MAX_DIMS];
  hsrl_status st = io_h5_shape(f, name, &nd, dims);
  if (st != HSRL_OK) return st;
  int want = d1 < 0 ? 1 : 2;
  if (nd != want || dims[0] != d0 || (want == 2 && dims[1] != d1))
    return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, name,
                    "stored shape does not match the size attributes (expected (%lld%s%lld))",
                    (long long)d0, want == 2 ? ", " : "", (long long)(want == 2 ? d1 : 0));
  return HSRL_OK;
}

static hsrl_status data_split_len(io_h5 *f, const char *name, int64_t *n) {
  int nd = 0;
  int64_t dims[IO_H5_MAX_DIMS];
  hsrl_status st = io_h5_shape(f, name, &nd, dims);
  if (st != HSRL_OK) return st;
  if (nd != 1 || dims[0] < 0 || dims[0] > DATA_MAX_COUNT)
    return hsrl_err(HSRL_E_CORRUPT, io_h5_path(f), 0, name, "expected a one-dimensional index array");
  *n = dims[0];
  return HSRL_OK;
}

hsrl_status sim_dataset_read(sim_dataset *d, const char *path) {
  memset(d, 0, sizeof *d);
  io_h5 *f = NULL;
  hsrl_status st;
  int64_t N, D, U, P, R, K, H, n_train, n_test;
  char name[sizeof d->name], fmt[sizeof d->source_format];
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, "data", SIM_DATA_FORMAT_VERSION, SIM_DATA_FORMAT_VERSION, NULL, NULL));
  HSRL_TRY(data_get_count(f, "n_items", 1, INT32_MAX, &N));
  HSRL_TRY(data_get_count(f, "item_dim", 1, DATA_MAX_WIDTH, &D));
  HSRL_TRY(data_get_count(f, "n_users", 1, INT32_MAX, &U));
  HSRL_TRY(data_get_count(f, "user_dim", 1, DATA_MAX_WIDTH, &P));
  HSRL_TRY(data_get_count(f, "n_records", 0, DATA_MAX_COUNT, &R));
  HSRL_TRY(data_get_count(f, "slate_size", 1, DATA_MAX_WIDTH, &K));
  HSRL_TRY(data_get_count(f, "history_len", 0, DATA_MAX_WIDTH, &H));
  HSRL_TRY(io_h5_attr_get_str(f, "/", "name", name, sizeof name));
  HSRL_TRY(io_h5_attr_get_str(f, "/", "source_format", fmt, sizeof fmt));
  HSRL_TRY(data_check_shape(f, "items/features", N + 1, D));
  HSRL_TRY(data_check_shape(f, "items/raw_id", N + 1, -1));
  HSRL_TRY(data_check_shape(f, "users/features", U + 1, P));
  HSRL_TRY(data_check_shape(f, "users/raw_id", U + 1, -1));
  HSRL_TRY(data_check_shape(f, "records/user", R, -1));
  HSRL_TRY(data_check_shape(f, "records/time", R, -1));
  HSRL_TRY(data_check_shape(f, "records/history", R, H));
  HSRL_TRY(data_check_shape(f, "records/slate", R, K));
  HSRL_TRY(data_check_shape(f, "records/clicks", R, K));
  HSRL_TRY(data_split_len(f, "split/train", &n_train));
  HSRL_TRY(data_split_len(f, "split/test", &n_test));
  if (n_train + n_test != R)
    HSRL_TRY(hsrl_err(HSRL_E_CORRUPT, path, 0, "split", "%lld train + %lld test indices for %lld records",
                      (long long)n_train, (long long)n_test, (long long)R));
  sim_dataset_alloc(d, N, D, U, P, R, K, H);
  snprintf(d->name, sizeof d->name, "%s", name);
  snprintf(d->source_format, sizeof d->source_format, "%s", fmt);
  d->n_train = n_train, d->n_test = n_test;
  HSRL_TRY(io_h5_read_f32(f, "items/features", d->item_features, (N + 1) * D));
  HSRL_TRY(io_h5_read_i64(f, "items/raw_id", d->item_raw_id, N + 1));
  HSRL_TRY(io_h5_read_f32(f, "users/features", d->user_features, (U + 1) * P));
  HSRL_TRY(io_h5_read_i64(f, "users/raw_id", d->user_raw_id, U + 1));
  HSRL_TRY(io_h5_read_i32(f, "records/user", d->rec_user, R));
  HSRL_TRY(io_h5_read_i64(f, "records/time", d->rec_time, R));
  HSRL_TRY(io_h5_read_i32(f, "records/history", d->rec_history, R * H));
  HSRL_TRY(io_h5_read_i32(f, "records/slate", d->rec_slate, R * K));
  HSRL_TRY(io_h5_read_u8(f, "records/clicks", d->rec_clicks, R * K));
  HSRL_TRY(io_h5_read_i64(f, "split/train", d->train_idx, n_train));
  HSRL_TRY(io_h5_read_i64(f, "split/test", d->test_idx, n_test));
  st = sim_dataset_validate(d, path);
  if (st == HSRL_E_INPUT) st = HSRL_E_CORRUPT; /* a file of this format that breaks its rules */
done:
  io_h5_close(f);
  if (st != HSRL_OK) sim_dataset_free(d);
  return st;
}

/* Splits "a\nb" into out[i] (cap bytes each); returns the count. */
static int data_split_lines(const char *s, char *out, size_t cap, int max_n) {
  int n = 0;
  if (!*s) return 0;
  for (const char *p = s; n < max_n; n++) {
    size_t len = strcspn(p, "\n");
    snprintf(out + (size_t)n * cap, cap, "%.*s", (int)len, p);
    if (!p[len]) {
      n++;
      break;
    }
    p += len + 1;
  }
  return n;
}

hsrl_status sim_dataset_read_provenance(sim_provenance *p, const char *path) {
  memset(p, 0, sizeof *p);
  io_h5 *f = NULL;
  hsrl_status st;
  int64_t n;
  size_t cap = SIM_DATA_MAX_SOURCES * 520;
  char *buf = hsrl_malloc(cap);
  char bytes[SIM_DATA_MAX_SOURCES][24];
  HSRL_TRY(io_h5_open(&f, path));
  HSRL_TRY(io_h5_check_stamp(f, "data", SIM_DATA_FORMAT_VERSION, SIM_DATA_FORMAT_VERSION, NULL, NULL));
  HSRL_TRY(data_get_count(f, "n_sources", 0, SIM_DATA_MAX_SOURCES, &n));
  p->n_sources = (int)n;
  HSRL_TRY(io_h5_attr_get_str(f, "/", "source_files", buf, cap));
  int n_paths = data_split_lines(buf, p->source_path[0], sizeof p->source_path[0], SIM_DATA_MAX_SOURCES);
  HSRL_TRY(io_h5_attr_get_str(f, "/", "source_checksums", buf, cap));
  int n_sums = data_split_lines(buf, p->source_checksum[0], sizeof p->source_checksum[0], SIM_DATA_MAX_SOURCES);
  HSRL_TRY(io_h5_attr_get_str(f, "/", "source_bytes", buf, cap));
  int n_bytes = data_split_lines(buf, bytes[0], sizeof bytes[0], SIM_DATA_MAX_SOURCES);
  if (n_paths != n || n_sums != n || n_bytes != n)
    HSRL_TRY(hsrl_err(HSRL_E_CORRUPT, path, 0, "source_files", "%d paths, %d checksums, %d sizes for %lld sources",
                      n_paths, n_sums, n_bytes, (long long)n));
  for (int i = 0; i < n_bytes; i++) p->source_bytes[i] = strtoll(bytes[i], NULL, 10);
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "n_lines_read", &p->n_lines_read));
  HSRL_TRY(io_h5_attr_get_i64(f, "/", "n_dropped", &p->n_dropped));
  HSRL_TRY(io_h5_attr_get_str(f, "/", "protocol", p->protocol, sizeof p->protocol));
done:
  io_h5_close(f);
  hsrl_free(buf);
  return st;
}

/* ---- statistics ------------------------------------------------------------------------ */

double sim_dataset_click_rate(const sim_dataset *d, const int64_t *idx, int64_t n) {
  const int64_t K = d->slate_size;
  int64_t clicks = 0;
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *c = d->rec_clicks + (idx ? idx[i] : i) * K;
    for (int64_t k = 0; k < K; k++) clicks += c[k];
  }
  return n > 0 ? (double)clicks / (double)(n * K) : 0.0;
}

typedef struct data_row {
  const float *x;
  int64_t dim;
} data_row;

static int data_row_cmp(const void *a, const void *b) {
  const data_row *x = a, *y = b;
  return memcmp(x->x, y->x, (size_t)x->dim * sizeof(float));
}

int64_t sim_dataset_distinct_item_features(const sim_dataset *d) {
  const int64_t N = d->n_items;
  if (N < 1) return 0;
  data_row *rows = hsrl_malloc((size_t)N * sizeof *rows);
  for (int64_t i = 0; i < N; i++) rows[i].x = d->item_features + (i + 1) * d->item_dim, rows[i].dim = d->item_dim;
  qsort(rows, (size_t)N, sizeof *rows, data_row_cmp);
  int64_t n = 1;
  for (int64_t i = 1; i < N; i++) n += data_row_cmp(rows + i - 1, rows + i) != 0;
  hsrl_free(rows);
  return n;
}
