/* sim_sid_codebook.h: residual-quantisation codebooks of the Semantic IDs (method.md §5).
 *
 * An item vector x (dim) is encoded greedily level by level with frozen codebooks:
 *   r_0 = x;  z_l = argmin_j |r_{l-1} - C_l[j]|^2 (ties -> lowest j);  r_l = r_{l-1} - C_l[z_l].
 * The Semantic ID of the item is (z_1, ..., z_L); tokens are uint16, so V_l <= 65536.
 * The codebooks are built by RQ-k-means (sim_sid_codebook_build: k-means on x at level 1, on the
 * residuals r_1 at level 2, ...; see sim_kmeans.h and docs/semantic-ids.md). Encoding is the same
 * greedy rule the build's final assignment uses, so encode(build data) reproduces the build tokens
 * (except where balanced assignment moved a point off its nearest centre; see build()).
 * Contract shared with H12 (/work/notes/sid_contract.md): the struct, _free and _encode are fixed. */
#ifndef SIM_SID_CODEBOOK_H
#define SIM_SID_CODEBOOK_H

#include <stdint.h>

#include "common/hsrl_status.h"

#define SIM_SID_MAX_LEVELS 4

typedef struct sim_sid_codebook {
  int n_levels;                          /* L */
  int64_t vocab[SIM_SID_MAX_LEVELS];     /* V_l (<= 65536: tokens are uint16) */
  int64_t dim;                           /* item-vector width */
  float *centers[SIM_SID_MAX_LEVELS];    /* (V_l, dim) each */
} sim_sid_codebook;

/* Frees the centre arrays (hsrl_free) and zeroes cb; NULL ok. */
void sim_sid_codebook_free(sim_sid_codebook *cb);

/* Greedy residual encoding with the frozen codebooks: z_l = argmin_j |r_{l-1} - C_l[j]|^2 (ties ->
 * lowest j), r_l = r_{l-1} - C_l[z_l]. tokens (n, L) row-major. sq_err (n) gets |r_L|^2 when not
 * NULL. scratch: sim_sid_encode_scratch_floats(cb, n) floats, or NULL: then one internal block of
 * that size (for a block of at most SIM_SID_ENCODE_BLOCK rows) is allocated and freed per call.
 * Hot callers (the decoder, churn) pass scratch and the call allocates nothing. Distances by
 * nn_gemm in row blocks of SIM_SID_ENCODE_BLOCK; thread-compatible (no shared state). */
void sim_sid_codebook_encode(const sim_sid_codebook *cb, const float *x /* (n, dim) */, int64_t n,
                             uint16_t *tokens /* (n, L) */, float *sq_err /* (n) or NULL */,
                             float *scratch);
/* Floats of scratch encode() needs for n rows (it processes min(n, SIM_SID_ENCODE_BLOCK) at once). */
int64_t sim_sid_encode_scratch_floats(const sim_sid_codebook *cb, int64_t n);
#define SIM_SID_ENCODE_BLOCK 1024

/* --- build (H11 only; not part of the H12 contract) ----------------------------------------- */

typedef struct sim_sid_build_config {
  int n_levels;                          /* L, 1..SIM_SID_MAX_LEVELS */
  int64_t vocab[SIM_SID_MAX_LEVELS];     /* V_l, 1..65536 */
  int balanced;                          /* 0 plain; 1 every level balanced; 2 last level only */
  int dedup;                             /* 1: move colliding items to the nearest free last code */
  uint64_t seed;
  int max_iter;                          /* Lloyd iterations per level (0: default 25) */
  int full_iter;                         /* passes on all points after a sample warm-up (0: auto) */
  double tol;                            /* stop when changed fraction < tol (<= 0: default 1e-3) */
  int64_t sample;                        /* k-means++ / mini-batch sample (0: default max(64 V, 65536)) */
  int progress;                          /* 1: hsrl_progress line per level on stderr */
} sim_sid_build_config;

/* Per level figures of the build (filled by build(); all optional to read). */
typedef struct sim_sid_build_report {
  int iters[SIM_SID_MAX_LEVELS];
  double mse_after[SIM_SID_MAX_LEVELS];  /* mean |r_l|^2 after level l */
  double seconds[SIM_SID_MAX_LEVELS];
  int64_t n_reseeded[SIM_SID_MAX_LEVELS];
  int warm_iters[SIM_SID_MAX_LEVELS];    /* Lloyd passes on the sample (large n) */
  int converged[SIM_SID_MAX_LEVELS];
  int64_t max_size[SIM_SID_MAX_LEVELS];  /* largest cluster */
  int64_t n_dedup_moved;                 /* items given another last token by dedup */
  int64_t n_dedup_unresolved;            /* colliding items dedup could not move (prefix full) */
  double seconds_total;
} sim_sid_build_report;

/* L = 3, V = 64 per level, plain, no dedup, seed 1, max_iter 25, tol 1e-3, sample auto. */
void sim_sid_build_config_default(sim_sid_build_config *c);

/* RQ-k-means: fills cb (allocates centres) and tokens (n, L) for the n rows of x.
 * Level l fits sim_kmeans (seed derived from (seed, l)) to the residuals r_{l-1}; its final
 * assignment gives token l and r_l = r_{l-1} - C_l[z_l]. Plain mode: the tokens equal
 * sim_sid_codebook_encode(x) exactly. Balanced levels keep the balanced labels (capacity
 * ceil(n/V_l)), and dedup (last level only, after its k-means) moves every item that shares a full
 * SID with a better-fitting item to the nearest last-level code not used within its prefix
 * (z_1..z_{L-1}), so those items' tokens differ from the greedy encoding: new items encoded later
 * get the greedy rule. Deterministic for a given (x, config): same seed -> same bytes
 * (single-threaded BLAS assumed; see docs/semantic-ids.md). rep may be NULL. HSRL_E_USAGE on a
 * bad config, HSRL_E_INPUT on a non-finite vector. */
hsrl_status sim_sid_codebook_build(sim_sid_codebook *cb, uint16_t *tokens /* (n, L) */,
                                   const float *x /* (n, dim) */, int64_t n, int64_t dim,
                                   const sim_sid_build_config *c, sim_sid_build_report *rep);

#endif
