/* sim_sid_file.h: the Semantic-ID file <dataset>.sid.h5 (method.md §5; contract with H12 in
 * /work/notes/sid_contract.md: the struct, _write, _read and _free are fixed).
 *
 * HDF5 layout:
 *   /                   attrs hsrl_kind="sid", hsrl_format_version, hsrl_config_hash, n_levels,
 *                       vocab (text "V1,V2,V3"; the codebook shapes are authoritative), dim,
 *                       n_items, vectors ("sim" | "features"), build (text, optional),
 *                       collision stats: n_live, n_distinct_sids, n_colliding, collision_rate,
 *                       largest_bucket
 *   /codebook/level<l>  float32 (V_l, dim), l = 0..L-1
 *   /items/tokens       uint16 (N+1, L); row 0 unused (zeros)
 *   /items/live         uint8 (N+1); 1 = item in the live catalog (row 0 and deleted items 0)
 *   /items/vectors      float32 (N+1, dim), optional: the item vectors the codes were built from,
 *                       kept so that `hsrl sid stats` can report reconstruction error per level.
 *   /stats/tokens_used int64 (L), /stats/perplexity float64 (L), /stats/n_prefixes int64 (L),
 *                       /stats/mse_after float64 (L) (only with vectors)
 *   (every dataset is zstd-compressed, so its chunks carry checksums)
 * Collision stats are computed over live items at write time (sim_sid_stats.h). */
#ifndef SIM_SID_FILE_H
#define SIM_SID_FILE_H

#include <stdint.h>

#include "common/hsrl_status.h"
#include "sim/sim_sid_codebook.h"

#define SIM_SID_FORMAT_VERSION 1

typedef struct sim_sid_file {
  sim_sid_codebook cb;
  int64_t n_items;          /* N: ids 1..N (row 0 = padding) */
  uint16_t *tokens;         /* (N+1, L); row 0 unused */
  uint8_t *live;            /* (N+1); 1 = item in the live catalog (0 for row 0 and deleted items) */
  char vectors[16];         /* "sim" or "features" */
  uint64_t config_hash;
} sim_sid_file;

/* Atomic (temporary name + rename); codebooks + tokens + live + stats attrs. No /items/vectors. */
hsrl_status sim_sid_file_write(const sim_sid_file *f, const char *path);
/* Reads everything but /items/vectors; checks kind, version and shapes (HSRL_E_CORRUPT). */
hsrl_status sim_sid_file_read(sim_sid_file *f, const char *path);
void sim_sid_file_free(sim_sid_file *f); /* NULL ok; frees codebook, tokens, live; zeroes f */

/* (H11 extension.) As _write, plus /items/vectors (N+1, dim) when vectors != NULL (and the
 * reconstruction error per level in /stats), and a root attribute `build` (free text: how the file
 * was made) when build_note != NULL. */
hsrl_status sim_sid_file_write_ex(const sim_sid_file *f, const float *vectors /* (N+1, dim) */,
                                  const char *build_note, const char *path);
/* (H11 extension.) Reads /items/vectors into *vectors (hsrl_malloc, (N+1, dim)); *vectors = NULL
 * and HSRL_OK when the file holds none. */
hsrl_status sim_sid_file_read_vectors(float **vectors, int64_t *n_rows, int64_t *dim, const char *path);

#endif
