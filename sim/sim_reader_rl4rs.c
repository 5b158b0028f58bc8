/* sim_reader_rl4rs.c: see sim_reader_rl4rs.h (datasets.md "RL4RS"; method.md §2).
 *
 * The record arrays grow by doubling while the slate files stream in and are trimmed to size at
 * the end, then handed to the sim_dataset as they are (no second copy): the dataset's arrays are
 * plain hsrl allocations that sim_dataset_free() releases. Row 0 of the user arrays (padding) is
 * reserved from the start. */
#include "sim/sim_reader_rl4rs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_progress.h"
#include "sim/sim_text.h"

#define RL_MAX_ITEM_LINE ((int64_t)1 << 20)

static const char *const rl_item_fields[] = {"item_id", "item_vec", "price", "location",
                                             "special_item"};
static const char *const rl_slate_fields[] = {
    "timestamp",       "session_id",    "sequence_id",  "exposed_items",     "user_feedback",
    "user_seqfeature", "user_protrait", "item_feature", "behavior_policy_id"};
enum { RL_TS, RL_SESSION, RL_SEQ, RL_ITEMS, RL_FEEDBACK, RL_HISTORY, RL_PORTRAIT, RL_N_FIELDS = 9 };

/* Records as they stream in; K and P are fixed by the first data row. */
typedef struct rl_records {
  int64_t n, cap, K, H, P;
  int32_t *history;   /* (cap, H) */
  int32_t *slate;     /* (cap, K) */
  uint8_t *clicks;    /* (cap, K) */
  int64_t *time;      /* (cap) */
  float *user_feat;   /* (cap+1, P), row 0 zero */
  int64_t *user_raw;  /* (cap+1), 0 at 0 */
  double *portrait;   /* (P) scratch */
  int32_t *scratch;   /* (max(K, H)) */
} rl_records;

static void rl_records_grow(rl_records *r, int64_t cap) {
  r->history = hsrl_realloc(r->history, (size_t)(cap * r->H) * sizeof *r->history);
  r->slate = hsrl_realloc(r->slate, (size_t)(cap * r->K) * sizeof *r->slate);
  r->clicks = hsrl_realloc(r->clicks, (size_t)(cap * r->K) * sizeof *r->clicks);
  r->time = hsrl_realloc(r->time, (size_t)cap * sizeof *r->time);
  r->user_feat = hsrl_realloc(r->user_feat, (size_t)((cap + 1) * r->P) * sizeof *r->user_feat);
  r->user_raw = hsrl_realloc(r->user_raw, (size_t)(cap + 1) * sizeof *r->user_raw);
  if (r->cap == 0) { /* the padding row */
    memset(r->user_feat, 0, (size_t)r->P * sizeof *r->user_feat);
    r->user_raw[0] = 0;
  }
  r->cap = cap;
}

static void rl_records_free(rl_records *r) {
  hsrl_free(r->history);
  hsrl_free(r->slate);
  hsrl_free(r->clicks);
  hsrl_free(r->time);
  hsrl_free(r->user_feat);
  hsrl_free(r->user_raw);
  hsrl_free(r->portrait);
  hsrl_free(r->scratch);
  memset(r, 0, sizeof *r);
}

static hsrl_status rl_open(sim_text **tx, sim_provenance *prov, const char *dir, const char *name,
                           int64_t max_line, const char *sep, const char *const *fields,
                           int n_fields) {
  char path[1024];
  int n = snprintf(path, sizeof path, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= sizeof prov->source_path[0])
    return hsrl_err(HSRL_E_USAGE, dir, 0, NULL, "input path too long");
  hsrl_status st = sim_text_open(tx, path, max_line);
  if (st != HSRL_OK) return st;
  sim_text_set_fields(*tx, sep, fields, n_fields);
  memcpy(prov->source_path[prov->n_sources], path, (size_t)n + 1); /* n < its size: checked above */
  return HSRL_OK;
}

static void rl_close(sim_text *tx, sim_provenance *prov) {
  int k = prov->n_sources++;
  prov->source_bytes[k] = sim_text_bytes_read(tx);
  sim_text_checksum_hex(sim_text_checksum(tx), prov->source_checksum[k]);
  prov->n_lines_read += sim_text_line(tx);
  sim_text_close(tx);
}

/* The header line must name the expected fields, in order. */
static hsrl_status rl_header(sim_text *tx, const char *const *names, int n_fields) {
  char *line, *f[RL_N_FIELDS];
  int64_t len;
  hsrl_status st = sim_text_next(tx, &line, &len);
  if (st != HSRL_OK) return st;
  if (!line) return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), 1, names[0], "empty file: no header line");
  if ((st = sim_text_split(tx, line, f)) != HSRL_OK) return st;
  for (int k = 0; k < n_fields; k++)
    if (strcmp(f[k], names[k]))
      return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), 1, names[k],
                      "header: expected the column name '%s', found '%.40s'", names[k], f[k]);
  return HSRL_OK;
}

static hsrl_status rl_line_error(const sim_text *tx, const char *field, const char *what) {
  return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), field, "%s", what);
}

/* item_info.csv -> d->item_features (N+1, D), d->item_raw_id. */
static hsrl_status rl_read_items(sim_dataset *d, sim_provenance *prov, const char *dir) {
  sim_text *tx = NULL;
  hsrl_status st = rl_open(&tx, prov, dir, "item_info.csv", RL_MAX_ITEM_LINE, " ", rl_item_fields, 5);
  if (st != HSRL_OK) return st;
  int64_t n = 0, cap = 0, dim = 0, len, id;
  char *line, *f[5];
  HSRL_TRY(rl_header(tx, rl_item_fields, 5));
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(rl_line_error(tx, "item_id", "empty line (expected a data line)"));
    HSRL_TRY(sim_text_split(tx, line, f));
    HSRL_TRY(sim_text_parse_i64(tx, "item_id", f[0], 1, INT32_MAX, &id));
    if (id != n + 1)
      HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "item_id",
                        "ids must be 1, 2, 3, ... in file order: expected %lld, found %lld",
                        (long long)(n + 1), (long long)id));
    if (dim == 0) {
      dim = sim_text_count_items(f[1], ',');
      if (dim < 1 || dim > SIM_READER_RL4RS_MAX_WIDTH)
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "item_vec",
                          "%lld numbers: expected 1..%d", (long long)dim, SIM_READER_RL4RS_MAX_WIDTH));
      cap = 512;
      d->item_features = hsrl_calloc((size_t)(cap * dim), sizeof(float));
    }
    if (n + 2 > cap) {
      cap *= 2;
      d->item_features = hsrl_realloc(d->item_features, (size_t)(cap * dim) * sizeof(float));
    }
    n++;
    HSRL_TRY(sim_text_parse_f32_list(tx, "item_vec", f[1], ',', d->item_features + n * dim, dim));
  }
  if (n == 0) HSRL_TRY(rl_line_error(tx, "item_id", "no items after the header"));
  rl_close(tx, prov);
  tx = NULL;
  d->item_features = hsrl_realloc(d->item_features, (size_t)((n + 1) * dim) * sizeof(float));
  d->item_raw_id = hsrl_malloc((size_t)(n + 1) * sizeof *d->item_raw_id);
  for (int64_t i = 0; i <= n; i++) d->item_raw_id[i] = i; /* row 0 is padding */
  d->n_items = n;
  d->item_dim = dim;
done:
  sim_text_close(tx);
  return st;
}

/* One data row of a slate file -> record r->n. */
static hsrl_status rl_parse_row(rl_records *r, const sim_text *tx, char **f, int64_t n_items) {
  const int64_t K = r->K, H = r->H, P = r->P, i = r->n;
  int64_t v, n;
  hsrl_status st;
  if ((st = sim_text_parse_i64(tx, "timestamp", f[RL_TS], INT64_MIN, INT64_MAX, &v)) != HSRL_OK) return st;
  r->time[i] = v;
  if ((st = sim_text_parse_i64(tx, "session_id", f[RL_SESSION], INT64_MIN, INT64_MAX, &v)) != HSRL_OK) return st;
  r->user_raw[i + 1] = v;
  if ((st = sim_text_parse_i64(tx, "sequence_id", f[RL_SEQ], INT64_MIN, INT64_MAX, &v)) != HSRL_OK) return st;

  if ((n = sim_text_count_items(f[RL_ITEMS], ',')) != K)
    return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "exposed_items",
                    "expected %lld item ids (the slate size of the first row), found %lld",
                    (long long)K, (long long)n);
  st = sim_text_parse_i32_list(tx, "exposed_items", f[RL_ITEMS], ',', 1, n_items, r->slate + i * K, K, &n);
  if (st != HSRL_OK) return st;

  if ((n = sim_text_count_items(f[RL_FEEDBACK], ',')) != K)
    return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "user_feedback",
                    "expected %lld labels (one per exposed item), found %lld", (long long)K,
                    (long long)n);
  st = sim_text_parse_i32_list(tx, "user_feedback", f[RL_FEEDBACK], ',', 0, 1, r->scratch, K, &n);
  if (st != HSRL_OK) return st;
  for (int64_t k = 0; k < K; k++) r->clicks[i * K + k] = (uint8_t)r->scratch[k];

  /* "0" or empty: no history; otherwise the last H ids, left-padded with 0 */
  int32_t *hist = r->history + i * H;
  memset(hist, 0, (size_t)H * sizeof *hist);
  if (strcmp(f[RL_HISTORY], "0") != 0) {
    st = sim_text_parse_i32_list(tx, "user_seqfeature", f[RL_HISTORY], ',', 1, n_items, r->scratch, H, &n);
    if (st != HSRL_OK) return st;
    int64_t kept = n < H ? n : H;
    memcpy(hist + (H - kept), r->scratch, (size_t)kept * sizeof *hist);
  }

  if ((st = sim_text_parse_f64_list(tx, "user_protrait", f[RL_PORTRAIT], ',', r->portrait, P)) != HSRL_OK)
    return st;
  float *u = r->user_feat + (i + 1) * P;
  for (int64_t p = 0; p < P; p++) {
    if (!(r->portrait[p] > -1.0))
      return hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "user_protrait",
                      "item %lld: %g is not > -1, so ln(1 + x) is undefined", (long long)(p + 1),
                      r->portrait[p]);
    u[p] = (float)log1p(r->portrait[p]);
  }
  r->n++;
  return HSRL_OK;
}

/* One slate file (header + rows) appended to r. */
static hsrl_status rl_read_slates(rl_records *r, sim_provenance *prov, const char *dir,
                                  const char *name, int64_t n_items, hsrl_progress *prog,
                                  int64_t bytes_before) {
  sim_text *tx = NULL;
  hsrl_status st = rl_open(&tx, prov, dir, name, SIM_READER_RL4RS_MAX_LINE, "@", rl_slate_fields,
                           RL_N_FIELDS);
  if (st != HSRL_OK) return st;
  int64_t len, n0 = r->n;
  char *line, *f[RL_N_FIELDS];
  HSRL_TRY(rl_header(tx, rl_slate_fields, RL_N_FIELDS));
  for (;;) {
    HSRL_TRY(sim_text_next(tx, &line, &len));
    if (!line) break;
    if (len == 0) HSRL_TRY(rl_line_error(tx, "timestamp", "empty line (expected a data line)"));
    HSRL_TRY(sim_text_split(tx, line, f));
    if (r->cap == 0) { /* the first row fixes K and P */
      r->K = sim_text_count_items(f[RL_ITEMS], ',');
      r->P = sim_text_count_items(f[RL_PORTRAIT], ',');
      if (r->K < 1 || r->K > SIM_READER_RL4RS_MAX_SLATE)
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "exposed_items",
                          "%lld item ids: expected 1..%d", (long long)r->K, SIM_READER_RL4RS_MAX_SLATE));
      if (r->P < 1 || r->P > SIM_READER_RL4RS_MAX_WIDTH)
        HSRL_TRY(hsrl_err(HSRL_E_INPUT, sim_text_path(tx), (long)sim_text_line(tx), "user_protrait",
                          "%lld numbers: expected 1..%d", (long long)r->P, SIM_READER_RL4RS_MAX_WIDTH));
      r->portrait = hsrl_malloc((size_t)r->P * sizeof *r->portrait);
      r->scratch = hsrl_malloc((size_t)(r->K > r->H ? r->K : r->H) * sizeof *r->scratch);
      rl_records_grow(r, 1024);
    } else if (r->n == r->cap) {
      rl_records_grow(r, 2 * r->cap);
    }
    HSRL_TRY(rl_parse_row(r, tx, f, n_items));
    if ((r->n & 4095) == 0) hsrl_progress_update(prog, bytes_before + sim_text_bytes_read(tx), NULL);
  }
  if (r->n == n0) HSRL_TRY(rl_line_error(tx, "timestamp", "no records after the header"));
  prog->done = bytes_before + sim_text_bytes_read(tx);
  rl_close(tx, prov);
  tx = NULL;
done:
  sim_text_close(tx);
  return st;
}

static int64_t rl_file_size(const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  sim_text *tx = NULL;
  if (sim_text_open(&tx, path, 1) != HSRL_OK) return 0;
  int64_t n = sim_text_file_size(tx);
  sim_text_close(tx);
  return n;
}

hsrl_status sim_reader_rl4rs_read(sim_dataset *d, sim_provenance *prov, const char *dir) {
  static const char *const files[2] = {"rl4rs_b_train.csv", "rl4rs_b_test.csv"};
  memset(d, 0, sizeof *d);
  memset(prov, 0, sizeof *prov);
  rl_records r;
  memset(&r, 0, sizeof r);
  r.H = SIM_READER_RL4RS_HISTORY;
  hsrl_status st = HSRL_OK;
  HSRL_TRY(rl_read_items(d, prov, dir));
  hsrl_progress prog;
  int64_t size0 = rl_file_size(dir, files[0]);
  hsrl_progress_init(&prog, "reading slates (bytes)", size0 + rl_file_size(dir, files[1]));
  HSRL_TRY(rl_read_slates(&r, prov, dir, files[0], d->n_items, &prog, 0));
  const int64_t n_train = r.n;
  HSRL_TRY(rl_read_slates(&r, prov, dir, files[1], d->n_items, &prog, prov->source_bytes[1]));
  char note[64];
  snprintf(note, sizeof note, "%lld records", (long long)r.n);
  hsrl_progress_finish(&prog, note);

  /* hand the trimmed arrays to d */
  const int64_t R = r.n;
  rl_records_grow(&r, R);
  d->n_users = R;
  d->user_dim = r.P;
  d->user_features = r.user_feat;
  d->user_raw_id = r.user_raw;
  d->n_records = R;
  d->slate_size = r.K;
  d->history_len = r.H;
  d->rec_history = r.history;
  d->rec_slate = r.slate;
  d->rec_clicks = r.clicks;
  d->rec_time = r.time;
  r.user_feat = NULL, r.user_raw = NULL, r.history = NULL, r.slate = NULL, r.clicks = NULL, r.time = NULL;
  d->rec_user = hsrl_malloc((size_t)R * sizeof *d->rec_user);
  d->train_idx = hsrl_malloc((size_t)(n_train ? n_train : 1) * sizeof *d->train_idx);
  d->test_idx = hsrl_malloc((size_t)(R - n_train ? R - n_train : 1) * sizeof *d->test_idx);
  for (int64_t i = 0; i < R; i++) {
    d->rec_user[i] = (int32_t)(i + 1);
    if (i < n_train) d->train_idx[i] = i;
    else d->test_idx[i - n_train] = i;
  }
  d->n_train = n_train;
  d->n_test = R - n_train;
  sim_text_basename(d->name, sizeof d->name, dir);
  snprintf(d->source_format, sizeof d->source_format, "rl4rs");
  snprintf(prov->protocol, sizeof prov->protocol, "datasets.md v1: K from file, H=%d, files = split",
           SIM_READER_RL4RS_HISTORY);
done:
  rl_records_free(&r);
  if (st != HSRL_OK) sim_dataset_free(d);
  return st;
}
