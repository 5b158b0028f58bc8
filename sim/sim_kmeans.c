/* sim_kmeans.c: seeded k-means with k-means++ seeding on a sample, gemm-blocked Lloyd passes,
 * empty-cluster re-seeding and an optional capacity-balanced assignment (sim_kmeans.h;
 * method.md §5; docs/semantic-ids.md). */
#include "sim/sim_kmeans.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"
#include "common/hsrl_rng.h"
#include "common/nn/nn_gemm.h"

/* Random streams of one fit (seed = config seed). */
#define KMEANS_STREAM_SAMPLE 1
#define KMEANS_STREAM_SEED 2

/* The gemm score c_norm2[j] - 2 x.c_j has a float rounding error of the order of
 * sqrt(dim) * eps * (2 |x| |c| + |c|^2) (a blocked dot product); centres whose score is within
 * KMEANS_MARGIN times that of the best are re-scored exactly. */
#define KMEANS_MARGIN 16.0

void sim_kmeans_config_default(sim_kmeans_config *c, int64_t k) {
  memset(c, 0, sizeof *c);
  c->k = k;
  c->max_iter = 25;
  c->tol = 1e-3;
}

double sim_kmeans_dist2(const float *a, const float *b, int64_t dim) {
  double s = 0.0;
  for (int64_t d = 0; d < dim; d++) {
    double t = (double)a[d] - (double)b[d];
    s += t * t;
  }
  return s;
}

static double kmeans_norm2(const float *a, int64_t dim) {
  double s = 0.0;
  for (int64_t d = 0; d < dim; d++) s += (double)a[d] * (double)a[d];
  return s;
}

void sim_kmeans_center_norms(float *c_norm2, const float *centers, int64_t k, int64_t dim) {
  for (int64_t j = 0; j < k; j++) c_norm2[j] = (float)kmeans_norm2(centers + j * dim, dim);
}

int64_t sim_kmeans_nearest_scratch_floats(int64_t k, int64_t rows) {
  if (rows > SIM_KMEANS_BLOCK) rows = SIM_KMEANS_BLOCK;
  if (rows < 1) rows = 1;
  return rows * k;
}

/* The margin of the exact re-scoring for a row of squared norm xn. */
static double kmeans_margin(double xn, double cmax2, int64_t dim) {
  return KMEANS_MARGIN * sqrt((double)dim) * (double)FLT_EPSILON *
         (2.0 * sqrt(xn) * sqrt(cmax2) + cmax2 + xn);
}

void sim_kmeans_nearest(int32_t *assign, float *dist2, const float *x, int64_t n, int64_t dim,
                        const float *centers, const float *c_norm2, int64_t k, float *scratch) {
  HSRL_CHECK(k >= 1 && dim >= 1 && n >= 0);
  double cmax2 = 0.0;
  for (int64_t j = 0; j < k; j++)
    if ((double)c_norm2[j] > cmax2) cmax2 = (double)c_norm2[j];
  float *g = scratch; /* (B, k) */
  for (int64_t b0 = 0; b0 < n; b0 += SIM_KMEANS_BLOCK) {
    int64_t nb = n - b0 < SIM_KMEANS_BLOCK ? n - b0 : SIM_KMEANS_BLOCK;
    nn_gemm(0, 1, nb, k, dim, 1.0f, x + b0 * dim, dim, centers, dim, 0.0f, g, k);
    for (int64_t i = 0; i < nb; i++) {
      const float *gi = g + i * k;
      const float *xi = x + (b0 + i) * dim;
      float best = INFINITY;
      int64_t bj = 0;
      for (int64_t j = 0; j < k; j++) {
        float s = c_norm2[j] - 2.0f * gi[j];
        if (s < best) {
          best = s;
          bj = j;
        }
      }
      double thr = (double)best + kmeans_margin(kmeans_norm2(xi, dim), cmax2, dim);
      int64_t n_cand = 0;
      for (int64_t j = 0; j < k; j++) n_cand += (double)(c_norm2[j] - 2.0f * gi[j]) <= thr;
      double bd = -1.0;
      if (n_cand > 1) { /* exact re-scoring of the near-ties, ascending j: ties -> lowest j */
        for (int64_t j = 0; j < k; j++) {
          if ((double)(c_norm2[j] - 2.0f * gi[j]) > thr) continue;
          double d = sim_kmeans_dist2(xi, centers + j * dim, dim);
          if (bd < 0.0 || d < bd) {
            bd = d;
            bj = j;
          }
        }
      }
      assign[b0 + i] = (int32_t)bj;
      if (dist2) dist2[b0 + i] = (float)(bd >= 0.0 ? bd : sim_kmeans_dist2(xi, centers + bj * dim, dim));
    }
  }
}

/* ---- work memory of one fit ---------------------------------------------------------------- */

typedef struct kmeans_work {
  int64_t n_max, k, dim, top;
  float *g;          /* (BLOCK, k) gemm scores */
  float *c_norm2;    /* (k) */
  float *dist2;      /* (n_max) */
  int32_t *prev;     /* (n_max) */
  int64_t *size;     /* (k) */
  double *sums;      /* (k, dim) */
  /* balanced mode */
  float *xb;         /* (BLOCK, dim) gathered rows */
  int64_t *pending;  /* (n_max) points still to place */
  uint64_t *keys;    /* (n_max * top) */
  uint64_t *keys_tmp;
  int32_t *cand;     /* (n_max * top) centre of each candidate pair */
  uint32_t *radix;   /* (65536) */
} kmeans_work;

static void kmeans_work_init(kmeans_work *w, int64_t n_max, int64_t k, int64_t dim, int balanced) {
  memset(w, 0, sizeof *w);
  w->n_max = n_max;
  w->k = k;
  w->dim = dim;
  w->top = k < SIM_KMEANS_BALANCED_TOP ? k : SIM_KMEANS_BALANCED_TOP;
  int64_t rows = n_max < SIM_KMEANS_BLOCK ? n_max : SIM_KMEANS_BLOCK;
  w->g = hsrl_malloc((size_t)(rows * k) * sizeof *w->g);
  w->c_norm2 = hsrl_malloc((size_t)k * sizeof *w->c_norm2);
  w->dist2 = hsrl_malloc((size_t)n_max * sizeof *w->dist2);
  w->prev = hsrl_malloc((size_t)n_max * sizeof *w->prev);
  w->size = hsrl_malloc((size_t)k * sizeof *w->size);
  w->sums = hsrl_malloc((size_t)(k * dim) * sizeof *w->sums);
  if (balanced) {
    HSRL_CHECKF(n_max * w->top < ((int64_t)1 << 32), "balanced k-means: %lld points x %lld candidates "
                "do not fit the 32-bit pair index", (long long)n_max, (long long)w->top);
    w->xb = hsrl_malloc((size_t)(rows * dim) * sizeof *w->xb);
    w->pending = hsrl_malloc((size_t)n_max * sizeof *w->pending);
    w->keys = hsrl_malloc((size_t)(n_max * w->top) * sizeof *w->keys);
    w->keys_tmp = hsrl_malloc((size_t)(n_max * w->top) * sizeof *w->keys_tmp);
    w->cand = hsrl_malloc((size_t)(n_max * w->top) * sizeof *w->cand);
    w->radix = hsrl_malloc((size_t)65536 * sizeof *w->radix);
  }
}

static void kmeans_work_free(kmeans_work *w) {
  hsrl_free(w->g);
  hsrl_free(w->c_norm2);
  hsrl_free(w->dist2);
  hsrl_free(w->prev);
  hsrl_free(w->size);
  hsrl_free(w->sums);
  hsrl_free(w->xb);
  hsrl_free(w->pending);
  hsrl_free(w->keys);
  hsrl_free(w->keys_tmp);
  hsrl_free(w->cand);
  hsrl_free(w->radix);
  memset(w, 0, sizeof *w);
}

/* ---- balanced assignment ------------------------------------------------------------------- */

/* Stable LSD radix sort of keys[0..m) by their upper 32 bits (two 16-bit digits); the lower 32
 * bits (the pair index, generated in increasing order) break ties. */
static void kmeans_sort_keys(kmeans_work *w, int64_t m) {
  uint64_t *a = w->keys, *b = w->keys_tmp;
  for (int pass = 0; pass < 2; pass++) {
    int shift = 32 + 16 * pass;
    memset(w->radix, 0, 65536 * sizeof *w->radix);
    for (int64_t i = 0; i < m; i++) w->radix[(a[i] >> shift) & 0xffff]++;
    uint32_t sum = 0;
    for (int64_t d = 0; d < 65536; d++) {
      uint32_t c = w->radix[d];
      w->radix[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < m; i++) b[w->radix[(a[i] >> shift) & 0xffff]++] = a[i];
    uint64_t *t = a;
    a = b;
    b = t;
  }
  /* after an even number of passes the result is back in w->keys */
}

static uint32_t kmeans_float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Capacity-constrained assignment: sizes start at zero every call (see sim_kmeans.h). */
static void kmeans_assign_balanced(kmeans_work *w, int32_t *assign, const float *x, int64_t n,
                                   const float *centers) {
  int64_t k = w->k, dim = w->dim;
  int64_t cap = (n + k - 1) / k;
  sim_kmeans_center_norms(w->c_norm2, centers, k, dim);
  memset(w->size, 0, (size_t)k * sizeof *w->size);
  for (int64_t i = 0; i < n; i++) {
    assign[i] = -1;
    w->pending[i] = i;
  }
  int64_t n_pending = n;
  while (n_pending > 0) {
    int64_t n_open = 0;
    for (int64_t j = 0; j < k; j++) n_open += w->size[j] < cap;
    HSRL_CHECK(n_open > 0);
    int64_t top = w->top < n_open ? w->top : n_open;
    int64_t m = 0;
    for (int64_t b0 = 0; b0 < n_pending; b0 += SIM_KMEANS_BLOCK) {
      int64_t nb = n_pending - b0 < SIM_KMEANS_BLOCK ? n_pending - b0 : SIM_KMEANS_BLOCK;
      for (int64_t i = 0; i < nb; i++)
        memcpy(w->xb + i * dim, x + w->pending[b0 + i] * dim, (size_t)dim * sizeof *x);
      nn_gemm(0, 1, nb, k, dim, 1.0f, w->xb, dim, centers, dim, 0.0f, w->g, k);
      for (int64_t i = 0; i < nb; i++) {
        const float *gi = w->g + i * k;
        float xn = (float)kmeans_norm2(w->xb + i * dim, dim);
        /* the `top` smallest approximate distances among open centres, by insertion (stable:
         * equal distances keep ascending centre order) */
        float bd[SIM_KMEANS_BALANCED_TOP];
        int32_t bj[SIM_KMEANS_BALANCED_TOP];
        int64_t nbest = 0;
        for (int64_t j = 0; j < k; j++) {
          if (w->size[j] >= cap) continue;
          float d = xn + w->c_norm2[j] - 2.0f * gi[j];
          if (!(d > 0.0f)) d = 0.0f;
          if (nbest == top && d >= bd[top - 1]) continue;
          int64_t p = nbest < top ? nbest++ : top - 1;
          while (p > 0 && bd[p - 1] > d) {
            bd[p] = bd[p - 1];
            bj[p] = bj[p - 1];
            p--;
          }
          bd[p] = d;
          bj[p] = (int32_t)j;
        }
        /* the sort keys are exact distances (the gemm only picks the candidates), so the
         * order does not depend on the gemm's rounding where |x|^2 and 2 x.c cancel */
        for (int64_t t = 0; t < top; t++) {
          uint64_t pair = (uint64_t)m;
          float d = (float)sim_kmeans_dist2(w->xb + i * dim, centers + (int64_t)bj[t] * dim, dim);
          w->keys[m] = ((uint64_t)kmeans_float_bits(d) << 32) | pair;
          w->cand[m] = bj[t];
          m++;
        }
      }
    }
    kmeans_sort_keys(w, m);
    for (int64_t q = 0; q < m; q++) {
      uint64_t pair = w->keys[q] & 0xffffffffu;
      int64_t i = w->pending[(int64_t)pair / top];
      int32_t j = w->cand[pair];
      if (assign[i] >= 0 || w->size[j] >= cap) continue;
      assign[i] = j;
      w->size[j]++;
    }
    int64_t left = 0;
    for (int64_t q = 0; q < n_pending; q++)
      if (assign[w->pending[q]] < 0) w->pending[left++] = w->pending[q];
    n_pending = left;
  }
}

/* ---- seeding ------------------------------------------------------------------------------- */

/* k-means++ on the n rows of x: the first centre uniform, each next one drawn with probability
 * proportional to D(x)^2 (the squared distance to the nearest centre so far). When every point
 * already sits on a centre (fewer distinct points than k), the rest are uniform draws (they become
 * empty clusters). d2 holds n doubles. */
static void kmeans_plusplus(float *centers, const float *x, int64_t n, int64_t dim, int64_t k,
                            hsrl_rng *rng, double *d2) {
  int64_t i0 = (int64_t)hsrl_rng_below(rng, (uint64_t)n);
  memcpy(centers, x + i0 * dim, (size_t)dim * sizeof *x);
  for (int64_t i = 0; i < n; i++) d2[i] = sim_kmeans_dist2(x + i * dim, centers, dim);
  for (int64_t m = 1; m < k; m++) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) total += d2[i];
    int64_t pick = -1;
    if (total > 0.0) {
      double u = hsrl_rng_uniform_double(rng) * total, cum = 0.0;
      for (int64_t i = 0; i < n; i++) {
        if (d2[i] <= 0.0) continue;
        cum += d2[i];
        pick = i;
        if (cum > u) break;
      }
    } else {
      pick = (int64_t)hsrl_rng_below(rng, (uint64_t)n);
    }
    float *cm = centers + m * dim;
    memcpy(cm, x + pick * dim, (size_t)dim * sizeof *x);
    for (int64_t i = 0; i < n; i++) {
      double d = sim_kmeans_dist2(x + i * dim, cm, dim);
      if (d < d2[i]) d2[i] = d;
    }
  }
}

/* ---- Lloyd --------------------------------------------------------------------------------- */

typedef struct kmeans_pass_stats {
  int passes, converged;
  int64_t n_changed, n_reseeded, n_empty, max_size;
  double inertia;
} kmeans_pass_stats;

/* One assignment pass into assign, with exact dist2 in w->dist2. */
static void kmeans_assign(kmeans_work *w, int32_t *assign, const float *x, int64_t n,
                          const float *centers, int balanced) {
  if (balanced) {
    kmeans_assign_balanced(w, assign, x, n, centers);
    for (int64_t i = 0; i < n; i++)
      w->dist2[i] = (float)sim_kmeans_dist2(x + i * w->dim, centers + (int64_t)assign[i] * w->dim, w->dim);
  } else {
    sim_kmeans_center_norms(w->c_norm2, centers, w->k, w->dim);
    sim_kmeans_nearest(assign, w->dist2, x, n, w->dim, centers, w->c_norm2, w->k, w->g);
  }
}

/* Lloyd passes on x (n rows) from the given centres; see sim_kmeans.h for the stopping rule. */
static void kmeans_lloyd(kmeans_work *w, float *centers, int32_t *assign, const float *x, int64_t n,
                         const sim_kmeans_config *c, int max_passes, int pass_offset, const char *phase,
                         kmeans_pass_stats *ps) {
  int64_t k = w->k, dim = w->dim;
  memset(ps, 0, sizeof *ps);
  for (int64_t i = 0; i < n; i++) w->prev[i] = -1;
  for (int it = 0;; it++) {
    kmeans_assign(w, assign, x, n, centers, c->balanced);
    ps->passes++;
    int64_t changed = 0;
    for (int64_t i = 0; i < n; i++) changed += assign[i] != w->prev[i];
    memset(w->size, 0, (size_t)k * sizeof *w->size);
    double inertia = 0.0, maxd = 0.0;
    for (int64_t i = 0; i < n; i++) {
      w->size[assign[i]]++;
      inertia += (double)w->dist2[i];
      if ((double)w->dist2[i] > maxd) maxd = (double)w->dist2[i];
    }
    int64_t n_empty = 0, max_size = 0;
    for (int64_t j = 0; j < k; j++) {
      n_empty += w->size[j] == 0;
      if (w->size[j] > max_size) max_size = w->size[j];
    }
    ps->n_changed = changed;
    ps->n_empty = n_empty;
    ps->max_size = max_size;
    ps->inertia = inertia / (double)n;
    if (c->progress) {
      char note[96];
      snprintf(note, sizeof note, "%s: changed %.3f%%, mse %.4g, empty %lld", phase,
               100.0 * (double)changed / (double)n, ps->inertia, (long long)n_empty);
      hsrl_progress_update(c->progress, pass_offset + ps->passes, note);
    }
    int can_reseed = n_empty > 0 && maxd > 0.0;
    if ((changed == 0 || (double)changed < c->tol * (double)n) && !can_reseed) {
      ps->converged = 1;
      break;
    }
    if (it + 1 >= max_passes) break;
    /* re-seed each empty cluster with the point farthest from its centre */
    for (int64_t j = 0; j < k && can_reseed; j++) {
      if (w->size[j] != 0) continue;
      int64_t far = -1;
      float fd = 0.0f;
      for (int64_t i = 0; i < n; i++)
        if (w->dist2[i] > fd) {
          fd = w->dist2[i];
          far = i;
        }
      if (far < 0) break;
      w->size[assign[far]]--;
      assign[far] = (int32_t)j;
      w->size[j] = 1;
      w->dist2[far] = 0.0f;
      memcpy(centers + j * dim, x + far * dim, (size_t)dim * sizeof *x);
      ps->n_reseeded++;
    }
    memcpy(w->prev, assign, (size_t)n * sizeof *assign);
    /* new centres: means of their points (double sums in point order) */
    memset(w->sums, 0, (size_t)(k * dim) * sizeof *w->sums);
    for (int64_t i = 0; i < n; i++) {
      double *s = w->sums + (int64_t)assign[i] * dim;
      const float *xi = x + i * dim;
      for (int64_t d = 0; d < dim; d++) s[d] += (double)xi[d];
    }
    for (int64_t j = 0; j < k; j++) {
      if (w->size[j] == 0) continue;
      double inv = 1.0 / (double)w->size[j];
      for (int64_t d = 0; d < dim; d++) centers[j * dim + d] = (float)(w->sums[j * dim + d] * inv);
    }
  }
}

static int kmeans_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

void sim_kmeans_fit(float *centers, int32_t *assign, const float *x, int64_t n, int64_t dim,
                    const sim_kmeans_config *c, sim_kmeans_report *rep) {
  HSRL_CHECKF(c->k >= 1 && c->max_iter >= 1 && c->full_iter >= 0 && n >= 1 && dim >= 1,
              "sim_kmeans_fit: k %lld, max_iter %d, n %lld, dim %lld", (long long)c->k, c->max_iter,
              (long long)n, (long long)dim);
  int64_t k = c->k;
  int64_t s = c->sample > 0 ? c->sample : (64 * k > SIM_KMEANS_DEFAULT_SAMPLE ? 64 * k : SIM_KMEANS_DEFAULT_SAMPLE);
  if (s > n) s = n;

  /* the sample: s distinct rows, uniformly, kept in row order (locality, and order-free) */
  const float *xs = x;
  float *xs_buf = NULL;
  if (s < n) {
    int64_t *perm = hsrl_malloc((size_t)n * sizeof *perm);
    hsrl_rng rng;
    hsrl_rng_init(&rng, c->seed, KMEANS_STREAM_SAMPLE);
    hsrl_rng_permutation(&rng, perm, n);
    qsort(perm, (size_t)s, sizeof *perm, kmeans_cmp_i64);
    xs_buf = hsrl_malloc((size_t)(s * dim) * sizeof *xs_buf);
    for (int64_t i = 0; i < s; i++) memcpy(xs_buf + i * dim, x + perm[i] * dim, (size_t)dim * sizeof *x);
    hsrl_free(perm);
    xs = xs_buf;
  }

  double *d2 = hsrl_malloc((size_t)s * sizeof *d2);
  hsrl_rng rng;
  hsrl_rng_init(&rng, c->seed, KMEANS_STREAM_SEED);
  kmeans_plusplus(centers, xs, s, dim, k, &rng, d2);
  hsrl_free(d2);

  kmeans_work w;
  kmeans_work_init(&w, n, k, dim, c->balanced);
  kmeans_pass_stats warm, full;
  memset(&warm, 0, sizeof warm);
  int64_t n_reseeded = 0;
  if (s < n) {
    int32_t *as = hsrl_malloc((size_t)s * sizeof *as);
    kmeans_lloyd(&w, centers, as, xs, s, c, c->max_iter, 0, "sample", &warm);
    n_reseeded += warm.n_reseeded;
    hsrl_free(as);
  }
  int full_iter = c->max_iter;
  if (s < n) full_iter = c->full_iter > 0 ? c->full_iter : SIM_KMEANS_DEFAULT_FULL_ITER;
  kmeans_lloyd(&w, centers, assign, x, n, c, full_iter, warm.passes, "all", &full);
  n_reseeded += full.n_reseeded;
  kmeans_work_free(&w);
  hsrl_free(xs_buf);
  if (rep) {
    memset(rep, 0, sizeof *rep);
    rep->warm_iters = warm.passes;
    rep->iters = full.passes;
    rep->converged = full.converged;
    rep->n_changed = full.n_changed;
    rep->n_reseeded = n_reseeded;
    rep->n_empty = full.n_empty;
    rep->max_size = full.max_size;
    rep->inertia = full.inertia;
  }
}
