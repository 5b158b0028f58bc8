/* sim_kmeans.h: seeded, deterministic k-means for the Semantic-ID codebooks (method.md §5;
 * docs/semantic-ids.md gives the reasoning behind each choice).
 *
 * Points x (n, dim) row-major float32; centres (k, dim); assignments int32 in [0, k).
 *
 * Nearest centre (sim_kmeans_nearest): the squared distance |x|^2 - 2 x.c + |c|^2 is computed for
 * a block of rows at once with one nn_gemm (x_block C^T), so the cost is BLAS-bound. Its float
 * rounding can mis-order two centres whose distances differ by less than the rounding error, so
 * every centre within a small margin of the best gemm value is re-scored exactly (double sum of
 * (x - c)^2) and the exact minimum wins, ties -> lowest index. The result therefore does not depend
 * on the block size or the BLAS kernel, and encoding one item gives the same token as encoding it
 * among a million.
 *
 * Fit (sim_kmeans_fit):
 *  1. k-means++ seeding (D^2 sampling, Arthur & Vassilvitskii 2007) on a uniform sample of
 *     `sample` points (all points when n <= sample).
 *  2. When n > sample: Lloyd iterations on the sample only (cheap warm-up, at most max_iter), then
 *  3. Lloyd iterations on all points (at most full_iter of them after a warm-up, else max_iter):
 *     assign (nearest, or balanced below), then new centres = the
 *     means of their points (sums in double, in point order: deterministic). An empty cluster is
 *     re-seeded with the point farthest from its centre (ties -> lowest index; that point moves to
 *     it); if every point sits exactly on its centre the cluster stays empty.
 *     Stop when fewer than tol * n assignments changed (and no cluster can be re-seeded) or after
 *     the pass limit; the returned assignment is always the one made against the returned
 *     centres (no centre update after the last assignment).
 *  Balanced mode (capacity ceil(n/k) per cluster), done right, unlike the reference
 *  (reference-hsrl.md §4.2: sizes never reset): every assignment pass starts from empty clusters.
 *  The pass is the global greedy for the capacitated assignment: all (point, centre) candidate
 *  pairs (each point's SIM_KMEANS_BALANCED_TOP nearest centres) sorted by distance, ties by point
 *  then centre rank; a pair is taken when its point is still free and its centre has room. Points
 *  left over (all their candidates filled up) go through the same greedy again, over their nearest
 *  centres that still have room, until every point is placed (k * ceil(n/k) >= n; each extra round
 *  fills at least SIM_KMEANS_BALANCED_TOP centres, so there are at most k / TOP + 1 rounds).
 *  This is a heuristic for the capacitated (min-cost transportation) assignment, without an
 *  optimality guarantee; an exact min-cost flow costs far more and is not needed for codebooks.
 *  The order of the data plays no role (the reference's greedy pass in data order is gone).
 *
 * Everything random comes from hsrl_rng(seed, stream): the same (x, config) gives the same bytes
 * (OpenBLAS single-threaded; see docs/semantic-ids.md for the multi-threaded caveat). */
#ifndef SIM_KMEANS_H
#define SIM_KMEANS_H

#include <stdint.h>

#include "common/hsrl_progress.h"

#define SIM_KMEANS_BLOCK 2048        /* rows per gemm block */
#define SIM_KMEANS_BALANCED_TOP 8    /* candidate centres per point in a balanced pass */
#define SIM_KMEANS_DEFAULT_SAMPLE 65536
/* On 1M x 64 with k = 256 the sample warm-up leaves the full passes little to do: passes 10..30
 * on all points lowered the mean squared error by 0.1% more (docs/semantic-ids.md). */
#define SIM_KMEANS_DEFAULT_FULL_ITER 10

typedef struct sim_kmeans_config {
  int64_t k;            /* clusters, >= 1 */
  int max_iter;         /* Lloyd passes at most (on the sample, and on all points without one), >= 1 */
  int full_iter;        /* passes on all points after a sample warm-up (0: SIM_KMEANS_DEFAULT_FULL_ITER) */
  double tol;           /* stop when changed assignments < tol * n (0: only when none change) */
  int64_t sample;       /* seeding and warm-up sample size; 0: max(SIM_KMEANS_DEFAULT_SAMPLE, 64 k) */
  int balanced;         /* 1: capacity ceil(n/k) per cluster */
  uint64_t seed;
  hsrl_progress *progress; /* updated after every pass when not NULL (owned by the caller) */
} sim_kmeans_config;

typedef struct sim_kmeans_report {
  int warm_iters;       /* Lloyd passes on the sample */
  int iters;            /* Lloyd passes on all points (including the final assignment pass) */
  int converged;        /* 1: stopped on tol */
  int64_t n_changed;    /* assignments changed in the last pass */
  int64_t n_reseeded;   /* empty clusters re-seeded, over all passes */
  int64_t n_empty;      /* clusters empty in the returned assignment */
  int64_t max_size;     /* largest cluster of the returned assignment */
  double inertia;       /* mean |x - c_assign|^2 of the returned assignment */
} sim_kmeans_report;

/* Sensible defaults for k clusters: max_iter 25, full_iter 0 (auto), tol 1e-3, sample 0 (auto),
 * unbalanced, seed 0. */
void sim_kmeans_config_default(sim_kmeans_config *c, int64_t k);

/* Fits centres (k, dim) to x and writes the final assignment (n). Allocates its work memory once
 * per call. A bad config (k < 1, max_iter < 1, n < 1, dim < 1) is a bug (HSRL_CHECK). rep may be
 * NULL. With k > n (or fewer distinct points than k) some clusters stay empty; their centres are
 * copies of data points. */
void sim_kmeans_fit(float *centers /* (k, dim) */, int32_t *assign /* (n) */,
                    const float *x /* (n, dim) */, int64_t n, int64_t dim,
                    const sim_kmeans_config *c, sim_kmeans_report *rep);

/* |c_j|^2 for j < k (summed in double, stored as float). */
void sim_kmeans_center_norms(float *c_norm2 /* (k) */, const float *centers /* (k, dim) */,
                             int64_t k, int64_t dim);

/* Floats of scratch sim_kmeans_nearest needs for blocks of `rows` rows (rows <= SIM_KMEANS_BLOCK
 * is what it uses at most: min(n, SIM_KMEANS_BLOCK) is enough for any n). */
int64_t sim_kmeans_nearest_scratch_floats(int64_t k, int64_t rows);

/* Nearest centre of every row (exact-rescored, ties -> lowest index; see above). dist2 (n), when
 * not NULL, gets the exact |x_i - c_assign|^2. c_norm2 from sim_kmeans_center_norms. scratch holds
 * sim_kmeans_nearest_scratch_floats(k, min(n, SIM_KMEANS_BLOCK)) floats. Allocates nothing. */
void sim_kmeans_nearest(int32_t *assign /* (n) */, float *dist2 /* (n) or NULL */,
                        const float *x /* (n, dim) */, int64_t n, int64_t dim,
                        const float *centers /* (k, dim) */, const float *c_norm2 /* (k) */,
                        int64_t k, float *scratch);

/* Exact squared distance sum_d (a_d - b_d)^2 in double. */
double sim_kmeans_dist2(const float *a, const float *b, int64_t dim);

#endif
