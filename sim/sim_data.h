/* sim_data.h: the prepared-data file (<dataset>.data.h5) and its in-memory form.
 *
 * Every dataset (ML-1M, ML-100K, RL4RS, the synthetic world) becomes this one format, so every
 * later stage (simulator, Semantic IDs, agents) reads one thing (datasets.md, method.md §2).
 * Ids: items 1..N and users 1..U; id 0 is padding, so row 0 of every feature table is a zero row.
 * Records: (user, history of H item ids left-padded with 0, slate of K item ids, K click labels,
 * time). Split: record indices of the train and test parts (by time, per datasets.md).
 *
 * HDF5 layout (all arrays chunked + shuffle + zstd when large; the field-by-field description
 * lives in docs/data-format.md):
 *   /            attrs hsrl_kind="data", hsrl_format_version, hsrl_config_hash, name, source_format,
 *                n_items, n_users, n_records, slate_size, history_len, item_dim, user_dim,
 *                provenance attrs (source_files, source_bytes, source_checksums, ...)
 *   /items/features   float32 (N+1, D)     /items/raw_id   int64 (N+1)   (0 for the padding row)
 *   /users/features   float32 (U+1, P)     /users/raw_id   int64 (U+1)
 *   /records/user     int32 (R)            /records/history int32 (R, H)
 *   /records/slate    int32 (R, K)         /records/clicks  uint8 (R, K)   /records/time int64 (R)
 *   /split/train      int64 (R_train)      /split/test      int64 (R_test)
 *   /world/...        only in synthetic files: the ground truth (sim_synth.h)
 * RL4RS has no user ids: every record gets its own user row holding its portrait. */
#ifndef SIM_DATA_H
#define SIM_DATA_H

#include <stdint.h>

#include "common/hsrl_status.h"

#define SIM_DATA_FORMAT_VERSION 1
#define SIM_DATA_MAX_SOURCES 8

typedef struct sim_provenance {
  int n_sources;
  char source_path[SIM_DATA_MAX_SOURCES][512];
  int64_t source_bytes[SIM_DATA_MAX_SOURCES];
  char source_checksum[SIM_DATA_MAX_SOURCES][24]; /* hex of a 64-bit checksum of the bytes */
  int64_t n_lines_read;
  int64_t n_dropped;  /* e.g. ratings in a final partial slate */
  char protocol[64];  /* e.g. "datasets.md v1: slates of K by (timestamp, movie id)" */
} sim_provenance;

typedef struct sim_dataset {
  char name[64];
  char source_format[16];     /* "ml1m", "ml100k", "rl4rs", "synth" */
  int64_t n_items, item_dim;  /* N, D */
  float *item_features;       /* (N+1, D) */
  int64_t *item_raw_id;       /* (N+1) */
  int64_t n_users, user_dim;  /* U, P */
  float *user_features;       /* (U+1, P) */
  int64_t *user_raw_id;       /* (U+1) */
  int64_t n_records, slate_size, history_len; /* R, K, H */
  int32_t *rec_user;          /* (R) */
  int32_t *rec_history;       /* (R, H) */
  int32_t *rec_slate;         /* (R, K) */
  uint8_t *rec_clicks;        /* (R, K) */
  int64_t *rec_time;          /* (R) */
  int64_t n_train, n_test;
  int64_t *train_idx;         /* (n_train) */
  int64_t *test_idx;          /* (n_test) */
} sim_dataset;

/* Allocates every array of d for the given sizes (zero-filled); sizes are set in d.
 * train_idx and test_idx get room for n_records entries each; n_train = n_test = 0 until the
 * caller fills them and sets the counts. */
void sim_dataset_alloc(sim_dataset *d, int64_t n_items, int64_t item_dim, int64_t n_users,
                       int64_t user_dim, int64_t n_records, int64_t slate_size, int64_t history_len);
void sim_dataset_free(sim_dataset *d); /* NULL ok; leaves d zeroed */

/* Checks internal consistency (ids in range, split covers records once, ...); a violation is
 * HSRL_E_INPUT naming the record and field. */
hsrl_status sim_dataset_validate(const sim_dataset *d, const char *what);

/* Writes atomically (temporary name + rename): nothing is left under `path` on failure.
 * config_hash stamps the file (0 when written outside a pipeline). prov may be NULL. */
hsrl_status sim_dataset_write(const sim_dataset *d, const char *path, const sim_provenance *prov,
                              uint64_t config_hash);
hsrl_status sim_dataset_read(sim_dataset *d, const char *path);
/* (Added by H6.) Writes d, its stamp and prov (may be NULL) into f, a file created with
 * io_h5_create() (common/io/io_h5.h), without committing it: for writers that add more to the same
 * file (e.g. /world) before io_h5_commit(). Validates d first. sim_dataset_write() = create + this
 * + commit. */
struct io_h5;
hsrl_status sim_dataset_write_into(struct io_h5 *f, const sim_dataset *d, const sim_provenance *prov,
                                   uint64_t config_hash);
/* The provenance attributes of a prepared-data file (added by H6 for tests and `hsrl data info`). */
hsrl_status sim_dataset_read_provenance(sim_provenance *prov, const char *path);

/* Positive rate of the clicks of the given record indices (idx NULL: records 0..n-1); 0 if n == 0. */
double sim_dataset_click_rate(const sim_dataset *d, const int64_t *idx, int64_t n);
/* Number of distinct rows among item feature rows 1..N (bitwise equality); datasets.md quotes
 * 795 for ML-1M u2999. */
int64_t sim_dataset_distinct_item_features(const sim_dataset *d);

#endif
