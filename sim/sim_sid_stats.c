/* sim_sid_stats.c: usage, entropy, perplexity, reconstruction error, collisions and items per
 * prefix of a Semantic-ID assignment (sim_sid_stats.h; method.md §5). */
#include "sim/sim_sid_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

static int stats_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int stats_cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of sorted v[0..n). */
static int64_t stats_quantile(const int64_t *v, int64_t n, double q) {
  int64_t r = (int64_t)ceil(q * (double)n);
  if (r < 1) r = 1;
  if (r > n) r = n;
  return v[r - 1];
}

void sim_sid_stats_compute(sim_sid_stats *s, const sim_sid_codebook *cb, const uint16_t *tokens,
                           const uint8_t *live, int64_t n_rows, const float *vectors) {
  int L = cb->n_levels;
  HSRL_CHECK(L >= 1 && L <= SIM_SID_MAX_LEVELS);
  memset(s, 0, sizeof *s);
  s->n_levels = L;
  s->mean_sq_norm = s->total_variance = (double)NAN;
  for (int l = 0; l < L; l++) {
    s->level[l].vocab = cb->vocab[l];
    s->level[l].mse = s->level[l].rel_mse = (double)NAN;
  }
  int64_t n = 0;
  for (int64_t i = 0; i < n_rows; i++) n += !live || live[i];
  s->n_items = n;
  if (n == 0) return;

  uint64_t *keys = hsrl_malloc((size_t)n * sizeof *keys);
  int64_t *runs = hsrl_malloc((size_t)n * sizeof *runs);
  int64_t vmax = 1;
  for (int l = 0; l < L; l++)
    if (cb->vocab[l] > vmax) vmax = cb->vocab[l];
  int64_t *hist = hsrl_malloc((size_t)vmax * sizeof *hist);
  int64_t m = 0;
  for (int64_t i = 0; i < n_rows; i++) {
    if (live && !live[i]) continue;
    uint64_t key = 0;
    for (int l = 0; l < L; l++) key = (key << 16) | tokens[i * L + l];
    keys[m++] = key;
  }
  qsort(keys, (size_t)n, sizeof *keys, stats_cmp_u64);

  double h_parent = 0.0;
  for (int l = 0; l < L; l++) {
    sim_sid_level_stats *ls = &s->level[l];
    /* marginal code distribution */
    memset(hist, 0, (size_t)vmax * sizeof *hist);
    for (int64_t i = 0; i < n; i++) {
      int64_t t = (int64_t)((keys[i] >> (16 * (L - 1 - l))) & 0xffff);
      HSRL_CHECKF(t < cb->vocab[l], "level %d token %lld >= vocab %lld", l + 1, (long long)t,
                  (long long)cb->vocab[l]);
      hist[t]++;
    }
    double h = 0.0;
    for (int64_t t = 0; t < cb->vocab[l]; t++) {
      if (!hist[t]) continue;
      ls->used++;
      double p = (double)hist[t] / (double)n;
      h -= p * log2(p);
    }
    ls->entropy_bits = h;
    ls->perplexity = exp2(h);
    /* prefixes z_1..z_l: runs of the sorted keys */
    int shift = 16 * (L - 1 - l);
    int64_t nr = 0;
    double hp = 0.0;
    for (int64_t a = 0; a < n;) {
      int64_t b = a + 1;
      while (b < n && (keys[b] >> shift) == (keys[a] >> shift)) b++;
      runs[nr++] = b - a;
      double p = (double)(b - a) / (double)n;
      hp -= p * log2(p);
      a = b;
    }
    ls->cond_perplexity = exp2(hp - h_parent);
    h_parent = hp;
    qsort(runs, (size_t)nr, sizeof *runs, stats_cmp_i64);
    ls->n_prefixes = nr;
    ls->prefix_mean = (double)n / (double)nr;
    ls->prefix_median = stats_quantile(runs, nr, 0.5);
    ls->prefix_p90 = stats_quantile(runs, nr, 0.9);
    ls->prefix_p99 = stats_quantile(runs, nr, 0.99);
    ls->prefix_max = runs[nr - 1];
    if (l == L - 1) {
      s->n_distinct = nr;
      s->largest_bucket = runs[nr - 1];
      for (int64_t q = 0; q < nr; q++)
        if (runs[q] > 1) s->n_colliding += runs[q];
      s->collision_rate = (double)s->n_colliding / (double)n;
    }
  }

  if (vectors) {
    int64_t dim = cb->dim;
    double *mean = hsrl_calloc((size_t)dim, sizeof *mean);
    double *r = hsrl_malloc((size_t)dim * sizeof *r);
    double sq = 0.0, sse[SIM_SID_MAX_LEVELS] = {0};
    for (int64_t i = 0; i < n_rows; i++) {
      if (live && !live[i]) continue;
      const float *x = vectors + i * dim;
      for (int64_t d = 0; d < dim; d++) {
        r[d] = (double)x[d];
        mean[d] += r[d];
        sq += r[d] * r[d];
      }
      for (int l = 0; l < L; l++) {
        const float *c = cb->centers[l] + (int64_t)tokens[i * L + l] * dim;
        double e = 0.0;
        for (int64_t d = 0; d < dim; d++) {
          r[d] -= (double)c[d];
          e += r[d] * r[d];
        }
        sse[l] += e;
      }
    }
    double mn2 = 0.0;
    for (int64_t d = 0; d < dim; d++) mn2 += (mean[d] / (double)n) * (mean[d] / (double)n);
    s->mean_sq_norm = sq / (double)n;
    s->total_variance = s->mean_sq_norm - mn2;
    for (int l = 0; l < L; l++) {
      s->level[l].mse = sse[l] / (double)n;
      s->level[l].rel_mse = s->total_variance > 0.0 ? s->level[l].mse / s->total_variance : (double)NAN;
    }
    hsrl_free(r);
    hsrl_free(mean);
  }
  hsrl_free(hist);
  hsrl_free(runs);
  hsrl_free(keys);
}

void sim_sid_stats_print(const sim_sid_stats *s, FILE *f) {
  fprintf(f, "  items %lld, distinct SIDs %lld, collision rate %.4f (%lld items share a SID), "
             "largest bucket %lld\n",
          (long long)s->n_items, (long long)s->n_distinct, s->collision_rate, (long long)s->n_colliding,
          (long long)s->largest_bucket);
  if (!isnan(s->total_variance))
    fprintf(f, "  vectors: mean |x|^2 %.6g, total variance %.6g\n", s->mean_sq_norm, s->total_variance);
  fprintf(f, "  level  vocab   used  usage  entropy  perplexity  cond.perp  prefixes  items/prefix: "
             "mean  median   p90   p99    max   mse after  rel.mse\n");
  for (int l = 0; l < s->n_levels; l++) {
    const sim_sid_level_stats *ls = &s->level[l];
    fprintf(f, "  %5d %6lld %6lld %5.1f%% %8.3f %11.2f %10.2f %9lld %19.2f %7lld %5lld %5lld %6lld",
            l + 1, (long long)ls->vocab, (long long)ls->used,
            100.0 * (double)ls->used / (double)ls->vocab, ls->entropy_bits, ls->perplexity,
            ls->cond_perplexity, (long long)ls->n_prefixes, ls->prefix_mean,
            (long long)ls->prefix_median, (long long)ls->prefix_p90, (long long)ls->prefix_p99,
            (long long)ls->prefix_max);
    if (isnan(ls->mse))
      fprintf(f, "  %10s %8s\n", "-", "-");
    else
      fprintf(f, "  %10.4g %8.4f\n", ls->mse, ls->rel_mse);
  }
}
