/* sim_sid_codebook.c: RQ-k-means codebooks, greedy residual encoding and last-level
 * de-duplication of the Semantic IDs (sim_sid_codebook.h; method.md §5; docs/semantic-ids.md). */
#include "sim/sim_sid_codebook.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_progress.h"
#include "common/hsrl_rng.h"
#include "common/hsrl_timer.h"
#include "sim/sim_kmeans.h"

void sim_sid_codebook_free(sim_sid_codebook *cb) {
  if (!cb) return;
  for (int l = 0; l < SIM_SID_MAX_LEVELS; l++) hsrl_free(cb->centers[l]);
  memset(cb, 0, sizeof *cb);
}

static int64_t sid_max_vocab(const sim_sid_codebook *cb) {
  int64_t v = 1;
  for (int l = 0; l < cb->n_levels; l++)
    if (cb->vocab[l] > v) v = cb->vocab[l];
  return v;
}

int64_t sim_sid_encode_scratch_floats(const sim_sid_codebook *cb, int64_t n) {
  int64_t rows = n < SIM_SID_ENCODE_BLOCK ? n : SIM_SID_ENCODE_BLOCK;
  if (rows < 1) rows = 1;
  int64_t v = sid_max_vocab(cb);
  return rows * cb->dim + sim_kmeans_nearest_scratch_floats(v, rows) + v;
}

void sim_sid_codebook_encode(const sim_sid_codebook *cb, const float *x, int64_t n, uint16_t *tokens,
                             float *sq_err, float *scratch) {
  HSRL_CHECK(cb->n_levels >= 1 && cb->n_levels <= SIM_SID_MAX_LEVELS && cb->dim >= 1);
  if (n <= 0) return;
  int L = cb->n_levels;
  int64_t dim = cb->dim, v = sid_max_vocab(cb);
  int64_t rows = n < SIM_SID_ENCODE_BLOCK ? n : SIM_SID_ENCODE_BLOCK;
  float *own = NULL;
  if (!scratch) scratch = own = hsrl_malloc((size_t)sim_sid_encode_scratch_floats(cb, n) * sizeof *own);
  float *r = scratch;                                   /* (rows, dim) residuals */
  float *g = r + rows * dim;                            /* (rows, V) gemm scores */
  float *c_norm2 = g + sim_kmeans_nearest_scratch_floats(v, rows); /* (V) */
  int32_t z[SIM_SID_ENCODE_BLOCK];
  for (int64_t b0 = 0; b0 < n; b0 += rows) {
    int64_t nb = n - b0 < rows ? n - b0 : rows;
    memcpy(r, x + b0 * dim, (size_t)(nb * dim) * sizeof *r);
    for (int l = 0; l < L; l++) {
      const float *c = cb->centers[l];
      int64_t V = cb->vocab[l];
      sim_kmeans_center_norms(c_norm2, c, V, dim);
      sim_kmeans_nearest(z, NULL, r, nb, dim, c, c_norm2, V, g);
      for (int64_t i = 0; i < nb; i++) {
        tokens[(b0 + i) * L + l] = (uint16_t)z[i];
        float *ri = r + i * dim;
        const float *cz = c + (int64_t)z[i] * dim;
        for (int64_t d = 0; d < dim; d++) ri[d] -= cz[d];
      }
    }
    if (sq_err)
      for (int64_t i = 0; i < nb; i++) {
        double s = 0.0;
        for (int64_t d = 0; d < dim; d++) s += (double)r[i * dim + d] * (double)r[i * dim + d];
        sq_err[b0 + i] = (float)s;
      }
  }
  hsrl_free(own);
}

void sim_sid_build_config_default(sim_sid_build_config *c) {
  memset(c, 0, sizeof *c);
  c->n_levels = 3;
  for (int l = 0; l < SIM_SID_MAX_LEVELS; l++) c->vocab[l] = 64;
  c->seed = 1;
  c->max_iter = 25;
  c->tol = 1e-3;
}

/* ---- last-level de-duplication ------------------------------------------------------------- */

typedef struct sid_sort_item {
  uint64_t key; /* the packed SID, level 0 in the most significant 16 bits */
  int64_t idx;
} sid_sort_item;

static int sid_cmp_item(const void *a, const void *b) {
  const sid_sort_item *x = a, *y = b;
  if (x->key != y->key) return x->key < y->key ? -1 : 1;
  return (x->idx > y->idx) - (x->idx < y->idx);
}

static int sid_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The last level (index L-1) has been assigned (tokens[:, L-1]) from residuals r (n, dim) that
 * are still r_{L-1}. In every group of items sharing a full SID, the item closest to its centre
 * (ties -> lowest index) keeps it; every other one, in index order, takes the nearest last-level
 * code (exact distance, ties -> lowest code) not used by any item of its prefix z_1..z_{L-1}.
 * When a prefix already uses all V_L codes the item keeps its token (counted as unresolved). */
static void sid_dedup_last(uint16_t *tokens, const float *r, int64_t n, int64_t dim, int L,
                           const float *centers, int64_t V, int64_t *n_moved, int64_t *n_unresolved) {
  *n_moved = *n_unresolved = 0;
  sid_sort_item *it = hsrl_malloc((size_t)n * sizeof *it);
  for (int64_t i = 0; i < n; i++) {
    uint64_t key = 0;
    for (int l = 0; l < L; l++) key = (key << 16) | tokens[i * L + l];
    it[i].key = key;
    it[i].idx = i;
  }
  qsort(it, (size_t)n, sizeof *it, sid_cmp_item);
  uint8_t *used = hsrl_calloc((size_t)V, 1);
  int64_t *movers = hsrl_malloc((size_t)n * sizeof *movers);
  for (int64_t a = 0; a < n;) {
    int64_t b = a + 1;
    while (b < n && (it[b].key >> 16) == (it[a].key >> 16)) b++; /* [a, b): one prefix */
    int dup = 0;
    for (int64_t q = a + 1; q < b; q++) dup |= it[q].key == it[q - 1].key;
    if (dup) {
      memset(used, 0, (size_t)V);
      for (int64_t q = a; q < b; q++) used[it[q].key & 0xffff] = 1;
      int64_t n_movers = 0;
      for (int64_t s = a; s < b;) { /* runs of one full SID */
        int64_t e = s + 1;
        while (e < b && it[e].key == it[s].key) e++;
        if (e - s > 1) {
          int64_t z = (int64_t)(it[s].key & 0xffff), keep = -1;
          double kd = 0.0;
          for (int64_t q = s; q < e; q++) {
            double d = sim_kmeans_dist2(r + it[q].idx * dim, centers + z * dim, dim);
            if (keep < 0 || d < kd) { /* ascending index within a run: ties -> lowest index */
              kd = d;
              keep = it[q].idx;
            }
          }
          for (int64_t q = s; q < e; q++)
            if (it[q].idx != keep) movers[n_movers++] = it[q].idx;
        }
        s = e;
      }
      qsort(movers, (size_t)n_movers, sizeof *movers, sid_cmp_i64);
      for (int64_t q = 0; q < n_movers; q++) {
        int64_t i = movers[q];
        int64_t best = -1;
        double bd = 0.0;
        for (int64_t j = 0; j < V; j++) {
          if (used[j]) continue;
          double d = sim_kmeans_dist2(r + i * dim, centers + j * dim, dim);
          if (best < 0 || d < bd) {
            bd = d;
            best = j;
          }
        }
        if (best < 0) {
          (*n_unresolved)++;
          continue;
        }
        used[best] = 1;
        tokens[i * L + (L - 1)] = (uint16_t)best;
        (*n_moved)++;
      }
    }
    a = b;
  }
  hsrl_free(movers);
  hsrl_free(used);
  hsrl_free(it);
}

/* ---- build --------------------------------------------------------------------------------- */

hsrl_status sim_sid_codebook_build(sim_sid_codebook *cb, uint16_t *tokens, const float *x, int64_t n,
                                   int64_t dim, const sim_sid_build_config *c, sim_sid_build_report *rep) {
  memset(cb, 0, sizeof *cb);
  if (rep) memset(rep, 0, sizeof *rep);
  if (c->n_levels < 1 || c->n_levels > SIM_SID_MAX_LEVELS)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "levels", "%d levels; 1..%d are supported", c->n_levels,
                    SIM_SID_MAX_LEVELS);
  for (int l = 0; l < c->n_levels; l++)
    if (c->vocab[l] < 1 || c->vocab[l] > 65536)
      return hsrl_err(HSRL_E_USAGE, NULL, 0, "vocab", "level %d: vocabulary %lld; 1..65536 are supported",
                      l + 1, (long long)c->vocab[l]);
  if (n < 1 || dim < 1)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "vectors", "%lld vectors of width %lld: nothing to quantise",
                    (long long)n, (long long)dim);
  if (c->balanced < 0 || c->balanced > 2)
    return hsrl_err(HSRL_E_USAGE, NULL, 0, "balanced", "mode %d (0 none, 1 all levels, 2 last level)",
                    c->balanced);
  for (int64_t i = 0; i < n * dim; i++)
    if (!isfinite(x[i]))
      return hsrl_err(HSRL_E_INPUT, NULL, 0, "vectors", "row %lld, column %lld is not finite",
                      (long long)(i / dim), (long long)(i % dim));

  int L = c->n_levels;
  double t0 = hsrl_time_now();
  cb->n_levels = L;
  cb->dim = dim;
  for (int l = 0; l < L; l++) {
    cb->vocab[l] = c->vocab[l];
    cb->centers[l] = hsrl_malloc((size_t)(c->vocab[l] * dim) * sizeof(float));
  }
  float *r = hsrl_malloc((size_t)(n * dim) * sizeof *r); /* (n, dim) residuals */
  memcpy(r, x, (size_t)(n * dim) * sizeof *r);
  int32_t *z = hsrl_malloc((size_t)n * sizeof *z);

  for (int l = 0; l < L; l++) {
    double tl = hsrl_time_now();
    sim_kmeans_config kc;
    sim_kmeans_config_default(&kc, c->vocab[l]);
    if (c->max_iter > 0) kc.max_iter = c->max_iter;
    if (c->tol > 0.0) kc.tol = c->tol;
    kc.sample = c->sample;
    kc.full_iter = c->full_iter;
    kc.balanced = c->balanced == 1 || (c->balanced == 2 && l == L - 1);
    kc.seed = hsrl_rng_derive(c->seed, 0x5349444c00ull + (uint64_t)l); /* "SIDL" + level */
    hsrl_progress prog;
    if (c->progress) {
      char label[48];
      snprintf(label, sizeof label, "sid level %d/%d (V %lld)", l + 1, L, (long long)c->vocab[l]);
      int64_t s = c->sample > 0 ? c->sample : 64 * c->vocab[l];
      if (c->sample <= 0 && s < SIM_KMEANS_DEFAULT_SAMPLE) s = SIM_KMEANS_DEFAULT_SAMPLE;
      int full = kc.full_iter > 0 ? kc.full_iter : SIM_KMEANS_DEFAULT_FULL_ITER;
      hsrl_progress_init(&prog, label, n > s ? (int64_t)kc.max_iter + full : (int64_t)kc.max_iter);
      kc.progress = &prog;
    }
    sim_kmeans_report kr;
    sim_kmeans_fit(cb->centers[l], z, r, n, dim, &kc, &kr);
    for (int64_t i = 0; i < n; i++) tokens[i * L + l] = (uint16_t)z[i];
    if (l == L - 1 && c->dedup) {
      int64_t moved = 0, unresolved = 0;
      sid_dedup_last(tokens, r, n, dim, L, cb->centers[l], c->vocab[l], &moved, &unresolved);
      if (rep) {
        rep->n_dedup_moved = moved;
        rep->n_dedup_unresolved = unresolved;
      }
    }
    double mse = 0.0;
    for (int64_t i = 0; i < n; i++) {
      float *ri = r + i * dim;
      const float *cz = cb->centers[l] + (int64_t)tokens[i * L + l] * dim;
      for (int64_t d = 0; d < dim; d++) {
        ri[d] -= cz[d];
        mse += (double)ri[d] * (double)ri[d];
      }
    }
    mse /= (double)n;
    if (c->progress) {
      char note[96];
      snprintf(note, sizeof note, "%d+%d passes%s, mse after %.4g, reseeded %lld", kr.warm_iters,
               kr.iters, kr.converged ? " (converged)" : "", mse, (long long)kr.n_reseeded);
      hsrl_progress_finish(&prog, note);
    }
    if (rep) {
      rep->iters[l] = kr.iters;
      rep->warm_iters[l] = kr.warm_iters;
      rep->converged[l] = kr.converged;
      rep->n_reseeded[l] = kr.n_reseeded;
      rep->max_size[l] = kr.max_size;
      rep->mse_after[l] = mse;
      rep->seconds[l] = hsrl_time_now() - tl;
    }
  }
  if (rep) rep->seconds_total = hsrl_time_now() - t0;
  hsrl_free(z);
  hsrl_free(r);
  return HSRL_OK;
}
