/* sim_metrics.c: see sim_metrics.h.
 *
 * AUC by sorting (score, label) pairs once and walking groups of equal score: a group with p
 * positives and q negatives above `neg_below` negatives of lower score contributes
 * p * neg_below + p * q / 2 pairs; dividing by n_pos * n_neg gives the AUC with ties at 1/2,
 * which equals the average-rank (Mann-Whitney) formula term by term. */
#include "sim/sim_metrics.h"

#include <math.h>
#include <stdlib.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_check.h"

typedef struct metrics_pair {
  float score;
  uint8_t label;
} metrics_pair;

static int metrics_pair_cmp(const void *a, const void *b) {
  float x = ((const metrics_pair *)a)->score, y = ((const metrics_pair *)b)->score;
  return (x > y) - (x < y);
}

double sim_metrics_auc_strided(const float *scores, const uint8_t *labels, int64_t n,
                               int64_t stride) {
  HSRL_CHECK(n >= 0 && stride >= 1);
  if (n == 0) return NAN;
  metrics_pair *pairs = hsrl_malloc((size_t)n * sizeof *pairs);
  for (int64_t i = 0; i < n; i++) {
    float s = scores[i * stride];
    HSRL_CHECKF(!isnan(s), "AUC: score %lld is NaN", (long long)i);
    pairs[i].score = s;
    pairs[i].label = labels[i * stride] != 0;
  }
  qsort(pairs, (size_t)n, sizeof *pairs, metrics_pair_cmp);
  double n_pos = 0.0, n_neg = 0.0, pairs_won = 0.0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    double p = 0.0, q = 0.0;
    while (j < n && pairs[j].score == pairs[i].score) {
      if (pairs[j].label) p += 1.0; else q += 1.0;
      j++;
    }
    pairs_won += p * n_neg + 0.5 * p * q; /* n_neg so far = negatives scored lower */
    n_pos += p;
    n_neg += q;
    i = j;
  }
  hsrl_free(pairs);
  if (n_pos == 0.0 || n_neg == 0.0) return NAN;
  return pairs_won / (n_pos * n_neg);
}

double sim_metrics_auc(const float *scores, const uint8_t *labels, int64_t n) {
  return sim_metrics_auc_strided(scores, labels, n, 1);
}

double sim_metrics_log_loss(const float *probs, const uint8_t *labels, int64_t n) {
  HSRL_CHECK(n >= 0);
  if (n == 0) return NAN;
  double sum = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double p = fmin(fmax((double)probs[i], SIM_METRICS_LOG_EPS), 1.0 - SIM_METRICS_LOG_EPS);
    sum -= labels[i] ? log(p) : log1p(-p);
  }
  return sum / (double)n;
}

double sim_metrics_ece(const float *probs, const uint8_t *labels, int64_t n, int n_bins) {
  HSRL_CHECK(n >= 0 && n_bins >= 1 && n_bins <= 1000);
  if (n == 0) return NAN;
  double cnt[1000] = {0}, sum_p[1000] = {0}, sum_y[1000] = {0};
  for (int64_t i = 0; i < n; i++) {
    double p = (double)probs[i];
    HSRL_CHECKF(p >= 0.0 && p <= 1.0, "ECE: probability %lld is %g", (long long)i, p);
    int b = (int)(p * n_bins);
    if (b >= n_bins) b = n_bins - 1;
    cnt[b] += 1.0;
    sum_p[b] += p;
    sum_y[b] += labels[i] ? 1.0 : 0.0;
  }
  double ece = 0.0;
  for (int b = 0; b < n_bins; b++)
    if (cnt[b] > 0.0) ece += fabs(sum_p[b] - sum_y[b]) / (double)n; /* (cnt/n) |mean p - mean y| */
  return ece;
}

void sim_metrics_evaluate(sim_metrics_report *r, double *per_position_auc, const float *probs,
                          const uint8_t *labels, int64_t n, int64_t K, int ece_bins) {
  HSRL_CHECK(n >= 0 && K >= 1);
  r->n_rows = n;
  r->slate_size = K;
  r->auc = sim_metrics_auc(probs, labels, n * K);
  double sum = 0.0;
  int64_t defined = 0;
  for (int64_t k = 0; k < K; k++) {
    double a = sim_metrics_auc_strided(probs + k, labels + k, n, K);
    if (per_position_auc) per_position_auc[k] = a;
    if (!isnan(a)) {
      sum += a;
      defined++;
    }
  }
  r->n_positions = defined;
  r->macro_auc = defined ? sum / (double)defined : (double)NAN;
  r->log_loss = sim_metrics_log_loss(probs, labels, n * K);
  r->ece_bins = ece_bins;
  r->ece = sim_metrics_ece(probs, labels, n * K, ece_bins);
  double sp = 0.0, sy = 0.0;
  for (int64_t i = 0; i < n * K; i++) {
    sp += (double)probs[i];
    sy += labels[i] ? 1.0 : 0.0;
  }
  r->mean_prob = n ? sp / (double)(n * K) : (double)NAN;
  r->click_rate = n ? sy / (double)(n * K) : (double)NAN;
}
